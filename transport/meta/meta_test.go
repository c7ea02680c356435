package meta_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/svckit/svckit/svcerr"
	sgrpc "github.com/svckit/svckit/transport/grpc"
	shttp "github.com/svckit/svckit/transport/http"
	"github.com/svckit/svckit/transport/meta"
)

// req and resp are the request and response of the test endpoints.
type req struct {
	A int64 `json:"a"`
	B int64 `json:"b"`
}

type resp struct {
	V int64 `json:"v"`
}

// grpcService is the test service; it is not in the protobuf registry, so its methods are
// not checked against a descriptor. On the wire a request is the sum A+B.
const grpcService = "svckit.test.Adder"

func decReq(m *wrapperspb.Int64Value) (req, error)   { return req{A: m.GetValue()}, nil }
func encResp(r resp) (*wrapperspb.Int64Value, error) { return wrapperspb.Int64(r.V), nil }
func encReq(r req) (*wrapperspb.Int64Value, error)   { return wrapperspb.Int64(r.A + r.B), nil }
func decResp(m *wrapperspb.Int64Value) (resp, error) { return resp{V: m.GetValue()}, nil }

// seen is what the server-side endpoint observed about its call.
type seen struct {
	auth, peer  string
	hasDeadline bool
	left        time.Duration
}

// observer returns a Sum endpoint that reports what it sees on out.
func observer(out chan<- seen) func(ctx context.Context, req req) (resp, error) {
	return func(ctx context.Context, req req) (resp, error) {
		s := seen{auth: meta.Header(ctx, "Authorization"), peer: meta.Peer(ctx)}
		if dl, ok := ctx.Deadline(); ok {
			s.hasDeadline, s.left = true, time.Until(dl)
		}
		out <- s
		if req.A < 0 {
			return resp{}, svcerr.New(svcerr.ResourceExhausted, "slow down").WithMeta("retry_after", "7")
		}
		return resp{V: req.A + req.B}, nil
	}
}

func serveHTTP(t *testing.T, out chan<- seen) string {
	t.Helper()
	s := shttp.NewServer("sum")
	shttp.Handle(s, "PUT /sum", "Sum", observer(out))
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv.URL
}

func serveGRPC(t *testing.T, out chan<- seen) *grpcgo.ClientConn {
	t.Helper()
	s := sgrpc.NewServer(grpcService)
	sgrpc.Unary(s, "Sum", observer(out),
		decReq,
		encResp)
	g := sgrpc.NewGRPCServer(nil)
	s.Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	cc, err := grpcgo.NewClient(lis.Addr().String(), grpcgo.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func grpcSum(cc *grpcgo.ClientConn) func(context.Context, req) (resp, error) {
	c := sgrpc.NewClient(cc, grpcService)
	return sgrpc.UnaryCall(c, "Sum",
		encReq,
		decResp)
}

func TestHTTPHeadersPeerAndDeadline(t *testing.T) {
	out := make(chan seen, 1)
	url := serveHTTP(t, out)
	c, err := shttp.NewClient(url, "sum")
	if err != nil {
		t.Fatal(err)
	}
	sum := shttp.Call[req, resp](c, "PUT /sum", "Sum")

	// No deadline: none on the server either.
	if _, err := sum(context.Background(), req{A: 1}); err != nil {
		t.Fatal(err)
	}
	if s := <-out; s.hasDeadline || s.peer != "127.0.0.1" || s.auth != "" {
		t.Errorf("without deadline: server saw %+v", s)
	}

	// The caller's deadline arrives, a little shorter.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := sum(ctx, req{A: 1}); err != nil {
		t.Fatal(err)
	}
	if s := <-out; !s.hasDeadline || s.left <= 0 || s.left > 5*time.Second {
		t.Errorf("with a 5s deadline: server saw %+v", s)
	}

	// A raw request with headers: Authorization and a timeout in milliseconds.
	for _, tc := range []struct {
		timeout string
		want    bool
	}{{"1500", true}, {"0", false}, {"abc", false}, {"-5", false}, {"12345678901", false}} {
		req, _ := http.NewRequest(http.MethodPut, url+"/sum", strings.NewReader(`{"a":1}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer abc")
		req.Header.Set(shttp.TimeoutHeader, tc.timeout)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		s := <-out
		if s.auth != "Bearer abc" || s.hasDeadline != tc.want || (tc.want && s.left > 1500*time.Millisecond) {
			t.Errorf("timeout %q: server saw %+v", tc.timeout, s)
		}
	}
}

func TestHTTPClientSendsTimeoutHeader(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get(shttp.TimeoutHeader)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"v":1}`))
	}))
	defer srv.Close()
	c, _ := shttp.NewClient(srv.URL, "sum")
	sum := shttp.Call[req, resp](c, "PUT /sum", "Sum")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := sum(ctx, req{}); err != nil {
		t.Fatal(err)
	}
	ms, err := strconv.Atoi(<-got)
	if err != nil || ms <= 0 || ms > 2000 {
		t.Errorf("%s = %d (%v), want 1..2000", shttp.TimeoutHeader, ms, err)
	}
}

