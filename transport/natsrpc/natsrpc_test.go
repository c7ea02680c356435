package natsrpc_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/natsserver"
	"github.com/svckit/svckit/observe"
	"github.com/svckit/svckit/svcerr"
	"github.com/svckit/svckit/transport/meta"
	"github.com/svckit/svckit/transport/natsrpc"
)

type sumReq struct {
	A int `json:"a"`
	B int `json:"b"`
}

type sumResp struct {
	V int `json:"v"`
}

func sum(_ context.Context, r sumReq) (sumResp, error) { return sumResp{V: r.A + r.B}, nil }

// startNATS starts an embedded server for the test and returns it.
func startNATS(t testing.TB, opts ...natsserver.Option) *natsserver.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := natsserver.Start(ctx, t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

// connect connects to url and closes the connection at the end of the test.
func connect(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// serve subscribes s on nc and drains it at the end of the test.
func serve(t testing.TB, s *natsrpc.Server, nc *nats.Conn) *natsrpc.Serving {
	t.Helper()
	sv, err := s.Subscribe(nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = sv.Drain(ctx)
	})
	return sv
}

func TestRoundTrip(t *testing.T) {
	ns := startNATS(t)
	nc := connect(t, ns.ClientURL())
	srv := natsrpc.NewServer("calc")
	var gotRID atomic.Value
	natsrpc.Handle(srv, "Sum", func(ctx context.Context, r sumReq) (sumResp, error) {
		if info := endpoint.InfoFrom(ctx); info == nil || info.FullName() != "calc.Sum" || info.Transport != "nats" {
			return sumResp{}, svcerr.Errorf(svcerr.Internal, "endpoint info %+v", info)
		}
		gotRID.Store(meta.RequestID(ctx))
		return sum(ctx, r)
	})
	serve(t, srv, nc)
	if got := srv.Subjects(); len(got) != 1 || got[0] != "svc.calc.Sum" || got[0] != natsrpc.Subject("calc", "Sum") {
		t.Fatalf("subjects %v", got)
	}
	call := natsrpc.Call[sumReq, sumResp](natsrpc.NewClient(nc, "calc"), "Sum")
	tests := []struct {
		name string
		ctx  context.Context
		req  sumReq
		want int
		rid  string
	}{
		{"plain", context.Background(), sumReq{A: 2, B: 3}, 5, ""},
		{"zero", context.Background(), sumReq{}, 0, ""},
		{"request id forwarded", meta.WithRequestID(context.Background(), "abc-123"), sumReq{A: -1, B: 1}, 0, "abc-123"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := call(tt.ctx, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if got.V != tt.want {
				t.Fatalf("got %d, want %d", got.V, tt.want)
			}
			rid, _ := gotRID.Load().(string)
			if tt.rid != "" && rid != tt.rid {
				t.Fatalf("server saw request id %q, want %q", rid, tt.rid)
			}
			if !meta.ValidRequestID(rid) {
				t.Fatalf("server saw invalid request id %q", rid)
			}
		})
	}
	// A raw request with an empty body is the zero request; the reply echoes the request id.
	m, err := nc.RequestMsg(&nats.Msg{Subject: "svc.calc.Sum", Header: nats.Header{"X-Request-Id": {"r1"}}}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != `{"v":0}` || m.Header.Get("X-Request-Id") != "r1" {
		t.Fatalf("reply %q %v", m.Data, m.Header)
	}
}

func TestErrorsRoundTrip(t *testing.T) {
	ns := startNATS(t)
	nc := connect(t, ns.ClientURL())
	srv := natsrpc.NewServer("errs")
	natsrpc.Handle(srv, "Fail", func(_ context.Context, r struct{ Case string }) (struct{}, error) {
		switch r.Case {
		case "invalid":
			return struct{}{}, svcerr.Invalid("email", "is required", "age", "must be at least 18")
		case "notfound":
			return struct{}{}, fmt.Errorf("loading: %w", svcerr.New(svcerr.NotFound, "no such user").WithMeta("user_id", "42"))
		case "busy":
			return struct{}{}, svcerr.New(svcerr.Unavailable, "busy").WithMeta("retry_after", "5")
		case "plain":
			return struct{}{}, errors.New("dial tcp 10.0.0.7:5432: connection refused")
		case "panic":
			panic("boom at 10.0.0.7")
		case "deadline":
			return struct{}{}, context.DeadlineExceeded
		}
		return struct{}{}, nil
	})
	serve(t, srv, nc)
	call := natsrpc.Call[struct{ Case string }, struct{}](natsrpc.NewClient(nc, "errs"), "Fail")
	tests := []struct {
		name   string
		kind   svcerr.Kind
		msg    string
		fields []svcerr.FieldViolation
		meta   map[string]string
	}{
		{"invalid", svcerr.InvalidArgument, "invalid request",
			[]svcerr.FieldViolation{{Field: "email", Description: "is required"}, {Field: "age", Description: "must be at least 18"}}, nil},
		{"notfound", svcerr.NotFound, "no such user", nil, map[string]string{"user_id": "42"}},
		{"busy", svcerr.Unavailable, "busy", nil, map[string]string{"retry_after": "5"}},
		{"plain", svcerr.Internal, "internal error", nil, nil},
		{"panic", svcerr.Internal, "internal error", nil, nil},
		{"deadline", svcerr.DeadlineExceeded, "deadline exceeded", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := call(context.Background(), struct{ Case string }{tt.name})
			var e *svcerr.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *svcerr.Error", err, err)
			}
			if e.Kind != tt.kind || e.Message != tt.msg {
				t.Fatalf("got %v %q, want %v %q", e.Kind, e.Message, tt.kind, tt.msg)
			}
			if fmt.Sprint(e.Fields) != fmt.Sprint(tt.fields) || fmt.Sprint(e.Meta) != fmt.Sprint(tt.meta) {
				t.Fatalf("details %v %v, want %v %v", e.Fields, e.Meta, tt.fields, tt.meta)
			}
			if strings.Contains(err.Error(), "10.0.0.7") {
				t.Fatalf("internal detail leaked: %v", err)
			}
		})
	}
	// The server keeps serving after the panic.
	if _, err := call(context.Background(), struct{ Case string }{"ok"}); err != nil {
		t.Fatal(err)
	}
	// The reply carries the NATS micro error headers.
	m, err := nc.Request("svc.errs.Fail", []byte(`{"Case":"notfound"}`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(natsrpc.ErrorCodeHeader) != "404" || m.Header.Get(natsrpc.ErrorHeader) != "no such user" {
		t.Fatalf("error headers %v", m.Header)
	}
}

func TestMalformedRequests(t *testing.T) {
	ns := startNATS(t)
	nc := connect(t, ns.ClientURL())
	srv := natsrpc.NewServer("calc", natsrpc.WithMaxBodyBytes(64), natsrpc.WithStrictFields())
	natsrpc.Handle(srv, "Sum", sum)
	serve(t, srv, nc)
	tests := []struct {
		name, body string
		kind       svcerr.Kind
		contains   string
	}{
		{"syntax", `{"a":`, svcerr.InvalidArgument, "malformed JSON"},
		{"type", `{"a":"x"}`, svcerr.InvalidArgument, "field a: must be an integer"},
		{"not an object", `[1]`, svcerr.InvalidArgument, "must be an object"},
		{"unknown field", `{"c":1}`, svcerr.InvalidArgument, "unknown field c"},
		{"trailing", `{"a":1} {}`, svcerr.InvalidArgument, "malformed JSON"},
		{"binary", "\xff\xfe\x00", svcerr.InvalidArgument, "malformed JSON"},
		{"oversized", `{"a":` + strings.Repeat("1", 100) + `}`, svcerr.ResourceExhausted, "larger than the limit of 64 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := nc.Request("svc.calc.Sum", []byte(tt.body), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var b natsrpc.ErrorBody
			if err := jsonUnmarshal(m.Data, &b); err != nil || b.Kind != tt.kind.String() || !strings.Contains(b.Message, tt.contains) {
				t.Fatalf("reply %q (%v), want %v containing %q", m.Data, err, tt.kind, tt.contains)
			}
			if b.RequestID == "" || m.Header.Get(natsrpc.ErrorCodeHeader) == "" {
				t.Fatalf("reply without request id or error code: %q %v", m.Data, m.Header)
			}
		})
	}
}

func TestOversizedRequestRefused(t *testing.T) {
	ns := startNATS(t)
	nc := connect(t, ns.ClientURL())
	srv := natsrpc.NewServer("echo", natsrpc.WithMaxBodyBytes(500))
	var calls atomic.Int32
	natsrpc.Handle(srv, "Echo", func(_ context.Context, s string) (int, error) { calls.Add(1); return len(s), nil })
	serve(t, srv, nc)
	small := natsrpc.Call[string, int](natsrpc.NewClient(nc, "echo", natsrpc.WithMaxRequestBytes(100)), "Echo")
	big := natsrpc.Call[string, int](natsrpc.NewClient(nc, "echo", natsrpc.WithMaxRequestBytes(1<<40)), "Echo")
	tests := []struct {
		name     string
		call     endpoint.Endpoint[string, int]
		size     int
		kind     svcerr.Kind
		contains string
		calls    int32
	}{
		{"client limit", small, 200, svcerr.ResourceExhausted, "request is larger than the limit of 100 bytes", 0},
		{"connection max payload", big, int(nc.MaxPayload()) + 1, svcerr.ResourceExhausted,
			fmt.Sprintf("request is larger than the limit of %d bytes", nc.MaxPayload()), 0},
		{"server limit", big, 1000, svcerr.ResourceExhausted, "request body is larger than the limit of 500 bytes", 0},
		{"fits", big, 400, svcerr.Unknown, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := calls.Load()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := tt.call(ctx, strings.Repeat("x", tt.size))
			if svcerr.KindOf(err) != tt.kind || (err != nil && !strings.Contains(err.Error(), tt.contains)) {
				t.Fatalf("got %v, want kind %v with %q", err, tt.kind, tt.contains)
			}
			if got := calls.Load() - before; got != tt.calls {
				t.Fatalf("endpoint ran %d times, want %d", got, tt.calls)
			}
		})
	}
}

