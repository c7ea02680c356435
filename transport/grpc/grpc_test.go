package grpc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/baggage"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
	svcgrpc "github.com/svckit/svckit/transport/grpc"
	"github.com/svckit/svckit/transport/grpc/internal/testpb"
	"github.com/svckit/svckit/transport/meta"
)

const echoService = "svckit.test.Echo"

// msg is the endpoint-side form of EchoRequest and EchoReply.
type msg struct {
	Text string
	N    int64
}

// countReq is the endpoint-side form of CountRequest.
type countReq struct{ N, FailAt int64 }

func decEchoRequest(r *testpb.EchoRequest) (msg, error) {
	if r.GetN() < 0 {
		return msg{}, errors.New("n must not be negative")
	}
	if r.GetN() == 1000 {
		return msg{}, svcerr.Invalid("n", "must not be 1000")
	}
	return msg{r.GetText(), r.GetN()}, nil
}
func encEchoReply(m msg) (*testpb.EchoReply, error) {
	return &testpb.EchoReply{Text: m.Text, N: m.N}, nil
}
func encEchoRequest(m msg) (*testpb.EchoRequest, error) {
	return &testpb.EchoRequest{Text: m.Text, N: m.N}, nil
}
func decEchoReply(r *testpb.EchoReply) (msg, error) { return msg{r.GetText(), r.GetN()}, nil }
func decCountRequest(r *testpb.CountRequest) (countReq, error) {
	return countReq{r.GetN(), r.GetFailAt()}, nil
}
func encCountRequest(r countReq) (*testpb.CountRequest, error) {
	return &testpb.CountRequest{N: r.N, FailAt: r.FailAt}, nil
}
func encCountReply(i int64) (*testpb.CountReply, error) { return &testpb.CountReply{I: i}, nil }
func decCountReply(r *testpb.CountReply) (int64, error) { return r.GetI(), nil }

// service is the test service behind the endpoints.
type service struct {
	// endless is closed when an endless Count (N < 0) stops iterating.
	endless chan struct{}
	// seen receives the context of each Echo call, when not nil.
	seen chan context.Context
	// countDone is set when a Count sequence has yielded all its items.
	mu        sync.Mutex
	countDone bool
}

func newService() *service { return &service{endless: make(chan struct{})} }

// Echo upper-cases the text and adds one to n. Some texts trigger failures: "panic",
// "leak" (an error that is not an *svcerr.Error) and "kind:NAME" (an *svcerr.Error of
// that kind with fields and metadata).
func (s *service) Echo(ctx context.Context, m msg) (msg, error) {
	if s.seen != nil {
		s.seen <- ctx
	}
	switch {
	case m.Text == "panic":
		panic("boom")
	case m.Text == "leak":
		return msg{}, errors.New("secret: password=hunter2")
	case strings.HasPrefix(m.Text, "kind:"):
		k, _ := svcerr.ParseKind(strings.TrimPrefix(m.Text, "kind:"))
		return msg{}, kindError(k)
	}
	return msg{strings.ToUpper(m.Text), m.N + 1}, nil
}

func kindError(k svcerr.Kind) *svcerr.Error {
	return &svcerr.Error{
		Kind:    k,
		Message: "message for " + k.String(),
		Fields:  []svcerr.FieldViolation{{Field: "text", Description: "is " + k.String()}, {Field: "n", Description: "too"}},
		Meta:    map[string]string{"kind": k.String(), "retry_after": "3s"},
		Cause:   errors.New("hidden cause"),
	}
}

// Count streams 0..N-1. With FailAt > 0 it fails after FailAt items; with N < 0 it counts
// until the caller goes away, then closes s.endless.
func (s *service) Count(ctx context.Context, r countReq) (iter.Seq2[int64, error], error) {
	if r.N == 0 && r.FailAt < 0 {
		return nil, svcerr.New(svcerr.NotFound, "nothing to count")
	}
	return func(yield func(int64, error) bool) {
		if r.N < 0 {
			defer close(s.endless)
			for i := int64(0); ctx.Err() == nil; i++ {
				if !yield(i, nil) {
					return
				}
			}
			return
		}
		for i := range r.N {
			if r.FailAt > 0 && i == r.FailAt {
				yield(0, svcerr.New(svcerr.FailedPrecondition, fmt.Sprintf("stopped at %d", i)))
				return
			}
			if r.Text() == "panic" {
				panic("stream boom")
			}
			if !yield(i, nil) {
				return
			}
		}
		s.mu.Lock()
		s.countDone = true
		s.mu.Unlock()
	}, nil
}

// Text lets Count share the "panic" trigger: FailAt -1 with N > 0 panics.
func (r countReq) Text() string {
	if r.FailAt == -1 && r.N > 0 {
		return "panic"
	}
	return ""
}

// register adds the test service's methods to srv.
func (s *service) register(srv *svcgrpc.Server) {
	svcgrpc.Unary(srv, "Echo", s.Echo, decEchoRequest, encEchoReply)
	svcgrpc.Unary(srv, "Update", s.Echo, decEchoRequest, encEchoReply)
	svcgrpc.ServerStream(srv, "Count", s.Count, decCountRequest, encCountReply)
}

