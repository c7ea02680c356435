package observe

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
)

const (
	remoteTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	remoteSpanID  = "00f067aa0ba902b7"
)

func TestTracingRemoteParent(t *testing.T) {
	tp, rec := newRecorder(t)
	h := http.Header{}
	h.Set("traceparent", "00-"+remoteTraceID+"-"+remoteSpanID+"-01")
	h.Set("baggage", "tenant=acme")
	ctx := Propagator().Extract(context.Background(), propagation.HeaderCarrier(h))

	var inner trace.SpanContext
	var tenant string
	ep := func(ctx context.Context, _ string) (string, error) {
		inner = trace.SpanContextFromContext(ctx)
		tenant = baggage.FromContext(ctx).Member("tenant").Value()
		return "ok", nil
	}
	info := endpoint.Info{Service: "greeter", Method: "Hello", Transport: "http"}
	if _, err := endpoint.Wrap(info, ep, Tracing(tp))(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("got %d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.Name() != "greeter/Hello" || s.SpanKind() != trace.SpanKindServer {
		t.Errorf("span %q kind %v, want greeter/Hello server", s.Name(), s.SpanKind())
	}
	if s.SpanContext().TraceID().String() != remoteTraceID || s.Parent().SpanID().String() != remoteSpanID || !s.Parent().IsRemote() {
		t.Errorf("span trace %v parent %v (remote %v), want trace %s parent %s remote",
			s.SpanContext().TraceID(), s.Parent().SpanID(), s.Parent().IsRemote(), remoteTraceID, remoteSpanID)
	}
	if inner.SpanID() != s.SpanContext().SpanID() {
		t.Errorf("endpoint saw span %v, want the middleware's %v", inner.SpanID(), s.SpanContext().SpanID())
	}
	if tenant != "acme" {
		t.Errorf("baggage tenant = %q, want acme", tenant)
	}
	// HTTP is not an RPC system in the semantic conventions: no rpc.* attributes.
	if a := s.Attributes(); len(a) != 0 {
		t.Errorf("HTTP span attributes %v, want none", a)
	}
	if s.Status().Code != codes.Unset {
		t.Errorf("status = %v, want Unset", s.Status())
	}
}

func TestTracingClientInjects(t *testing.T) {
	// A client span is a child of the caller's span, and a transport injects its context.
	tp, rec := newRecorder(t)
	ctx, parent := tp.Tracer("test").Start(context.Background(), "caller")
	var sent http.Header
	call := func(ctx context.Context, _ string) (string, error) {
		sent = http.Header{}
		Propagator().Inject(ctx, propagation.HeaderCarrier(sent))
		return "", nil
	}
	info := endpoint.Info{Service: "catalog", Method: "Reserve", Transport: "grpc", Client: true}
	if _, err := endpoint.Wrap(info, call, Tracing(tp))(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	parent.End()
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("got %d spans, want 2", len(spans))
	}
	c := spans[0]
	if c.Name() != "catalog/Reserve" || c.SpanKind() != trace.SpanKindClient || c.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("client span %q kind %v parent %v", c.Name(), c.SpanKind(), c.Parent().SpanID())
	}
	want := "00-" + c.SpanContext().TraceID().String() + "-" + c.SpanContext().SpanID().String() + "-01"
	if got := sent.Get("traceparent"); got != want {
		t.Errorf("traceparent = %q, want %q", got, want)
	}
}

// TestTracingRPCAttributes checks the attributes of RPC spans against the semantic
// conventions of the version in go.mod: rpc.system.name and a fully qualified rpc.method,
// no rpc.system or rpc.service (older conventions).
func TestTracingRPCAttributes(t *testing.T) {
	for _, transport := range []string{"grpc", "nats", "http"} {
		t.Run(transport, func(t *testing.T) {
			tp, rec := newRecorder(t)
			info := endpoint.Info{Service: "catalog", Method: "Reserve", Transport: transport}
			if _, err := endpoint.Wrap(info, failWith(nil), Tracing(tp))(context.Background(), ""); err != nil {
				t.Fatal(err)
			}
			got := make(map[attribute.Key]string)
			for _, a := range rec.Ended()[0].Attributes() {
				got[a.Key] = a.Value.Emit()
			}
			want := map[attribute.Key]string{"rpc.system.name": transport, "rpc.method": "catalog/Reserve"}
			if transport == "http" {
				want = map[attribute.Key]string{}
			}
			if !maps.Equal(got, want) {
				t.Errorf("attributes %v, want %v", got, want)
			}
		})
	}
}

// TestTracingCallerCanceled: a call whose caller canceled its context is not a failed span
// on either side, whatever error the call returned; a timeout still is.
func TestTracingCallerCanceled(t *testing.T) {
	tests := []struct {
		name   string
		client bool
		err    error
	}{
		{"server canceled", false, context.Canceled},
		{"server unavailable after cancel", false, svcerr.Wrap(svcerr.Unavailable, "store", context.Canceled)},
		{"client canceled", true, svcerr.Wrap(svcerr.Canceled, "request canceled", context.Canceled)},
		{"client internal after cancel", true, errors.New("read: use of closed connection")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, rec := newRecorder(t)
			ctx, cancel := context.WithCancel(context.Background())
			info := endpoint.Info{Service: "s", Method: "M", Transport: "grpc", Client: tt.client}
			h := endpoint.Wrap(info, func(context.Context, string) (string, error) {
				cancel()
				return "", tt.err
			}, Tracing(tp))
			if _, err := h(ctx, ""); err != tt.err {
				t.Fatalf("err = %v", err)
			}
			if s := rec.Ended()[0]; s.Status().Code != codes.Unset || len(s.Events()) != 0 {
				t.Errorf("status %v, events %v: a canceled call is not a failure", s.Status(), s.Events())
			}
		})
	}
	// The same errors without a canceled caller are failures of a client call.
	tp, rec := newRecorder(t)
	info := endpoint.Info{Service: "s", Method: "M", Transport: "grpc", Client: true}
	_, _ = endpoint.Wrap(info, failWith(svcerr.New(svcerr.Canceled, "x")), Tracing(tp))(context.Background(), "")
	if s := rec.Ended()[0]; s.Status().Code != codes.Error {
		t.Errorf("a client call the server canceled has status %v, want Error", s.Status())
	}
}

