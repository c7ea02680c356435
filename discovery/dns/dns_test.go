package dns_test

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	grpcgo "google.golang.org/grpc"

	"github.com/svckit/svckit/balancer"
	"github.com/svckit/svckit/discovery"
	"github.com/svckit/svckit/discovery/discoverytest"
	"github.com/svckit/svckit/discovery/dns"
	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/examples/addsvc/addsvc"
	sgrpc "github.com/svckit/svckit/transport/grpc"
)

// server is a tiny authoritative DNS server on loopback UDP for the tests: it answers A,
// AAAA and SRV questions from its records and NXDOMAIN for names it does not have.
type server struct {
	conn net.PacketConn

	mu      sync.Mutex
	a       map[string][]netip.Addr // name (with the final dot) → addresses
	srv     map[string][]dnsmessage.SRVResource
	queries int
}

func startServer(t testing.TB) *server {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{conn: conn, a: map[string][]netip.Addr{}, srv: map[string][]dnsmessage.SRVResource{}}
	t.Cleanup(func() { _ = conn.Close() })
	go s.serve()
	return s
}

func (s *server) setA(name string, addrs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var as []netip.Addr
	for _, a := range addrs {
		as = append(as, netip.MustParseAddr(a))
	}
	s.a[name] = as
}

func (s *server) setSRV(name string, recs ...dnsmessage.SRVResource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srv[name] = recs
}

func srv(prio, weight, port uint16, target string) dnsmessage.SRVResource {
	return dnsmessage.SRVResource{Priority: prio, Weight: weight, Port: port, Target: dnsmessage.MustNewName(target)}
}

// resolver returns a net.Resolver that asks only this server.
func (s *server) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", s.conn.LocalAddr().String())
	}}
}

func (s *server) serve() {
	buf := make([]byte, 1500)
	for {
		n, addr, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if out, err := s.answer(buf[:n]); err == nil {
			_, _ = s.conn.WriteTo(out, addr)
		}
	}
}

func (s *server) answer(msg []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries++
	name := strings.ToLower(q.Name.String())
	addrs, hasA := s.a[name]
	srvs, hasSRV := s.srv[name]
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	if !hasA && !hasSRV {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	rr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}
	switch q.Type {
	case dnsmessage.TypeA:
		for _, a := range addrs {
			if a.Is4() {
				if err := b.AResource(rr, dnsmessage.AResource{A: a.As4()}); err != nil {
					return nil, err
				}
			}
		}
	case dnsmessage.TypeAAAA:
		for _, a := range addrs {
			if a.Is6() {
				if err := b.AAAAResource(rr, dnsmessage.AAAAResource{AAAA: a.As16()}); err != nil {
					return nil, err
				}
			}
		}
	case dnsmessage.TypeSRV:
		for _, r := range srvs {
			if err := b.SRVResource(rr, r); err != nil {
				return nil, err
			}
		}
	}
	return b.Finish()
}

func addrs(set []discovery.Instance) []string {
	var out []string
	for _, in := range set {
		out = append(out, in.Addr)
	}
	return out
}

func TestLookup(t *testing.T) {
	s := startServer(t)
	s.setA("addsvc.test.", "127.0.0.2", "127.0.0.3", "::1")
	s.setA("pod-a.addsvc.test.", "127.0.1.1")
	s.setA("pod-b.addsvc.test.", "127.0.1.2")
	s.setA("pod-c.addsvc.test.", "127.0.1.3")
	s.setSRV("_grpc._tcp.addsvc.test.",
		srv(10, 5, 8081, "pod-a.addsvc.test."),
		srv(10, 0, 8082, "pod-b.addsvc.test."),
		srv(20, 1, 8083, "pod-c.addsvc.test.")) // a backup: higher priority number
	w := dns.New(dns.WithResolver(s.resolver()))

	tests := []struct {
		name    string
		service string
		want    []string
		weights []float64
	}{
		{"A and AAAA", "addsvc.test.:8081", []string{"127.0.0.2:8081", "127.0.0.3:8081", "[::1]:8081"}, []float64{1, 1, 1}},
		{"SRV", "_grpc._tcp.addsvc.test.", []string{"127.0.1.1:8081", "127.0.1.2:8082"}, []float64{5, 1}},
		{"missing A", "nothing.test.:80", nil, nil},
		{"missing SRV", "_grpc._tcp.nothing.test.", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := w.Lookup(t.Context(), tt.service)
			if err != nil {
				t.Fatal(err)
			}
			discovery.Sort(set)
			got := addrs(set)
			if strings.Join(got, ",") != strings.Join(sortedByID(tt.want), ",") {
				t.Errorf("addresses %v, want %v", got, tt.want)
			}
			for _, in := range set {
				if in.Service != tt.service || in.ID != discovery.SafeID(in.Addr) {
					t.Errorf("instance %+v", in)
				}
			}
			for i, want := range tt.weights {
				for _, in := range set {
					if in.Addr == tt.want[i] && in.Weight() != want {
						t.Errorf("%s weight %v, want %v", in.Addr, in.Weight(), want)
					}
				}
			}
		})
	}
}