// serve starts a grpc.Server made by NewGRPCServer on a loopback port, lets register add
// services to it and returns a connection to it.
func serve(t testing.TB, logger *slog.Logger, register func(*grpcgo.Server), opts ...grpcgo.ServerOption) *grpcgo.ClientConn {
	t.Helper()
	g := svcgrpc.NewGRPCServer(logger, opts...)
	register(g)
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

// syncBuffer is a bytes.Buffer safe for a logger on the server and a reading test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// echoFixture is the test service served by a svckit Server, with a svckit Client.
type echoFixture struct {
	svc    *service
	cc     *grpcgo.ClientConn
	logs   *syncBuffer
	echo   endpoint.Endpoint[msg, msg]
	update endpoint.Endpoint[msg, msg]
	count  endpoint.Endpoint[countReq, iter.Seq2[int64, error]]
}

func newEchoFixture(t testing.TB, sopts []svcgrpc.ServerOption, copts ...svcgrpc.ClientOption) *echoFixture {
	t.Helper()
	f := &echoFixture{svc: newService(), logs: &syncBuffer{}}
	logger := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := svcgrpc.NewServer(echoService, append([]svcgrpc.ServerOption{svcgrpc.WithLogger(logger)}, sopts...)...)
	f.svc.register(srv)
	f.cc = serve(t, logger, func(g *grpcgo.Server) {
		srv.Register(g)
		svcgrpc.Standard(g)
	})
	c := svcgrpc.NewClient(f.cc, echoService, copts...)
	f.echo = svcgrpc.UnaryCall(c, "Echo", encEchoRequest, decEchoReply)
	f.update = svcgrpc.UnaryCall(c, "Update", encEchoRequest, decEchoReply, svcgrpc.Idempotent())
	f.count = svcgrpc.StreamCall(c, "Count", encCountRequest, decCountReply)
	return f
}

// collect ranges over the stream of a Count call.
func collect(t *testing.T, f *echoFixture, ctx context.Context, r countReq) ([]int64, error) {
	t.Helper()
	seq, err := f.count(ctx, r)
	if err != nil {
		t.Fatalf("count returned %v", err)
	}
	var items []int64
	for i, err := range seq {
		if err != nil {
			return items, err
		}
		items = append(items, i)
	}
	return items, nil
}

func TestUnary(t *testing.T) {
	f := newEchoFixture(t, nil)
	got, err := f.echo(t.Context(), msg{"hello", 41})
	if err != nil {
		t.Fatal(err)
	}
	if want := (msg{"HELLO", 42}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestErrorKindsRoundTrip(t *testing.T) {
	f := newEchoFixture(t, nil)
	for k := svcerr.Unknown; k <= svcerr.DataLoss; k++ {
		t.Run(k.String(), func(t *testing.T) {
			_, err := f.echo(t.Context(), msg{Text: "kind:" + k.String()})
			var e *svcerr.Error
			if !errors.As(err, &e) {
				t.Fatalf("got %T %v, want *svcerr.Error", err, err)
			}
			want := kindError(k)
			if e.Kind != want.Kind || e.Message != want.Message || !slices.Equal(e.Fields, want.Fields) || !maps.Equal(e.Meta, want.Meta) {
				t.Errorf("got %+v\nwant %+v", e, want)
			}
			if st := status.Convert(e.Cause); st.Code() != k.GRPCCode() {
				t.Errorf("status code %v, want %v", st.Code(), k.GRPCCode())
			}
			if strings.Contains(err.Error(), "hidden cause") {
				t.Errorf("the server's cause reached the client: %v", err)
			}
			if !errors.Is(err, svcerr.New(k, "")) {
				t.Errorf("errors.Is(%v, kind %v) is false", err, k)
			}
		})
	}
}

func TestErrorNoFieldsNoMeta(t *testing.T) {
	srv := svcgrpc.NewServer(echoService)
	svcgrpc.Unary(srv, "Echo", func(context.Context, msg) (msg, error) {
		return msg{}, svcerr.New(svcerr.NotFound, "no such echo")
	}, decEchoRequest, encEchoReply)
	cc := serve(t, nil, func(g *grpcgo.Server) { srv.Register(g) })
	echo := svcgrpc.UnaryCall(svcgrpc.NewClient(cc, echoService), "Echo", encEchoRequest, decEchoReply)
	_, err := echo(t.Context(), msg{})
	var e *svcerr.Error
	if !errors.As(err, &e) || e.Kind != svcerr.NotFound || e.Message != "no such echo" || e.Fields != nil || e.Meta != nil {
		t.Errorf("got %#v", err)
	}
}

func TestInternalErrorsDoNotLeak(t *testing.T) {
	f := newEchoFixture(t, nil)
	_, err := f.echo(t.Context(), msg{Text: "leak"})
	if k := svcerr.KindOf(err); k != svcerr.Internal {
		t.Errorf("kind %v, want internal", k)
	}
	var e *svcerr.Error
	if errors.As(err, &e) && e.Message != "internal error" {
		t.Errorf("message %q, want %q", e.Message, "internal error")
	}
	// Look at what went over the wire, details included.
	var out testpb.EchoReply
	err = f.cc.Invoke(t.Context(), "/svckit.test.Echo/Echo", &testpb.EchoRequest{Text: "leak"}, &out)
	st := status.Convert(err)
	if st.Code() != codes.Internal || st.Message() != "internal error" {
		t.Errorf("status %v %q, want Internal %q", st.Code(), st.Message(), "internal error")
	}
	if s := fmt.Sprint(st.Proto()); strings.Contains(s, "hunter2") {
		t.Errorf("the status leaks the error text: %s", s)
	}
}

func TestPanic(t *testing.T) {
	f := newEchoFixture(t, nil)
	_, err := f.echo(t.Context(), msg{Text: "panic"})
	var e *svcerr.Error
	if !errors.As(err, &e) || e.Kind != svcerr.Internal || e.Message != "internal error" {
		t.Errorf("got %v, want internal error", err)
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "panic in a gRPC handler") || !strings.Contains(logs, "boom") || !strings.Contains(logs, "goroutine") {
		t.Errorf("panic not logged with its stack: %s", logs)
	}
	if _, err := f.echo(t.Context(), msg{Text: "still there"}); err != nil {
		t.Errorf("the call after the panic failed: %v", err)
	}
	// A panic in a stream.
	_, err = collect(t, f, t.Context(), countReq{N: 3, FailAt: -1})
	if svcerr.KindOf(err) != svcerr.Internal {
		t.Errorf("stream panic: got %v, want internal", err)
	}
	if _, err := f.echo(t.Context(), msg{Text: "still there"}); err != nil {
		t.Errorf("the call after the stream panic failed: %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	f := newEchoFixture(t, nil)
	tests := []struct {
		name   string
		req    msg
		kind   svcerr.Kind
		msg    string
		fields []svcerr.FieldViolation
	}{
		{"plain error", msg{N: -1}, svcerr.InvalidArgument, "n must not be negative", nil},
		{"svcerr", msg{N: 1000}, svcerr.InvalidArgument, "n: must not be 1000", []svcerr.FieldViolation{{Field: "n", Description: "must not be 1000"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.echo(t.Context(), tt.req)
			var e *svcerr.Error
			if !errors.As(err, &e) || e.Kind != tt.kind || e.Message != tt.msg || !slices.Equal(e.Fields, tt.fields) {
				t.Errorf("got %#v, want %v %q %v", err, tt.kind, tt.msg, tt.fields)
			}
		})
	}
	t.Run("malformed message", func(t *testing.T) {
		// Field 1 of EchoRequest is a string; invalid UTF-8 does not unmarshal. grpc-go
		// itself fails the call, with codes.Internal.
		var out testpb.EchoReply
		err := f.cc.Invoke(t.Context(), "/svckit.test.Echo/Echo", wrapperspb.Bytes([]byte{0xff, 0xfe}), &out)
		if status.Code(err) != codes.Internal {
			t.Errorf("got %v, want Internal", err)
		}
		if _, err := f.echo(t.Context(), msg{Text: "ok"}); err != nil {
			t.Errorf("next call: %v", err)
		}
	})
}

func TestStream(t *testing.T) {
	f := newEchoFixture(t, nil)
	items, err := collect(t, f, t.Context(), countReq{N: 50})
	if err != nil {
		t.Fatal(err)
	}
	if want := slices.Collect(func(yield func(int64) bool) {
		for i := range int64(50) {
			yield(i)
		}
	}); !slices.Equal(items, want) {
		t.Errorf("got %v, want %v", items, want)
	}

	t.Run("error mid-stream", func(t *testing.T) {
		items, err := collect(t, f, t.Context(), countReq{N: 10, FailAt: 3})
		if !slices.Equal(items, []int64{0, 1, 2}) {
			t.Errorf("items %v, want [0 1 2]", items)
		}
		var e *svcerr.Error
		if !errors.As(err, &e) || e.Kind != svcerr.FailedPrecondition || e.Message != "stopped at 3" {
			t.Errorf("got %v, want failed_precondition", err)
		}
	})
	t.Run("endpoint error", func(t *testing.T) {
		items, err := collect(t, f, t.Context(), countReq{N: 0, FailAt: -2})
		if len(items) != 0 || svcerr.KindOf(err) != svcerr.NotFound {
			t.Errorf("got %v %v, want no items and not_found", items, err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		items, err := collect(t, f, t.Context(), countReq{N: 0})
		if len(items) != 0 || err != nil {
			t.Errorf("got %v %v", items, err)
		}
	})
}

func TestStreamCancel(t *testing.T) {
	t.Run("break", func(t *testing.T) {
		f := newEchoFixture(t, nil)
		seq, _ := f.count(t.Context(), countReq{N: -1})
		n := 0
		for i, err := range seq {
			if err != nil {
				t.Fatal(err)
			}
			if i != int64(n) {
				t.Fatalf("item %d is %d", n, i)
			}
			if n++; n == 5 {
				break
			}
		}
		waitClosed(t, f.svc.endless, "the server's iterator did not stop after the client broke off")
	})
	t.Run("cancel", func(t *testing.T) {
		f := newEchoFixture(t, nil)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		seq, _ := f.count(ctx, countReq{N: -1})
		var last error
		n := 0
		for _, err := range seq {
			if err != nil {
				last = err
				continue
			}
			if n++; n == 5 {
				cancel()
			}
		}
		if svcerr.KindOf(last) != svcerr.Canceled || !errors.Is(last, context.Canceled) {
			t.Errorf("last error %v, want canceled", last)
		}
		waitClosed(t, f.svc.endless, "the server's iterator did not stop after the client canceled")
	})
}

// waitClosed waits for c to close. The bound only turns a hang into a failure.
func waitClosed(t *testing.T, c <-chan struct{}, msg string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(30 * time.Second):
		t.Fatal(msg)
	}
}

// call is one call seen by a recording middleware.
type call struct {
	info endpoint.Info
	req  any
	resp any
	err  error
}

// recorder is middleware that records the calls it sees and, when events is set, the
// order of events.
type recorder struct {
	mu     sync.Mutex
	name   string
	events *events
	calls  []call
	after  func() // run after next returns
}

// events is an event list shared by recorders on both sides of a call.
type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) add(event string) {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, event)
}

func (r *recorder) middleware(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
	return func(ctx context.Context, req any) (any, error) {
		r.events.add(r.name + " before")
		resp, err := next(ctx, req)
		if r.after != nil {
			r.after()
		}
		r.events.add(r.name + " after")
		r.mu.Lock()
		r.calls = append(r.calls, call{info, req, resp, err})
		r.mu.Unlock()
		return resp, err
	}
}

func (r *recorder) recorded() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

func TestMiddleware(t *testing.T) {
	ev := &events{}
	rec := func(name string) *recorder { return &recorder{name: name, events: ev} }
	s1, s2, c1, c2 := rec("s1"), rec("s2"), rec("c1"), rec("c2")
	f := newEchoFixture(t,
		[]svcgrpc.ServerOption{svcgrpc.WithMiddleware(s1.middleware, s2.middleware), svcgrpc.WithServiceLabel("echo")},
		svcgrpc.WithClientMiddleware(c1.middleware, c2.middleware), svcgrpc.WithClientServiceLabel("echo"))
	if _, err := f.echo(t.Context(), msg{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	want := []string{"c1 before", "c2 before", "s1 before", "s2 before", "s2 after", "s1 after", "c2 after", "c1 after"}
	ev.mu.Lock()
	if !slices.Equal(ev.list, want) {
		t.Errorf("events %v\nwant %v", ev.list, want)
	}
	ev.mu.Unlock()
	if _, err := f.update(t.Context(), msg{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	items, err := collect(t, f, t.Context(), countReq{N: 2})
	if err != nil || len(items) != 2 {
		t.Fatal(items, err)
	}

	infos := func(r *recorder) []endpoint.Info {
		var out []endpoint.Info
		for _, c := range r.recorded() {
			out = append(out, c.info)
		}
		return out
	}
	wantServer := []endpoint.Info{
		{Service: "echo", Method: "Echo", Transport: "grpc", Idempotent: true}, // from the .proto
		{Service: "echo", Method: "Update", Transport: "grpc"},
		{Service: "echo", Method: "Count", Transport: "grpc", Streaming: true},
	}
	wantClient := []endpoint.Info{
		{Service: "echo", Method: "Echo", Transport: "grpc", Client: true, Idempotent: true},
		{Service: "echo", Method: "Update", Transport: "grpc", Client: true, Idempotent: true}, // the option
		{Service: "echo", Method: "Count", Transport: "grpc", Client: true, Streaming: true},
	}
	for _, r := range []*recorder{s1, s2} {
		if got := infos(r); !slices.Equal(got, wantServer) {
			t.Errorf("%s saw %+v\nwant %+v", r.name, got, wantServer)
		}
	}
	for _, r := range []*recorder{c1, c2} {
		if got := infos(r); !slices.Equal(got, wantClient) {
			t.Errorf("%s saw %+v\nwant %+v", r.name, got, wantClient)
		}
	}
	// Middleware sees the endpoint's own request and response types.
	if c := s1.recorded()[0]; c.req != (msg{Text: "hi"}) || c.resp != (msg{"HI", 1}) {
		t.Errorf("server middleware saw %#v -> %#v", c.req, c.resp)
	}
	if c := s1.recorded()[2]; c.req != (countReq{N: 2}) || c.resp != nil {
		t.Errorf("server middleware saw stream %#v -> %#v", c.req, c.resp)
	}
	if c := c1.recorded()[2]; c.req != (countReq{N: 2}) || c.resp != nil {
		t.Errorf("client middleware saw stream %#v -> %#v", c.req, c.resp)
	}
}

func TestStreamMiddlewareSeesWholeStream(t *testing.T) {
	var f *echoFixture
	var doneWhenReturned []bool
	var mu sync.Mutex
	server := &recorder{name: "server"}
	server.after = func() {
		f.svc.mu.Lock()
		defer f.svc.mu.Unlock()
		mu.Lock()
		doneWhenReturned = append(doneWhenReturned, f.svc.countDone)
		mu.Unlock()
	}
	client := &recorder{name: "client"}
	f = newEchoFixture(t, []svcgrpc.ServerOption{svcgrpc.WithMiddleware(server.middleware)},
		svcgrpc.WithClientMiddleware(client.middleware))

	seq, _ := f.count(t.Context(), countReq{N: 20})
	n := 0
	for _, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 20 && len(client.recorded()) != 0 {
			t.Error("the client middleware returned before the last item was consumed")
		}
	}
	if _, err := collect(t, f, t.Context(), countReq{N: 10, FailAt: 4}); err == nil {
		t.Fatal("no error")
	}

	calls := server.recorded()
	if len(calls) != 2 {
		t.Fatalf("server middleware saw %d calls, want 2", len(calls))
	}
	mu.Lock()
	if !doneWhenReturned[0] {
		t.Error("the server middleware returned before the stream was drained")
	}
	mu.Unlock()
	if calls[0].err != nil {
		t.Errorf("first stream: middleware saw error %v", calls[0].err)
	}
	if svcerr.KindOf(calls[1].err) != svcerr.FailedPrecondition {
		t.Errorf("second stream: server middleware saw %v, want failed_precondition", calls[1].err)
	}
	ccalls := client.recorded()
	if len(ccalls) != 2 || ccalls[0].err != nil || svcerr.KindOf(ccalls[1].err) != svcerr.FailedPrecondition {
		t.Errorf("client middleware saw %+v", ccalls)
	}
}

func TestRequestID(t *testing.T) {
	f := newEchoFixture(t, nil)
	f.svc.seen = make(chan context.Context, 1)

	// From the client's context to the server's.
	ctx := meta.WithRequestID(t.Context(), "req-123")
	if _, err := f.echo(ctx, msg{}); err != nil {
		t.Fatal(err)
	}
	sctx := <-f.svc.seen
	if id := meta.RequestID(sctx); id != "req-123" {
		t.Errorf("server saw request id %q, want req-123", id)
	}
	if info := endpoint.InfoFrom(sctx); info == nil || info.FullName() != "svckit.test.Echo.Echo" {
		t.Errorf("server context carries Info %+v", info)
	}

	// Assigned by the server when the client's context has none: the client sends none, as
	// the HTTP and NATS clients do, and a failure brings the server's id back in its status.
	if _, err := f.echo(t.Context(), msg{}); err != nil {
		t.Fatal(err)
	}
	if id := meta.RequestID(<-f.svc.seen); !meta.ValidRequestID(id) {
		t.Errorf("server saw request id %q", id)
	}
	_, err := f.echo(t.Context(), msg{Text: "kind:not_found"})
	if svcerr.KindOf(err) != svcerr.NotFound {
		t.Fatalf("failing call: %v", err)
	}
	id := meta.RequestID(<-f.svc.seen)
	var returned []string
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.RequestInfo); ok {
			returned = append(returned, info.GetRequestId())
		}
	}
	if !meta.ValidRequestID(id) || len(returned) != 1 || returned[0] != id {
		t.Errorf("server made up request id %q; the failed call's status returned %q", id, returned)
	}
	// The client's error names that id, and the id it sent when it sent one.
	if e := svcerr.From(err); e.RequestID != id {
		t.Errorf("error's RequestID %q, want the server's %q", e.RequestID, id)
	}
	_, err = f.echo(ctx, msg{Text: "kind:not_found"})
	<-f.svc.seen
	if e := svcerr.From(err); e.Kind != svcerr.NotFound || e.RequestID != "req-123" {
		t.Errorf("error %v has RequestID %q, want req-123", err, e.RequestID)
	}
}

// TestRequestIDReturned checks where a caller finds the request id of its call: a failed
// call's status carries an errdetails.RequestInfo with the id when the server generated it
// (the caller sent none, or an invalid one), and none when the server used the caller's,
// which the caller has already; the response header never carries x-request-id. The same
// for a Server and for the interceptors of generated services, on success, on errors, on
// panics and on streams.
func TestRequestIDReturned(t *testing.T) {
	f := newEchoFixture(t, nil)
	f.svc.seen = make(chan context.Context, 1)
	plain := &plainServer{seen: make(chan context.Context, 1)}
	pcc := serve(t, nil, func(g *grpcgo.Server) { g.RegisterService(&plainDesc, plain) },
		grpcgo.ChainUnaryInterceptor(svcgrpc.UnaryServerInterceptor("svckit.test.Plain")),
		grpcgo.ChainStreamInterceptor(svcgrpc.StreamServerInterceptor("svckit.test.Plain")))
	servers := []struct {
		name    string
		cc      *grpcgo.ClientConn
		service string
		seen    chan context.Context
		failure string // the Echo text that fails the call
	}{
		{"Server", f.cc, "svckit.test.Echo", f.svc.seen, "kind:not_found"},
		{"interceptors", pcc, "svckit.test.Plain", plain.seen, "status"},
	}
	sent := []struct {
		name, id  string
		generated bool
	}{
		{"valid", "abc-42", false},
		{"invalid", "no spaces allowed", true},
		{"missing", "", true},
	}
	for _, srv := range servers {
		for _, tt := range sent {
			for _, call := range []string{"unary", "error", "panic", "stream"} {
				t.Run(srv.name+"/"+tt.name+"/"+call, func(t *testing.T) {
					ctx := t.Context()
					if tt.id != "" {
						ctx = metadata.AppendToOutgoingContext(ctx, "x-request-id", tt.id)
					}
					var header metadata.MD
					var callErr error
					switch call {
					case "unary", "error", "panic":
						text := map[string]string{"error": srv.failure, "panic": "panic"}[call]
						var out testpb.EchoReply
						callErr = srv.cc.Invoke(ctx, "/"+srv.service+"/Echo", &testpb.EchoRequest{Text: text}, &out, grpcgo.Header(&header))
						if (callErr != nil) != (call != "unary") {
							t.Fatalf("call error %v", callErr)
						}
					case "stream":
						cs, err := srv.cc.NewStream(ctx, &grpcgo.StreamDesc{ServerStreams: true}, "/"+srv.service+"/Count")
						if err != nil {
							t.Fatal(err)
						}
						if err := cs.SendMsg(&testpb.CountRequest{N: 1}); err != nil {
							t.Fatal(err)
						}
						_ = cs.CloseSend()
						if header, err = cs.Header(); err != nil {
							t.Fatal(err)
						}
						for cs.RecvMsg(new(testpb.CountReply)) == nil {
						}
					}
					if got := header.Get("x-request-id"); len(got) != 0 {
						t.Errorf("response header carries x-request-id %q", got)
					}
					if call == "stream" {
						if srv.name == "Server" {
							// The test service's Count does not report its context.
							return
						}
						<-srv.seen
						return
					}
					seen := meta.RequestID(<-srv.seen)
					if !meta.ValidRequestID(seen) || (seen == tt.id) == tt.generated {
						t.Errorf("server saw request id %q, sent %q", seen, tt.id)
					}
					var quoted []string
					for _, d := range status.Convert(callErr).Details() {
						if ri, ok := d.(*errdetails.RequestInfo); ok {
							quoted = append(quoted, ri.GetRequestId())
						}
					}
					switch {
					case tt.generated && callErr != nil && !slices.Equal(quoted, []string{seen}):
						t.Errorf("status carries request ids %q, want the generated %q", quoted, seen)
					case (!tt.generated || callErr == nil) && len(quoted) != 0:
						t.Errorf("status carries request ids %q, want none", quoted)
					}
				})
			}
		}
	}
}

// tracing is a minimal tracing middleware: one span per call, a client or server span.
func tracing(tp trace.TracerProvider) endpoint.Middleware {
	tracer := tp.Tracer("test")
	return func(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
		kind := trace.SpanKindServer
		if info.Client {
			kind = trace.SpanKindClient
		}
		return func(ctx context.Context, req any) (any, error) {
			ctx, span := tracer.Start(ctx, info.FullName(), trace.WithSpanKind(kind))
			defer span.End()
			return next(ctx, req)
		}
	}
}

func TestTracePropagation(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	f := newEchoFixture(t, []svcgrpc.ServerOption{svcgrpc.WithMiddleware(tracing(tp))},
		svcgrpc.WithClientMiddleware(tracing(tp)))
	f.svc.seen = make(chan context.Context, 1)

	member, _ := baggage.NewMember("tenant", "acme")
	bag, _ := baggage.New(member)
	ctx := baggage.ContextWithBaggage(t.Context(), bag)
	if _, err := f.echo(ctx, msg{}); err != nil {
		t.Fatal(err)
	}
	sctx := <-f.svc.seen
	if got := baggage.FromContext(sctx).Member("tenant").Value(); got != "acme" {
		t.Errorf("server saw baggage tenant=%q", got)
	}
	if _, err := collect(t, f, t.Context(), countReq{N: 2}); err != nil {
		t.Fatal(err)
	}

	spans := sr.Ended()
	byKind := map[trace.SpanKind][]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byKind[s.SpanKind()] = append(byKind[s.SpanKind()], s)
	}
	clients, servers := byKind[trace.SpanKindClient], byKind[trace.SpanKindServer]
	if len(clients) != 2 || len(servers) != 2 {
		t.Fatalf("got %d client and %d server spans, want 2 and 2", len(clients), len(servers))
	}
	for i := range 2 {
		c, s := clients[i], servers[i]
		if c.Name() != s.Name() {
			t.Errorf("client span %q, server span %q", c.Name(), s.Name())
		}
		if s.Parent().SpanID() != c.SpanContext().SpanID() || s.SpanContext().TraceID() != c.SpanContext().TraceID() {
			t.Errorf("%s: server span's parent is %v, want the client span %v", s.Name(), s.Parent(), c.SpanContext())
		}
		if !s.Parent().IsRemote() {
			t.Errorf("%s: server span's parent is not remote", s.Name())
		}
	}
}

func TestHealthAndReflection(t *testing.T) {
	srv := svcgrpc.NewServer(echoService)
	newService().register(srv)
	var h interface {
		SetServingStatus(string, healthpb.HealthCheckResponse_ServingStatus)
	}
	cc := serve(t, nil, func(g *grpcgo.Server) {
		srv.Register(g)
		h = svcgrpc.Standard(g)
	})

	hc := healthpb.NewHealthClient(cc)
	check := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		resp, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetStatus()
	}
	if got := check(""); got != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("overall status %v", got)
	}
	h.SetServingStatus(echoService, healthpb.HealthCheckResponse_NOT_SERVING)
	if got := check(echoService); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("%s status %v", echoService, got)
	}

	stream, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ask := func(req *reflectionpb.ServerReflectionRequest) *reflectionpb.ServerReflectionResponse {
		t.Helper()
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{echoService, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, missing %s", names, want)
		}
	}
	resp = ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: echoService}})
	if fds := resp.GetFileDescriptorResponse().GetFileDescriptorProto(); len(fds) == 0 {
		t.Errorf("no file descriptor for %s: %v", echoService, resp)
	}
}

