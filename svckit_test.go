package svckit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/examples/addsvc/addsvc"
	"github.com/svckit/svckit/examples/addsvc/pb"
	"github.com/svckit/svckit/svcerr"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) lines() []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

type testApp struct {
	app       *svckit.App
	logs      *syncBuffer
	exporter  *tracetest.InMemoryExporter
	httpURL   string
	grpcAddr  string
	adminURL  string
	cancel    context.CancelFunc
	done      chan error
	panicking bool
}

// startApp runs addsvc plus a panicking endpoint in-process on loopback ports.
func startApp(t *testing.T, args ...string) *testApp {
	t.Helper()
	ta := &testApp{logs: &syncBuffer{}, exporter: tracetest.NewInMemoryExporter(), done: make(chan error, 1)}
	base := []string{"-http-addr", "127.0.0.1:0", "-grpc-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0"}
	ctx, cancel := context.WithCancel(context.Background())
	ta.cancel = cancel
	app, err := svckit.New(ctx, "addsvc", &svckit.Config{}, svckit.Options{
		Stdout:       ta.logs,
		Args:         append(base, args...),
		Env:          func(string) (string, bool) { return "", false },
		SpanExporter: ta.exporter,
		Signals:      []os.Signal{},
	})
	if err != nil {
		t.Fatal(err)
	}
	ta.app = app
	e := addsvc.MakeEndpoints(addsvc.New())
	sum := e.Sum
	e.Sum = func(ctx context.Context, r addsvc.SumRequest) (addsvc.SumResponse, error) {
		if r.A == 666 {
			panic("the number of the beast")
		}
		return sum(ctx, r)
	}
	addsvc.RegisterHTTP(app.HTTP(), e)
	addsvc.RegisterGRPC(app.GRPC(addsvc.GRPCService), e)
	go func() { ta.done <- app.Run(ctx) }()
	for name, dst := range map[string]*string{"http": &ta.httpURL, "grpc": &ta.grpcAddr, "admin": &ta.adminURL} {
		addr, err := app.Addr(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		*dst = addr.String()
		if name != "grpc" {
			*dst = "http://" + *dst
		}
	}
	waitReady(t, ta.adminURL)
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-ta.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("app did not stop")
		}
	})
	return ta
}