func TestTracingErrors(t *testing.T) {
	tests := []struct {
		name       string
		client     bool
		err        error
		wantKind   string
		wantStatus codes.Code
	}{
		{"server ok", false, nil, "", codes.Unset},
		{"server not found", false, svcerr.New(svcerr.NotFound, "x"), "not_found", codes.Unset},
		{"server invalid", false, svcerr.Invalid("a", "b"), "invalid_argument", codes.Unset},
		{"server internal", false, errors.New("boom"), "internal", codes.Error},
		{"server unavailable", false, svcerr.New(svcerr.Unavailable, "x"), "unavailable", codes.Error},
		{"server deadline", false, context.DeadlineExceeded, "deadline_exceeded", codes.Error},
		{"client not found", true, svcerr.New(svcerr.NotFound, "x"), "not_found", codes.Error},
		{"client ok", true, nil, "", codes.Unset},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, rec := newRecorder(t)
			info := endpoint.Info{Service: "s", Method: "M", Transport: "grpc", Client: tt.client}
			if _, err := endpoint.Wrap(info, failWith(tt.err), Tracing(tp))(context.Background(), ""); err != tt.err {
				t.Fatalf("err = %v", err)
			}
			s := rec.Ended()[0]
			var kind string
			for _, a := range s.Attributes() {
				if a.Key == ErrorKindKey {
					kind = a.Value.AsString()
				}
			}
			if kind != tt.wantKind {
				t.Errorf("svckit.error.kind = %q, want %q", kind, tt.wantKind)
			}
			if s.Status().Code != tt.wantStatus {
				t.Errorf("status = %v, want %v", s.Status().Code, tt.wantStatus)
			}
			hasException := false
			for _, e := range s.Events() {
				hasException = hasException || e.Name == "exception"
			}
			if hasException != (tt.wantStatus == codes.Error) {
				t.Errorf("exception event = %v, want %v", hasException, tt.wantStatus == codes.Error)
			}
			if tt.wantStatus == codes.Error && s.Status().Description != tt.err.Error() {
				t.Errorf("status description = %q, want %q", s.Status().Description, tt.err.Error())
			}
		})
	}
}

func TestTracingNoop(t *testing.T) {
	for _, tp := range []trace.TracerProvider{nil, noop.NewTracerProvider()} {
		info := endpoint.Info{Service: "s", Method: "M"}
		got, err := endpoint.Wrap(info, failWith(nil), Tracing(tp))(context.Background(), "x")
		if got != "hello x" || err != nil {
			t.Errorf("with %T: got %q, %v", tp, got, err)
		}
	}
}

func TestTracingWithoutRPCAttributes(t *testing.T) {
	tp, rec := newRecorder(t)
	info := endpoint.Info{Service: "s", Method: "M", Transport: "grpc"}
	mw := Tracing(tp, WithoutRPCAttributes())
	_, _ = endpoint.Wrap(info, failWith(nil), mw)(context.Background(), "")
	_, _ = endpoint.Wrap(info, failWith(errors.New("boom")), mw)(context.Background(), "")
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("got %d spans", len(spans))
	}
	if a := spans[0].Attributes(); len(a) != 0 || spans[0].Name() != "s/M" {
		t.Errorf("successful span %q has attributes %v, want none", spans[0].Name(), a)
	}
	if a := spans[1].Attributes(); len(a) != 1 || a[0] != ErrorKindKey.String("internal") || spans[1].Status().Code != codes.Error {
		t.Errorf("failed span has attributes %v, status %v", a, spans[1].Status())
	}
}

// TestTracingBodies: with WithBodies, a recording span carries the request and response
// as JSON, cut at the limit; without it, neither.
func TestTracingBodies(t *testing.T) {
	type order struct {
		ID    string `json:"id"`
		Items []int  `json:"items"`
	}
	tests := []struct {
		name          string
		opts          []TracingOption
		wantReq, want string
	}{
		{"off", nil, "", ""},
		{"on", []TracingOption{WithBodies(1024)}, `{"id":"o1","items":[1,2]}`, `"confirmed"`},
		{"cut", []TracingOption{WithBodies(8)}, `{"id":"o…(cut)`, `"confirm…(cut)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, rec := newRecorder(t)
			info := endpoint.Info{Service: "orders", Method: "Place", Transport: "grpc"}
			h := endpoint.Wrap(info, func(context.Context, order) (string, error) { return "confirmed", nil }, Tracing(tp, tt.opts...))
			if _, err := h(context.Background(), order{ID: "o1", Items: []int{1, 2}}); err != nil {
				t.Fatal(err)
			}
			got := map[attribute.Key]string{}
			for _, a := range rec.Ended()[0].Attributes() {
				got[a.Key] = a.Value.Emit()
			}
			if got[RequestBodyKey] != tt.wantReq || got[ResponseBodyKey] != tt.want {
				t.Errorf("bodies %q, %q; want %q, %q", got[RequestBodyKey], got[ResponseBodyKey], tt.wantReq, tt.want)
			}
		})
	}
}