// plainServer implements the Plain service the way protoc-gen-go-grpc code would call it.
type plainServer struct {
	seen chan context.Context
}

func (p *plainServer) Echo(ctx context.Context, r *testpb.EchoRequest) (*testpb.EchoReply, error) {
	p.seen <- ctx
	switch r.GetText() {
	case "status":
		return nil, status.Error(codes.NotFound, "no such echo")
	case "svcerr":
		return nil, kindError(svcerr.AlreadyExists)
	case "panic":
		panic("plain boom")
	}
	return &testpb.EchoReply{Text: r.GetText(), N: r.GetN()}, nil
}

func (p *plainServer) Count(r *testpb.CountRequest, ss grpcgo.ServerStream) error {
	p.seen <- ss.Context()
	for i := range r.GetN() {
		if r.GetFailAt() > 0 && i == r.GetFailAt() {
			return status.Error(codes.Aborted, "conflict")
		}
		if err := ss.SendMsg(&testpb.CountReply{I: i}); err != nil {
			return err
		}
	}
	return nil
}

// plainDesc is what protoc-gen-go-grpc would generate for the Plain service.
var plainDesc = grpcgo.ServiceDesc{
	ServiceName: "svckit.test.Plain",
	HandlerType: (*any)(nil),
	Methods: []grpcgo.MethodDesc{{
		MethodName: "Echo",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpcgo.UnaryServerInterceptor) (any, error) {
			in := new(testpb.EchoRequest)
			if err := dec(in); err != nil {
				return nil, err
			}
			if interceptor == nil {
				return srv.(*plainServer).Echo(ctx, in)
			}
			info := &grpcgo.UnaryServerInfo{Server: srv, FullMethod: "/svckit.test.Plain/Echo"}
			handler := func(ctx context.Context, req any) (any, error) {
				return srv.(*plainServer).Echo(ctx, req.(*testpb.EchoRequest))
			}
			return interceptor(ctx, in, info, handler)
		},
	}},
	Streams: []grpcgo.StreamDesc{{
		StreamName:    "Count",
		ServerStreams: true,
		Handler: func(srv any, stream grpcgo.ServerStream) error {
			in := new(testpb.CountRequest)
			if err := stream.RecvMsg(in); err != nil {
				return err
			}
			return srv.(*plainServer).Count(in, stream)
		},
	}},
	Metadata: "transport/grpc/internal/testpb/echo.proto",
}

