//go:build integration

package shop_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/svckit/svckit/internal/testnet"
	"github.com/svckit/svckit/natsserver"
	"github.com/svckit/svckit/store"
)

// The engines of the production suite, each a real program run as its own process: a
// three-node NATS JetStream cluster (nats-server), Jaeger (OTLP in, query API out),
// Prometheus, PostgreSQL (one database per service on the server .ci/run starts) and a
// DNS server on loopback.

// prodSuiteEnv, when set (.ci/run sets it), turns every missing engine into a failure
// instead of a skip: in CI the production suite must run.
const prodSuiteEnv = "SVCKIT_PROD_SUITE"

// prodMissing skips the test, or fails it when prodSuiteEnv is set, because something the
// suite needs is missing.
func prodMissing(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(prodSuiteEnv) != "" {
		t.Fatalf("%s is set, but %s", prodSuiteEnv, msg)
	}
	t.Skip(msg + " (.ci/run provides it; see examples/shop/README.md)")
}

// prodBinary returns the path of a program: the environment variable env if set,
// otherwise name on $PATH.
func prodBinary(t *testing.T, env, name, how string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			prodMissing(t, "%s=%s: %v", env, p, err)
		}
		return p
	}
	p, err := exec.LookPath(name)
	if err != nil {
		prodMissing(t, "%s not found (set %s or put it on $PATH; %s)", name, env, how)
	}
	return p
}

// prodPorts hands out loopback ports for programs that bind them themselves
// (testnet.LowAddr), never the same one twice in this process.
type prodPorts struct {
	mu   sync.Mutex
	used []string
}

func (p *prodPorts) next(t *testing.T) string {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	addr := testnet.LowAddr(t, p.used...)
	p.used = append(p.used, addr)
	return addr
}

// prodProc is one program run as its own process, its output in a log file. It can be
// killed and started again with the same command line, as an orchestrator restarts it.
type prodProc struct {
	name string
	bin  string
	args []string
	env  []string
	log  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func newProc(dir, name, bin string, args, env []string) *prodProc {
	return &prodProc{name: name, bin: bin, args: args, env: env, log: filepath.Join(dir, name+".log")}
}

// start starts the process; its output is appended to its log file.
func (p *prodProc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "---- %s start %s\n", time.Now().UTC().Format(time.RFC3339Nano), p.name)
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group, and SIGKILL if the test process dies without stopping it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		fmt.Fprintf(f, "---- %s exit %s: %v\n", time.Now().UTC().Format(time.RFC3339Nano), p.name, cmd.ProcessState)
		f.Close()
		close(done)
	}()
	p.cmd, p.done = cmd, done
	return nil
}

// running reports whether the process is running.
func (p *prodProc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *prodProc) kill() {
	p.signal(syscall.SIGKILL, 0)
}

// stop sends SIGTERM and waits up to grace, then SIGKILL.
func (p *prodProc) stop(grace time.Duration) {
	p.signal(syscall.SIGTERM, grace)
}