func TestNoReplySubjectDropped(t *testing.T) {
	ns := startNATS(t)
	nc := connect(t, ns.ClientURL())
	srv := natsrpc.NewServer("calc")
	var calls atomic.Int32
	natsrpc.Handle(srv, "Sum", func(ctx context.Context, r sumReq) (sumResp, error) { calls.Add(1); return sum(ctx, r) })
	serve(t, srv, nc)
	if err := nc.Publish("svc.calc.Sum", []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	// The subscription hands messages over in order: once a later request is answered,
	// the one without a reply subject has been seen and dropped.
	if _, err := natsrpc.Call[sumReq, sumResp](natsrpc.NewClient(nc, "calc"), "Sum")(context.Background(), sumReq{}); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("endpoint ran %d times, want 1 (the request without a reply subject must not run)", n)
	}
}

func TestDeadlineCarried(t *testing.T) {
	ns := startNATS(t)
	nc := connect(t, ns.ClientURL())
	srv := natsrpc.NewServer("slow")
	seen := make(chan time.Duration, 1)
	natsrpc.Handle(srv, "Wait", func(ctx context.Context, block bool) (bool, error) {
		dl, ok := ctx.Deadline()
		if !ok {
			seen <- -1
			return false, nil
		}
		seen <- time.Until(dl)
		if block {
			<-ctx.Done()
			return false, ctx.Err()
		}
		return true, nil
	})
	serve(t, srv, nc)
	call := natsrpc.Call[bool, bool](natsrpc.NewClient(nc, "slow", natsrpc.WithDefaultTimeout(7*time.Second)), "Wait")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := call(ctx, false); err != nil {
		t.Fatal(err)
	}
	if d := <-seen; d <= 0 || d > 2*time.Second {
		t.Fatalf("server saw %v left, want (0, 2s]", d)
	}
	// Without a deadline, the client's default timeout travels.
	if _, err := call(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if d := <-seen; d <= 5*time.Second || d > 7*time.Second {
		t.Fatalf("server saw %v left, want about 7s", d)
	}
	// A call that outlives its deadline fails with DeadlineExceeded, on time.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	start := time.Now()
	_, err := call(ctx2, true)
	if svcerr.KindOf(err) != svcerr.DeadlineExceeded {
		t.Fatalf("got %v, want deadline_exceeded", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("call returned after %v", el)
	}
	<-seen
	// An expired context is not sent at all.
	ctx3, cancel3 := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel3()
	<-ctx3.Done()
	if _, err := call(ctx3, false); svcerr.KindOf(err) != svcerr.DeadlineExceeded {
		t.Fatalf("got %v, want deadline_exceeded", err)
	}
	select {
	case d := <-seen:
		t.Fatalf("expired call reached the server (%v)", d)
	default:
	}
}

// auth is server middleware that wants "Authorization: Bearer secret".
func auth(_ endpoint.Info, next endpoint.Handler) endpoint.Handler {
	return func(ctx context.Context, req any) (any, error) {
		switch meta.BearerToken(ctx) {
		case "":
			return nil, svcerr.New(svcerr.Unauthenticated, "missing token").WithMeta("www_authenticate", "Bearer")
		case "secret":
			return next(meta.WithPrincipal(ctx, "alice"), req)
		}
		return nil, svcerr.New(svcerr.Unauthenticated, "bad token")
	}
}

func TestAuthHeader(t *testing.T) {
	ns := startNATS(t)
	nc := connect(t, ns.ClientURL())
	srv := natsrpc.NewServer("who", natsrpc.WithMiddleware(auth))
	natsrpc.Handle(srv, "Me", func(ctx context.Context, _ struct{}) (string, error) {
		return fmt.Sprint(meta.Principal(ctx)), nil
	})
	serve(t, srv, nc)
	withToken := func(tok string) endpoint.Middleware {
		return func(_ endpoint.Info, next endpoint.Handler) endpoint.Handler {
			return func(ctx context.Context, req any) (any, error) {
				return next(meta.WithOutgoingHeader(ctx, "Authorization", "Bearer "+tok), req)
			}
		}
	}
	tests := []struct {
		name string
		mws  []endpoint.Middleware
		want string
		kind svcerr.Kind
	}{
		{"token", []endpoint.Middleware{withToken("secret")}, "alice", svcerr.Unknown},
		{"no token", nil, "", svcerr.Unauthenticated},
		{"wrong token", []endpoint.Middleware{withToken("nope")}, "", svcerr.Unauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			call := natsrpc.Call[struct{}, string](natsrpc.NewClient(nc, "who", natsrpc.WithClientMiddleware(tt.mws...)), "Me")
			got, err := call(context.Background(), struct{}{})
			if svcerr.KindOf(err) != tt.kind || got != tt.want {
				t.Fatalf("got %q, %v; want %q, kind %v", got, err, tt.want, tt.kind)
			}
		})
	}
}

func TestTraceContextPropagated(t *testing.T) {
	ns := startNATS(t)
	nc := connect(t, ns.ClientURL())
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	srv := natsrpc.NewServer("calc", natsrpc.WithMiddleware(observe.Tracing(tp)))
	natsrpc.Handle(srv, "Sum", sum)
	serve(t, srv, nc)
	call := natsrpc.Call[sumReq, sumResp](natsrpc.NewClient(nc, "calc", natsrpc.WithClientMiddleware(observe.Tracing(tp))), "Sum")
	if _, err := call(context.Background(), sumReq{A: 1}); err != nil {
		t.Fatal(err)
	}
	var client, server sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		switch s.SpanKind() {
		case trace.SpanKindClient:
			client = s
		case trace.SpanKindServer:
			server = s
		}
	}
	if client == nil || server == nil {
		t.Fatalf("spans %v", rec.Ended())
	}
	if client.SpanContext().TraceID() != server.SpanContext().TraceID() {
		t.Fatalf("trace ids differ: client %s, server %s", client.SpanContext().TraceID(), server.SpanContext().TraceID())
	}
	if server.Parent().SpanID() != client.SpanContext().SpanID() || !server.Parent().IsRemote() {
		t.Fatalf("server span's parent %v is not the client span %v", server.Parent(), client.SpanContext())
	}
}