func TestServerInterceptors(t *testing.T) {
	rec := &recorder{name: "mw"}
	opts := []svcgrpc.ServerOption{svcgrpc.WithMiddleware(rec.middleware), svcgrpc.WithServiceLabel("plain")}
	plain := &plainServer{seen: make(chan context.Context, 1)}
	cc := serve(t, nil, func(g *grpcgo.Server) {
		g.RegisterService(&plainDesc, plain)
		svcgrpc.Standard(g)
	},
		grpcgo.ChainUnaryInterceptor(svcgrpc.UnaryServerInterceptor("svckit.test.Plain", opts...)),
		grpcgo.ChainStreamInterceptor(svcgrpc.StreamServerInterceptor("svckit.test.Plain", opts...)))
	c := svcgrpc.NewClient(cc, "svckit.test.Plain")
	echo := svcgrpc.UnaryCall(c, "Echo", encEchoRequest, decEchoReply)
	count := svcgrpc.StreamCall(c, "Count", encCountRequest, decCountReply)

	ctx := meta.WithRequestID(t.Context(), "plain-1")
	got, err := echo(ctx, msg{"hi", 2})
	if err != nil || got != (msg{"hi", 2}) {
		t.Fatalf("got %v %v", got, err)
	}
	sctx := <-plain.seen
	if id := meta.RequestID(sctx); id != "plain-1" {
		t.Errorf("handler saw request id %q", id)
	}

	tests := []struct {
		text string
		kind svcerr.Kind
		msg  string
	}{
		{"status", svcerr.NotFound, "no such echo"},
		{"svcerr", svcerr.AlreadyExists, "message for already_exists"},
		{"panic", svcerr.Internal, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			_, err := echo(t.Context(), msg{Text: tt.text})
			<-plain.seen
			var e *svcerr.Error
			if !errors.As(err, &e) || e.Kind != tt.kind || e.Message != tt.msg {
				t.Errorf("got %v, want %v %q", err, tt.kind, tt.msg)
			}
		})
	}

	seq, _ := count(t.Context(), countReq{N: 5, FailAt: 2})
	var items []int64
	var last error
	for i, err := range seq {
		if err != nil {
			last = err
			break
		}
		items = append(items, i)
	}
	<-plain.seen
	if !slices.Equal(items, []int64{0, 1}) || svcerr.KindOf(last) != svcerr.Aborted {
		t.Errorf("stream: got %v %v", items, last)
	}

	// Health checks pass through without the middleware.
	if _, err := healthpb.NewHealthClient(cc).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	calls := rec.recorded()
	var seen []string
	for _, c := range calls {
		seen = append(seen, c.info.Service+"."+c.info.Method)
		if c.info.Transport != "grpc" || c.info.Client {
			t.Errorf("info %+v", c.info)
		}
	}
	// The panic unwinds through the middleware, so it records no call.
	want := []string{"plain.Echo", "plain.Echo", "plain.Echo", "plain.Count"}
	if !slices.Equal(seen, want) {
		t.Errorf("middleware saw %v, want %v", seen, want)
	}
	if k := svcerr.KindOf(calls[1].err); k != svcerr.NotFound {
		t.Errorf("middleware saw the status error as %v, want not_found", k)
	}
	if k := svcerr.KindOf(calls[3].err); k != svcerr.Aborted || !calls[3].info.Streaming {
		t.Errorf("middleware saw the stream as %+v", calls[3])
	}
}