func (p *prodProc) signal(sig syscall.Signal, grace time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = syscall.Kill(cmd.Process.Pid, sig)
	if sig != syscall.SIGKILL {
		select {
		case <-done:
			return
		case <-time.After(grace):
		}
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// tail returns the last n lines of the process's log.
func (p *prodProc) tail(n int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitHTTP waits until GET url answers 200.
func waitHTTP(ctx context.Context, url string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("GET %s: %w (last: %v)", url, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// natsCluster is a three-node NATS JetStream cluster on loopback, each node a nats-server
// process with its own configuration file and JetStream store.
type natsCluster struct {
	nodes   []*prodProc
	clients []string // nats://127.0.0.1:port, one per node
	monitor []string // http://127.0.0.1:port, one per node
	admin   string   // the admin user's password
	users   map[string]natsserver.User
}

// startNATSCluster starts the cluster with authorization on, as in production: an admin
// user for the test itself and one user per shop service, each allowed to publish only
// its own events (natsserver.ServiceUser, rendered by natsserver.AuthConfig).
func startNATSCluster(t *testing.T, bin, dir string, ports *prodPorts) *natsCluster {
	t.Helper()
	const n = 3
	c := &natsCluster{admin: natsserver.RandomPassword(), users: map[string]natsserver.User{}}
	var users []natsserver.User
	for _, svc := range []string{"catalog", "payments", "orders", "notifications", "gateway"} {
		u := natsserver.ServiceUser(svc, natsserver.RandomPassword(), []string{"shop." + svc + ".>"}, nil)
		c.users[svc] = u
		users = append(users, u)
	}
	auth := natsserver.AuthConfig(c.admin, users)
	var client, route, monitor []string
	for range n {
		client, route, monitor = append(client, ports.next(t)), append(route, ports.next(t)), append(monitor, ports.next(t))
	}
	var routes []string
	for _, r := range route {
		routes = append(routes, fmt.Sprintf("%q", "nats-route://"+r))
	}
	for i := range n {
		name := fmt.Sprintf("nats-%d", i+1)
		conf := fmt.Sprintf(`server_name: %q
listen: %q
http: %q
jetstream {
  store_dir: %q
  max_memory_store: 256MB
  max_file_store: 2GB
}
cluster {
  name: "shop"
  listen: %q
  routes: [%s]
}
%s`, name, client[i], monitor[i], filepath.Join(dir, name+"-js"), route[i], strings.Join(routes, ", "), auth)
		path := filepath.Join(dir, name+".conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		p := newProc(dir, name, bin, []string{"-c", path}, nil)
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, p)
		c.clients = append(c.clients, "nats://"+client[i])
		c.monitor = append(c.monitor, "http://"+monitor[i])
	}
	t.Cleanup(func() {
		for _, p := range c.nodes {
			p.stop(5 * time.Second)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range n {
		if err := c.waitNode(ctx, i); err != nil {
			t.Fatalf("%v\n%s", err, c.nodes[i].tail(30))
		}
	}
	return c
}

// waitNode waits until node i reports itself healthy with JetStream current.
func (c *natsCluster) waitNode(ctx context.Context, i int) error {
	return waitHTTP(ctx, c.monitor[i]+"/healthz")
}

// URL is the client URL of every node, comma-separated, as services get it in NATS_URL
// (without credentials: those come in NATS_USER and NATS_PASSWORD).
func (c *natsCluster) URL() string { return strings.Join(c.clients, ",") }

// AdminURL is URL with the admin user's credentials, for the test's own connections.
func (c *natsCluster) AdminURL() string {
	return natsserver.WithUserInfo(c.URL(), natsserver.AdminUser, c.admin)
}

// jaegerConfig is the configuration of Jaeger v2 (a build of the OpenTelemetry
// Collector): OTLP receivers, in-memory trace storage and the query API, each on its own
// loopback port, and no other listener.
const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: %q
    grpc:
      endpoint: %q
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %q
      http:
        endpoint: %q
processors:
  batch:
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`

// jaeger is a Jaeger process: OTLPHTTP and OTLPGRPC receive traces, Query serves
// /api/traces.
type jaeger struct {
	proc     *prodProc
	OTLPHTTP string // http://127.0.0.1:port
	OTLPGRPC string // http://127.0.0.1:port
	Query    string // http://127.0.0.1:port
}

func startJaeger(t *testing.T, bin, dir string, ports *prodPorts) *jaeger {
	t.Helper()
	query, queryGRPC, otlpGRPC, otlpHTTP := ports.next(t), ports.next(t), ports.next(t), ports.next(t)
	path := filepath.Join(dir, "jaeger.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(jaegerConfig, query, queryGRPC, otlpGRPC, otlpHTTP)), 0o644); err != nil {
		t.Fatal(err)
	}
	j := &jaeger{proc: newProc(dir, "jaeger", bin, []string{"--config", path}, nil),
		OTLPHTTP: "http://" + otlpHTTP, OTLPGRPC: "http://" + otlpGRPC, Query: "http://" + query}
	if err := j.proc.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.proc.stop(5 * time.Second) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := waitHTTP(ctx, j.Query+"/api/services"); err != nil {
		t.Fatalf("jaeger: %v\n%s", err, j.proc.tail(30))
	}
	return j
}

// jaegerTrace is what /api/traces/{id} returns.
type jaegerTrace struct {
	Data []struct {
		TraceID string `json:"traceID"`
		Spans   []struct {
			SpanID        string `json:"spanID"`
			OperationName string `json:"operationName"`
			ProcessID     string `json:"processID"`
		} `json:"spans"`
		Processes map[string]struct {
			ServiceName string `json:"serviceName"`
		} `json:"processes"`
	} `json:"data"`
}

// trace returns the services that the spans of trace id came from, and the span count.
func (j *jaeger) trace(ctx context.Context, id string) (map[string]int, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.Query+"/api/traces/"+id, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, 0, nil
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, 0, fmt.Errorf("jaeger: GET /api/traces/%s: %d %s", id, resp.StatusCode, b)
	}
	var tr jaegerTrace
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		return nil, 0, fmt.Errorf("jaeger: %w", err)
	}
	services, spans := map[string]int{}, 0
	for _, d := range tr.Data {
		for _, s := range d.Spans {
			services[d.Processes[s.ProcessID].ServiceName]++
			spans++
		}
	}
	return services, spans, nil
}

// prometheus is a Prometheus server scraping every service instance's admin port.
type prometheus struct {
	proc *prodProc
	URL  string
}

// startPrometheus starts Prometheus with one job per service, its instances' admin
// addresses as targets, scraped every second.
func startPrometheus(t *testing.T, dir string, ports *prodPorts, targets map[string][]string, jobs []string) *prometheus {
	t.Helper()
	var cfg strings.Builder
	cfg.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n")
	for _, job := range jobs {
		var quoted []string
		for _, a := range targets[job] {
			quoted = append(quoted, fmt.Sprintf("%q", a))
		}
		fmt.Fprintf(&cfg, "  - job_name: %q\n    static_configs:\n      - targets: [%s]\n", job, strings.Join(quoted, ", "))
	}
	path := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := ports.next(t)
	p := &prometheus{URL: "http://" + addr, proc: newProc(dir, "prometheus", "prometheus", []string{
		"--config.file=" + path, "--storage.tsdb.path=" + filepath.Join(dir, "prometheus-data"),
		"--web.listen-address=" + addr, "--log.level=warn"}, nil)}
	if err := p.proc.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.proc.stop(5 * time.Second) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := waitHTTP(ctx, p.URL+"/-/ready"); err != nil {
		t.Fatalf("prometheus: %v\n%s", err, p.proc.tail(30))
	}
	return p
}

// query runs an instant PromQL query and returns each series' labels and value.
func (p *prometheus) query(ctx context.Context, q string) ([]promSample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/api/v1/query?query="+url.QueryEscape(q), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("prometheus: %s: %s", q, r.Error)
	}
	var out []promSample
	for _, s := range r.Data.Result {
		var v float64
		str, _ := s.Value[1].(string)
		if _, err := fmt.Sscan(str, &v); err != nil {
			return nil, fmt.Errorf("prometheus: value %q: %w", str, err)
		}
		out = append(out, promSample{Labels: s.Metric, Value: v})
	}
	return out, nil
}

// promSample is one series of a query result.
type promSample struct {
	Labels map[string]string
	Value  float64
}

// pgDatabases creates one database per name on the server of SVCKIT_TEST_POSTGRES_DSN and
// drops them when the test ends. It returns each name's DSN.
func pgDatabases(t *testing.T, adminDSN string, names ...string) map[string]string {
	t.Helper()
	ctx := context.Background()
	admin, err := store.Open(ctx, adminDSN)
	if err != nil {
		prodMissing(t, "PostgreSQL at SVCKIT_TEST_POSTGRES_DSN: %v", err)
	}
	u, err := url.Parse(adminDSN)
	if err != nil {
		t.Fatal(err)
	}
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	out := map[string]string{}
	var created []string
	t.Cleanup(func() {
		defer admin.Close()
		for _, db := range created {
			if _, err := admin.DB().ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
				t.Errorf("drop database %s: %v", db, err)
			}
		}
	})
	for _, name := range names {
		db := "shop_" + name + "_" + hex.EncodeToString(suffix[:])
		if _, err := admin.DB().ExecContext(ctx, "CREATE DATABASE "+db); err != nil {
			t.Fatalf("create database %s: %v", db, err)
		}
		created = append(created, db)
		du := *u
		du.Path = "/" + db
		out[name] = du.String()
	}
	return out
}

// dnsServer is an authoritative DNS server on loopback UDP answering A and SRV questions
// from fixed records and NXDOMAIN for any other name, as a cluster's DNS would for a
// headless service.
type dnsServer struct {
	conn net.PacketConn
	a    map[string][]netip.Addr // name with the final dot → addresses
	srv  map[string][]dnsmessage.SRVResource

	mu      sync.Mutex
	queries int
}

func startDNS(t *testing.T, a map[string][]netip.Addr, srv map[string][]dnsmessage.SRVResource) *dnsServer {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{conn: conn, a: a, srv: srv}
	t.Cleanup(func() { conn.Close() })
	go s.serve()
	return s
}

// Addr is the server's address, host:port.
func (s *dnsServer) Addr() string { return s.conn.LocalAddr().String() }

// Queries returns how many questions the server has answered.
func (s *dnsServer) Queries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries
}

func (s *dnsServer) serve() {
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

func (s *dnsServer) answer(msg []byte) ([]byte, error) {
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
	s.queries++
	s.mu.Unlock()
	name := strings.ToLower(q.Name.String())
	addrs, hasA := s.a[name]
	srvs, hasSRV := s.srv[name]
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
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
	rr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 5}
	switch q.Type {
	case dnsmessage.TypeA:
		for _, a := range addrs {
			if a.Is4() {
				if err := b.AResource(rr, dnsmessage.AResource{A: a.As4()}); err != nil {
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

// promtoolCheck runs `promtool check metrics` on the exposition at url.
func promtoolCheck(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", url, resp.StatusCode)
	}
	cmd := exec.CommandContext(ctx, "promtool", "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("promtool check metrics %s: %w\n%s", url, err, out)
	}
	return nil
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