func TestQueueGroupSharesCalls(t *testing.T) {
	ns := startNATS(t)
	var counts [2]atomic.Int32
	for i := range counts {
		srv := natsrpc.NewServer("calc")
		natsrpc.Handle(srv, "Sum", func(ctx context.Context, r sumReq) (sumResp, error) {
			counts[i].Add(1)
			return sum(ctx, r)
		})
		serve(t, srv, connect(t, ns.ClientURL()))
	}
	call := natsrpc.Call[sumReq, sumResp](natsrpc.NewClient(connect(t, ns.ClientURL()), "calc"), "Sum")
	const n = 200
	for i := range n {
		if got, err := call(context.Background(), sumReq{A: i, B: 1}); err != nil || got.V != i+1 {
			t.Fatalf("call %d: %v %v", i, got, err)
		}
	}
	a, b := counts[0].Load(), counts[1].Load()
	if a+b != n || a == 0 || b == 0 {
		t.Fatalf("replicas served %d and %d of %d calls; each call must be served once and both must serve", a, b, n)
	}
}

func TestDrainFinishesCallsInFlight(t *testing.T) {
	ns := startNATS(t)
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	srv1 := natsrpc.NewServer("slow")
	natsrpc.Handle(srv1, "Do", func(_ context.Context, _ struct{}) (string, error) {
		started <- struct{}{}
		<-release
		return "first", nil
	})
	sv1, err := srv1.Subscribe(connect(t, ns.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	call := natsrpc.Call[struct{}, string](natsrpc.NewClient(connect(t, ns.ClientURL()), "slow"), "Do")
	result := make(chan string, 1)
	go func() {
		got, err := call(context.Background(), struct{}{})
		if err != nil {
			got = err.Error()
		}
		result <- got
	}()
	<-started
	// A second replica joins; the first drains while its call is in flight.
	srv2 := natsrpc.NewServer("slow")
	natsrpc.Handle(srv2, "Do", func(context.Context, struct{}) (string, error) { return "second", nil })
	serve(t, srv2, connect(t, ns.ClientURL()))
	subs := ns.Server().NumSubscriptions()
	drained := make(chan error, 1)
	go func() { drained <- sv1.Drain(context.Background()) }()
	// The queue group stops choosing the first replica once the NATS server has its
	// unsubscribe, which Drain sends from its own goroutine: wait for that.
	waitFor(t, func() bool { return ns.Server().NumSubscriptions() < subs })
	// New calls go to the second replica while the first finishes its call.
	for range 5 {
		if got, err := call(context.Background(), struct{}{}); err != nil || got != "second" {
			t.Fatalf("call during drain: %q %v", got, err)
		}
	}
	select {
	case err := <-drained:
		t.Fatalf("drain returned (%v) with a call in flight", err)
	default:
	}
	close(release)
	if got := <-result; got != "first" {
		t.Fatalf("call in flight got %q", got)
	}
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
}

func TestNoRespondersRetried(t *testing.T) {
	ns := startNATS(t)
	nc := connect(t, ns.ClientURL())
	call := natsrpc.Call[sumReq, sumResp](natsrpc.NewClient(nc, "late"), "Sum")

	// Nobody listens: the call waits until its deadline and says so.
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	_, err := call(ctx, sumReq{})
	if svcerr.KindOf(err) != svcerr.DeadlineExceeded || !strings.Contains(err.Error(), "no server answered") {
		t.Fatalf("got %v, want deadline_exceeded: no server answered", err)
	}

	// A server that subscribes while the call waits answers it.
	srv := natsrpc.NewServer("late")
	natsrpc.Handle(srv, "Sum", sum)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	done := make(chan error, 1)
	sent := nc.Stats().OutMsgs
	go func() {
		got, err := call(ctx2, sumReq{A: 4, B: 4})
		if err == nil && got.V != 8 {
			err = fmt.Errorf("got %d", got.V)
		}
		done <- err
	}()
	// Wait until the call has been refused and sent again: it is retrying.
	waitFor(t, func() bool { return nc.Stats().OutMsgs >= sent+2 })
	serve(t, srv, connect(t, ns.ClientURL()))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 20s")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition; no event to wait on
	}
}

func TestPermissions(t *testing.T) {
	ns := startNATS(t, natsserver.WithUsers(
		natsserver.ServiceUser("calc", "calcpw", nil, []string{"svc.calc.>"}),
		natsserver.ServiceUser("intruder", "intrpw", nil, nil),
		natsserver.User{Name: "caller", Password: "callerpw", Publish: []string{"svc.calc.Sum"}, Subscribe: []string{"_INBOX.>"}},
	))
	url := func(user, pw string) string { return natsserver.WithUserInfo(ns.PlainURL(), user, pw) }
	quiet := nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})

	// A user without permission to subscribe the subject cannot serve it.
	intruder := natsrpc.NewServer("calc")
	natsrpc.Handle(intruder, "Sum", sum)
	if _, err := intruder.Subscribe(connect(t, url("intruder", "intrpw"), quiet)); err == nil || !errors.Is(err, nats.ErrPermissionViolation) {
		t.Fatalf("subscribe without permission: %v", err)
	}

	srv := natsrpc.NewServer("calc")
	natsrpc.Handle(srv, "Sum", sum)
	natsrpc.Handle(srv, "Secret", sum)
	serve(t, srv, connect(t, url("calc", "calcpw")))

	caller := connect(t, url("caller", "callerpw"), quiet)
	c := natsrpc.NewClient(caller, "calc")
	if got, err := natsrpc.Call[sumReq, sumResp](c, "Sum")(context.Background(), sumReq{A: 1, B: 1}); err != nil || got.V != 2 {
		t.Fatalf("allowed call: %v %v", got, err)
	}
	// The caller may not publish to Secret: the server refuses the request.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := natsrpc.Call[sumReq, sumResp](c, "Secret")(ctx, sumReq{})
	if svcerr.KindOf(err) != svcerr.PermissionDenied {
		t.Fatalf("call without permission: %v, want permission_denied", err)
	}
}