func TestRecoveryInterceptor(t *testing.T) {
	logs := &syncBuffer{}
	plain := &plainServer{seen: make(chan context.Context, 1)}
	cc := serve(t, slog.New(slog.NewJSONHandler(logs, nil)), func(g *grpcgo.Server) {
		g.RegisterService(&plainDesc, plain)
	})
	echo := svcgrpc.UnaryCall(svcgrpc.NewClient(cc, "svckit.test.Plain"), "Echo", encEchoRequest, decEchoReply)
	_, err := echo(t.Context(), msg{Text: "panic"})
	<-plain.seen
	if svcerr.KindOf(err) != svcerr.Internal {
		t.Errorf("got %v, want internal", err)
	}
	if !strings.Contains(logs.String(), "plain boom") {
		t.Errorf("panic not logged: %s", logs.String())
	}
	if _, err := echo(t.Context(), msg{Text: "ok"}); err != nil {
		t.Errorf("call after the panic: %v", err)
	}
	<-plain.seen
}

func TestClientErrors(t *testing.T) {
	f := newEchoFixture(t, nil)
	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := f.echo(ctx, msg{})
		if svcerr.KindOf(err) != svcerr.Canceled || !errors.Is(err, context.Canceled) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
		defer cancel()
		_, err := f.echo(ctx, msg{})
		if svcerr.KindOf(err) != svcerr.DeadlineExceeded || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("unimplemented", func(t *testing.T) {
		c := svcgrpc.NewClient(f.cc, "svckit.test.Missing")
		e := svcgrpc.UnaryCall(c, "Echo", encEchoRequest, decEchoReply)
		if _, err := e(t.Context(), msg{}); svcerr.KindOf(err) != svcerr.Unimplemented {
			t.Errorf("got %v", err)
		}
	})
	t.Run("encode", func(t *testing.T) {
		c := svcgrpc.NewClient(f.cc, echoService)
		e := svcgrpc.UnaryCall(c, "Echo", func(msg) (*testpb.EchoRequest, error) {
			return nil, svcerr.Invalid("text", "is required")
		}, decEchoReply)
		if _, err := e(t.Context(), msg{}); svcerr.KindOf(err) != svcerr.InvalidArgument {
			t.Errorf("got %v", err)
		}
	})
}