func sortedByID(addrs []string) []string {
	set := make([]discovery.Instance, len(addrs))
	for i, a := range addrs {
		set[i] = discovery.Instance{ID: discovery.SafeID(a), Addr: a}
	}
	discovery.Sort(set)
	out := make([]string, len(set))
	for i, in := range set {
		out[i] = in.Addr
	}
	return out
}

// TestWatch follows a headless service whose pods come and go.
func TestWatch(t *testing.T) {
	s := startServer(t)
	s.setA("pod-a.addsvc.test.", "127.0.1.1")
	s.setA("pod-b.addsvc.test.", "127.0.1.2")
	s.setSRV("_grpc._tcp.addsvc.test.", srv(0, 1, 8081, "pod-a.addsvc.test."))
	w := dns.New(dns.WithResolver(s.resolver()), dns.WithInterval(20*time.Millisecond),
		dns.WithName(func(svc string) string { return "_grpc._tcp." + svc + ".test." }))
	ch, err := w.Watch(t.Context(), "addsvc")
	if err != nil {
		t.Fatal(err)
	}
	f := discoverytest.Follow(ch)
	set := f.Expect(t, 5*time.Second, "127_0_1_1_8081")
	if set[0].Service != "addsvc" {
		t.Errorf("service %q", set[0].Service)
	}
	s.setSRV("_grpc._tcp.addsvc.test.", srv(0, 1, 8081, "pod-a.addsvc.test."), srv(0, 1, 8081, "pod-b.addsvc.test."))
	f.Expect(t, 5*time.Second, "127_0_1_1_8081", "127_0_1_2_8081")
	s.setSRV("_grpc._tcp.addsvc.test.", srv(0, 1, 8081, "pod-b.addsvc.test."))
	f.Expect(t, 5*time.Second, "127_0_1_2_8081")
	s.mu.Lock()
	delete(s.srv, "_grpc._tcp.addsvc.test.")
	s.mu.Unlock()
	f.Expect(t, 5*time.Second)

	if _, err := w.Register(t.Context(), discovery.Instance{Service: "x", Addr: "y:1"}, time.Second); err != discovery.ErrReadOnly {
		t.Errorf("Register: %v, want ErrReadOnly", err)
	}
	if _, err := dns.New().Watch(t.Context(), "no-port"); err == nil {
		t.Error("Watch of a name without port or SRV prefix succeeded")
	}
}

// TestBalancedCallsOverSRV serves addsvc on three loopback ports published as the SRV
// records of a headless service, and calls it through a balancer that follows DNS while a
// pod leaves the records.
func TestBalancedCallsOverSRV(t *testing.T) {
	s := startServer(t)
	s.setA("pod.addsvc.test.", "127.0.0.1")
	var recs []dnsmessage.SRVResource
	for range 3 {
		addr, stop := serveAddsvc(t)
		defer stop()
		_, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		recs = append(recs, srv(0, 1, uint16(p), "pod.addsvc.test."))
	}
	s.setSRV("_grpc._tcp.addsvc.test.", recs...)
	w := dns.New(dns.WithResolver(s.resolver()), dns.WithInterval(20*time.Millisecond),
		dns.WithName(func(svc string) string { return "_grpc._tcp." + svc + ".test." }))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	b, err := balancer.Watch(ctx, w, "addsvc", balancer.WithPolicy(balancer.RoundRobin))
	if err != nil {
		t.Fatal(err)
	}
	pool := balancer.NewConnPool(b, balancer.WithGrace(10*time.Millisecond))
	defer pool.Close()
	sum := balancer.Endpoint(endpoint.Info{Service: "addsvc", Method: "Sum"}, b,
		func(inst discovery.Instance) (endpoint.Endpoint[addsvc.SumRequest, addsvc.SumResponse], error) {
			cc, err := pool.Get(inst.Addr)
			if err != nil {
				return nil, err
			}
			return addsvc.NewGRPCClient(cc).Sum, nil
		})
	call := func(n int) {
		t.Helper()
		for i := range n {
			resp, err := sum(ctx, addsvc.SumRequest{A: int64(i), B: 1})
			if err != nil || resp.V != int64(i)+1 {
				t.Fatalf("call %d: %v %v", i, resp, err)
			}
		}
	}
	call(30)
	if pool.Len() != 3 {
		t.Errorf("%d connections, want one per pod (3)", pool.Len())
	}
	s.setSRV("_grpc._tcp.addsvc.test.", recs[1:]...)
	deadline := time.Now().Add(5 * time.Second)
	for len(b.Instances()) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("instances %v after a pod left the records", b.Instances())
		}
		time.Sleep(5 * time.Millisecond)
	}
	call(30)
	for _, st := range b.Stats() {
		if st.Calls < 10 {
			t.Errorf("%s got %d calls", st.Instance.Addr, st.Calls)
		}
	}
}

// serveAddsvc serves addsvc over gRPC on a loopback port.
func serveAddsvc(t *testing.T) (string, func()) {
	t.Helper()
	s := sgrpc.NewServer(addsvc.GRPCService)
	addsvc.RegisterGRPC(s, addsvc.MakeEndpoints(addsvc.New()))
	g := grpcgo.NewServer()
	s.Register(g)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	return ln.Addr().String(), g.Stop
}