func waitReady(t *testing.T, adminURL string) {
	t.Helper()
	for i := 0; i < 500; i++ {
		resp, err := http.Get(adminURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("service never became ready")
}

// callerSpan starts a span in a tracer provider of the caller's own and returns the
// context carrying it.
func callerSpan(t *testing.T) (context.Context, trace.SpanContext) {
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("caller").Start(context.Background(), "caller")
	t.Cleanup(func() { span.End() })
	return ctx, span.SpanContext()
}

func (ta *testApp) serverSpan(t *testing.T, traceID trace.TraceID) tracetest.SpanStub {
	t.Helper()
	for i := 0; i < 200; i++ {
		_ = ta.app.TracerProvider().ForceFlush(context.Background())
		for _, s := range ta.exporter.GetSpans() {
			if s.SpanContext.TraceID() == traceID && s.SpanKind == trace.SpanKindServer {
				return s
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no server span with trace id %s", traceID)
	return tracetest.SpanStub{}
}

func (ta *testApp) logLine(t *testing.T, traceID trace.TraceID, transport string) map[string]any {
	t.Helper()
	for i := 0; i < 200; i++ {
		for _, l := range ta.logs.lines() {
			if l["trace_id"] == traceID.String() && l["transport"] == transport && l["msg"] == "request" {
				return l
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %s access log line with trace id %s in:\n%s", transport, traceID, ta.logs.buf.String())
	return nil
}

func (ta *testApp) metricValue(t *testing.T, series string) string {
	t.Helper()
	resp, err := http.Get(ta.adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, series+" ") {
			return strings.TrimPrefix(line, series+" ")
		}
	}
	t.Fatalf("no series %s in /metrics", series)
	return ""
}

func TestHTTPRequestIsLoggedMeteredAndTraced(t *testing.T) {
	ta := startApp(t)
	ctx, caller := callerSpan(t)
	req, _ := http.NewRequestWithContext(ctx, "POST", ta.httpURL+"/sum", strings.NewReader(`{"a":1,"b":2}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", "req-http-1")
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"v":3}` {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	line := ta.logLine(t, caller.TraceID(), "http")
	if line["request_id"] != "req-http-1" || line["span_id"] == "" {
		t.Fatalf("log line lacks ids: %v", line)
	}
	ta.logs.mu.Lock()
	for _, raw := range strings.Split(ta.logs.buf.String(), "\n") {
		for _, key := range []string{`"trace_id":`, `"span_id":`, `"request_id":`, `"service":`} {
			if strings.Count(raw, key) > 1 {
				t.Errorf("duplicate key %s in log line %s", key, raw)
			}
		}
	}
	ta.logs.mu.Unlock()
	span := ta.serverSpan(t, caller.TraceID())
	if span.Parent.SpanID() != caller.SpanID() {
		t.Fatalf("server span parent = %s, want caller span %s", span.Parent.SpanID(), caller.SpanID())
	}
	if line["span_id"] != span.SpanContext.SpanID().String() {
		t.Fatalf("log span_id %v, want server span %s", line["span_id"], span.SpanContext.SpanID())
	}
	if got := ta.metricValue(t, `svckit_requests_total{method="Sum",service="addsvc",side="server",transport="http"}`); got != "1" {
		t.Fatalf("requests_total = %s, want 1", got)
	}
}

func TestGRPCRequestIsLoggedMeteredAndTraced(t *testing.T) {
	ta := startApp(t)
	ctx, caller := callerSpan(t)
	cc, err := grpc.NewClient(ta.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	carrier := propagation.MapCarrier{"x-request-id": "req-grpc-1"}
	propagation.TraceContext{}.Inject(ctx, carrier)
	ctx = metadata.NewOutgoingContext(ctx, metadata.New(carrier))
	var reply pb.SumResponse
	if err := cc.Invoke(ctx, "/addsvc.Add/Sum", &pb.SumRequest{A: 2, B: 3}, &reply); err != nil || reply.V != 5 {
		t.Fatalf("Sum = %v, %v", reply.V, err)
	}
	line := ta.logLine(t, caller.TraceID(), "grpc")
	if line["request_id"] != "req-grpc-1" {
		t.Fatalf("log line lacks request id: %v", line)
	}
	span := ta.serverSpan(t, caller.TraceID())
	if span.Parent.SpanID() != caller.SpanID() {
		t.Fatalf("server span parent = %s, want caller span %s", span.Parent.SpanID(), caller.SpanID())
	}
	if got := ta.metricValue(t, `svckit_requests_total{method="Sum",service="addsvc",side="server",transport="grpc"}`); got != "1" {
		t.Fatalf("requests_total = %s, want 1", got)
	}
	// The standard health service reports SERVING while the app is ready.
	hc, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || hc.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", hc, err)
	}
}

func TestPanicIsContainedOnBothTransports(t *testing.T) {
	ta := startApp(t)
	post := func(body string) (int, string) {
		resp, err := http.Post(ta.httpURL+"/sum", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post(`{"a":666,"b":1}`); code != 500 || !strings.Contains(body, `"kind":"internal"`) || strings.Contains(body, "beast") {
		t.Fatalf("panic over HTTP: %d %s", code, body)
	}
	if code, body := post(`{"a":1,"b":1}`); code != 200 || strings.TrimSpace(body) != `{"v":2}` {
		t.Fatalf("next HTTP request: %d %s", code, body)
	}
	cc, err := grpc.NewClient(ta.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := addsvc.NewGRPCClient(cc)
	_, err = client.Sum(context.Background(), addsvc.SumRequest{A: 666, B: 1})
	if svcerr.KindOf(err) != svcerr.Internal || strings.Contains(err.Error(), "beast") {
		t.Fatalf("panic over gRPC: %v", err)
	}
	var reply pb.SumResponse
	err = cc.Invoke(context.Background(), "/addsvc.Add/Sum", &pb.SumRequest{A: 666}, &reply)
	if status.Code(err) != codes.Internal {
		t.Fatalf("raw gRPC code = %v, want Internal", status.Code(err))
	}
	if got, err := client.Sum(context.Background(), addsvc.SumRequest{A: 1, B: 1}); err != nil || got.V != 2 {
		t.Fatalf("next gRPC request: %v %v", got, err)
	}
	// The panic was logged with its stack.
	found := false
	for _, l := range ta.logs.lines() {
		if l["msg"] == "panic in endpoint" && strings.Contains(l["stack"].(string), "goroutine") {
			found = true
		}
	}
	if !found {
		t.Fatal("panic not logged with a stack")
	}
}

func TestBusinessErrorsKeepTheirKindAcrossTransports(t *testing.T) {
	ta := startApp(t)
	cc, err := grpc.NewClient(ta.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	hc, err := addsvc.NewHTTPClient(ta.httpURL)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]addsvc.Endpoints{"grpc": addsvc.NewGRPCClient(cc), "http": hc} {
		_, err := c.Sum(context.Background(), addsvc.SumRequest{})
		if !errors.Is(err, addsvc.ErrTwoZeroes) {
			t.Errorf("%s: Sum(0,0) = %v, want ErrTwoZeroes", name, err)
		}
		_, err = c.Sum(context.Background(), addsvc.SumRequest{A: 1 << 62, B: 1 << 62})
		if svcerr.KindOf(err) != svcerr.OutOfRange {
			t.Errorf("%s: overflow = %v, want out_of_range", name, err)
		}
		got, err := c.Concat(context.Background(), addsvc.ConcatRequest{A: "x", B: "y"})
		if err != nil || got.V != "xy" {
			t.Errorf("%s: Concat = %v, %v", name, got, err)
		}
	}
}

func TestStreamingOverGRPC(t *testing.T) {
	ta := startApp(t)
	cc, err := grpc.NewClient(ta.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := addsvc.NewGRPCClient(cc)
	seq, err := c.Range(context.Background(), addsvc.RangeRequest{From: 3, To: 8})
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for v, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if len(got) != 5 || got[0] != 3 || got[4] != 7 {
		t.Fatalf("Range = %v", got)
	}
	seq, _ = c.Range(context.Background(), addsvc.RangeRequest{From: 5, To: 1})
	for _, err := range seq {
		if svcerr.KindOf(err) != svcerr.InvalidArgument {
			t.Fatalf("bad range err = %v", err)
		}
	}
}