func TestStatusMapping(t *testing.T) {
	tests := []struct {
		name string
		err  error
		kind svcerr.Kind
		msg  string
	}{
		{"plain status", status.Error(codes.NotFound, "nope"), svcerr.NotFound, "nope"},
		// Foreign statuses of the kinds that describe the system carry transport text or
		// another server's internals: their message is fixed, the status is the cause.
		{"status without svckit details", status.Error(codes.Unavailable, "dial tcp 10.0.0.7:81: refused"), svcerr.Unavailable, "service unavailable"},
		{"foreign internal", status.Error(codes.Internal, "pq: relation users does not exist"), svcerr.Internal, "internal error"},
		{"foreign unknown", status.Error(codes.Unknown, "panic: nil map"), svcerr.Unknown, "internal error"},
		{"foreign deadline", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), svcerr.DeadlineExceeded, "deadline exceeded"},
		{"foreign data loss", status.Error(codes.DataLoss, "disk 3 failed"), svcerr.DataLoss, "internal error"},
		{"svckit unavailable", svcgrpc.ToStatus(svcerr.New(svcerr.Unavailable, "store is down")).Err(), svcerr.Unavailable, "store is down"},
		{"local svcerr unchanged", svcerr.New(svcerr.Unavailable, "no connection to 10.0.0.7:81"), svcerr.Unavailable, "no connection to 10.0.0.7:81"},
		{"svcerr", svcerr.New(svcerr.Aborted, "conflict"), svcerr.Aborted, "conflict"},
		{"not a status", errors.New("x"), svcerr.Internal, "internal error"},
		{"svckit status", svcgrpc.ToStatus(svcerr.New(svcerr.OutOfRange, "too far")).Err(), svcerr.OutOfRange, "too far"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e *svcerr.Error
			if err := svcgrpc.FromStatus(tt.err); !errors.As(err, &e) || e.Kind != tt.kind || e.Message != tt.msg {
				t.Errorf("got %#v, want %v %q", err, tt.kind, tt.msg)
			}
		})
	}
	// A status's errdetails.RequestInfo names the failed request; an id that is not safe
	// to log is dropped.
	for _, tt := range []struct{ sent, want string }{{"srv-9", "srv-9"}, {"evil\nline", ""}, {"", ""}} {
		st := status.New(codes.Unavailable, "down")
		if tt.sent != "" {
			st, _ = st.WithDetails(&errdetails.RequestInfo{RequestId: tt.sent})
		}
		if got := svcerr.From(svcgrpc.FromStatus(st.Err())).RequestID; got != tt.want {
			t.Errorf("RequestInfo %q: RequestID %q, want %q", tt.sent, got, tt.want)
		}
	}
	if svcgrpc.FromStatus(nil) != nil {
		t.Error("FromStatus(nil) is not nil")
	}
	if st := svcgrpc.ToStatus(nil); st.Code() != codes.OK {
		t.Errorf("ToStatus(nil) = %v", st)
	}
	if st := svcgrpc.ToStatus(context.DeadlineExceeded); st.Code() != codes.DeadlineExceeded {
		t.Errorf("ToStatus(context.DeadlineExceeded) = %v", st)
	}
}