func TestGRPCMetadataPeerDeadlineAndRetryAfter(t *testing.T) {
	out := make(chan seen, 1)
	sum := grpcSum(serveGRPC(t, out))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer xyz")
	if _, err := sum(ctx, req{A: 1}); err != nil {
		t.Fatal(err)
	}
	s := <-out
	if s.auth != "Bearer xyz" || s.peer != "127.0.0.1" || !s.hasDeadline || s.left <= 0 || s.left > 5*time.Second {
		t.Errorf("server saw %+v", s)
	}

	// Retry-After travels in the error details and comes back in the svcerr metadata.
	_, err := sum(context.Background(), req{A: -1})
	<-out
	e := svcerr.From(err)
	if e.Kind != svcerr.ResourceExhausted || e.Meta["retry_after"] != "7" {
		t.Errorf("err = %v, meta %v; want resource_exhausted with retry_after 7", err, e.Meta)
	}
}

func TestBearerTokenAndHostOf(t *testing.T) {
	for _, tc := range []struct{ header, want string }{
		{"Bearer abc", "abc"}, {"bearer  abc ", "abc"}, {"Basic abc", ""}, {"Bearer", ""}, {"", ""},
	} {
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", tc.header))
		if got := meta.BearerToken(ctx); got != tc.want {
			t.Errorf("BearerToken(%q) = %q, want %q", tc.header, got, tc.want)
		}
	}
	for in, want := range map[string]string{"1.2.3.4:80": "1.2.3.4", "[::1]:80": "::1", "host": "host", "[::1]": "::1"} {
		if got := meta.HostOf(in); got != want {
			t.Errorf("HostOf(%q) = %q, want %q", in, got, want)
		}
	}
	if meta.Header(context.Background(), "x") != "" || meta.Peer(context.Background()) != "" || meta.Subject(context.Background()) != "" {
		t.Error("a bare context has metadata")
	}
}

func TestOutgoingHeaders(t *testing.T) {
	ctx := meta.WithOutgoingHeader(context.Background(), "Authorization", "Bearer one")
	ctx = meta.WithOutgoingHeader(ctx, "X-Tenant", "t1")
	ctx = meta.WithOutgoingHeader(ctx, "authorization", "Bearer two")

	var got []string
	meta.OutgoingHeaders(ctx, func(k, v string) { got = append(got, k+"="+v) })
	if strings.Join(got, ";") != "authorization=Bearer two;X-Tenant=t1" {
		t.Errorf("headers %q", got)
	}

	// Both clients send them.
	out := make(chan seen, 1)
	c, _ := shttp.NewClient(serveHTTP(t, out), "sum")
	if _, err := shttp.Call[req, resp](c, "PUT /sum", "Sum")(ctx, req{A: 1}); err != nil {
		t.Fatal(err)
	}
	if s := <-out; s.auth != "Bearer two" {
		t.Errorf("HTTP server saw Authorization %q", s.auth)
	}
	if _, err := grpcSum(serveGRPC(t, out))(ctx, req{A: 1}); err != nil {
		t.Fatal(err)
	}
	if s := <-out; s.auth != "Bearer two" {
		t.Errorf("gRPC server saw authorization %q", s.auth)
	}
}