// TestConcurrentCalls runs many calls at once through one client and one server.
func TestConcurrentCalls(t *testing.T) {
	ns := startNATS(t)
	srv := natsrpc.NewServer("calc", natsrpc.WithMaxInFlight(4))
	var inflight, peak atomic.Int32
	natsrpc.Handle(srv, "Sum", func(ctx context.Context, r sumReq) (sumResp, error) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		return sum(ctx, r)
	})
	serve(t, srv, connect(t, ns.ClientURL()))
	call := natsrpc.Call[sumReq, sumResp](natsrpc.NewClient(connect(t, ns.ClientURL()), "calc"), "Sum")
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for i := range 400 {
		wg.Go(func() {
			got, err := call(context.Background(), sumReq{A: i, B: i})
			if err == nil && got.V != 2*i {
				err = fmt.Errorf("call %d got %d", i, got.V)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if p := peak.Load(); p > 4 {
		t.Fatalf("%d calls ran at once, limit 4", p)
	}
}

// TestForeignCallerHeaders sends a request as a caller in another language might, with
// header names in lower case: the server reads them all the same.
func TestForeignCallerHeaders(t *testing.T) {
	ns := startNATS(t)
	nc := connect(t, ns.ClientURL())
	type seen struct {
		rid, token string
		left       time.Duration
		traceID    string
	}
	got := make(chan seen, 1)
	srv := natsrpc.NewServer("peek")
	natsrpc.Handle(srv, "Look", func(ctx context.Context, _ struct{}) (struct{}, error) {
		var s seen
		s.rid, s.token = meta.RequestID(ctx), meta.BearerToken(ctx)
		if dl, ok := ctx.Deadline(); ok {
			s.left = time.Until(dl)
		}
		s.traceID = trace.SpanContextFromContext(ctx).TraceID().String()
		got <- s
		return struct{}{}, nil
	})
	serve(t, srv, nc)
	m, err := nc.RequestMsg(&nats.Msg{Subject: "svc.peek.Look", Header: nats.Header{
		"x-request-id":      {"from-python"},
		"x-request-timeout": {"1500"},
		"authorization":     {"Bearer abc"},
		"traceparent":       {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
	}}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(natsrpc.ErrorCodeHeader) != "" {
		t.Fatalf("error reply %q", m.Data)
	}
	s := <-got
	if s.rid != "from-python" || s.token != "abc" || s.left <= 0 || s.left > 1500*time.Millisecond ||
		s.traceID != "0af7651916cd43dd8448eb211c80319c" {
		t.Fatalf("server saw %+v", s)
	}
}

// TestClosedConnection calls through a closed connection: unavailable, at once.
func TestClosedConnection(t *testing.T) {
	ns := startNATS(t)
	nc := connect(t, ns.ClientURL())
	call := natsrpc.Call[sumReq, sumResp](natsrpc.NewClient(nc, "calc"), "Sum")
	nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := call(ctx, sumReq{}); svcerr.KindOf(err) != svcerr.Unavailable || strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("got %v, want unavailable without an address", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("took %v", el)
	}
}

// TestHostileReplySubject sends requests whose reply subjects the server could not
// publish to (wildcards): they are dropped, and the server's connection keeps serving.
func TestHostileReplySubject(t *testing.T) {
	ns := startNATS(t)
	snc := connect(t, ns.ClientURL(), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	srv := natsrpc.NewServer("calc")
	var calls atomic.Int32
	natsrpc.Handle(srv, "Sum", func(ctx context.Context, r sumReq) (sumResp, error) { calls.Add(1); return sum(ctx, r) })
	serve(t, srv, snc)
	nc := connect(t, ns.ClientURL())
	for _, reply := range []string{"evil.*", "evil.>", ">", "a..b", "*", "_INBOX." + strings.Repeat("x", 2000)} {
		if err := nc.PublishMsg(&nats.Msg{Subject: "svc.calc.Sum", Reply: reply, Data: []byte(`{"a":1}`)}); err != nil {
			t.Fatalf("publish with reply %q: %v", reply, err)
		}
	}
	got, err := natsrpc.Call[sumReq, sumResp](natsrpc.NewClient(nc, "calc"), "Sum")(context.Background(), sumReq{A: 1, B: 2})
	if err != nil || got.V != 3 {
		t.Fatalf("call after hostile replies: %v %v", got, err)
	}
	if err := snc.Flush(); err != nil || !snc.IsConnected() {
		t.Fatalf("server connection %v: %v", snc.Status(), err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("endpoint ran %d times, want 1", n)
	}
}