func TestRegistrationChecks(t *testing.T) {
	echo := func(context.Context, msg) (msg, error) { return msg{}, nil }
	count := func(context.Context, countReq) (iter.Seq2[int64, error], error) { return nil, nil }
	tests := []struct {
		name     string
		register func(*svcgrpc.Server)
		want     string
	}{
		{"unknown method", func(s *svcgrpc.Server) {
			svcgrpc.Unary(s, "Nope", echo, decEchoRequest, encEchoReply)
		}, "has no method Nope"},
		{"wrong request", func(s *svcgrpc.Server) {
			svcgrpc.Unary(s, "Echo", echo, func(*testpb.EchoReply) (msg, error) { return msg{}, nil }, encEchoReply)
		}, "takes svckit.test.EchoRequest, not svckit.test.EchoReply"},
		{"unary as stream", func(s *svcgrpc.Server) {
			svcgrpc.ServerStream(s, "Echo", count, func(*testpb.EchoRequest) (countReq, error) { return countReq{}, nil }, encCountReply)
		}, "is not server-streaming"},
		{"stream as unary", func(s *svcgrpc.Server) {
			svcgrpc.Unary(s, "Count", echo, func(*testpb.CountRequest) (msg, error) { return msg{}, nil }, func(msg) (*testpb.CountReply, error) { return nil, nil })
		}, "is not unary"},
		{"twice", func(s *svcgrpc.Server) {
			svcgrpc.Unary(s, "Echo", echo, decEchoRequest, encEchoReply)
			svcgrpc.Unary(s, "Echo", echo, decEchoRequest, encEchoReply)
		}, "registered twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.Contains(s, tt.want) {
					t.Errorf("panic %v, want %q", r, tt.want)
				}
			}()
			tt.register(svcgrpc.NewServer(echoService))
		})
	}
	// A service unknown to the registry is not checked.
	svcgrpc.Unary(svcgrpc.NewServer("elsewhere.Svc"), "Anything", echo, decEchoRequest, encEchoReply)
}
