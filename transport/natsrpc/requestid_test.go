package natsrpc_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/svckit/svckit/svcerr"
	"github.com/svckit/svckit/transport/meta"
	"github.com/svckit/svckit/transport/natsrpc"
)

// TestErrorRequestID checks the request id that a failed call's *svcerr.Error names: the
// id the svckit server used (the caller's, or one it made up for a caller that sent none
// or an invalid one), and for an error reply that is not svckit's, the reply's
// X-Request-Id or else the id the call sent. An id that is not safe to log is dropped.
func TestErrorRequestID(t *testing.T) {
	ns := startNATS(t)
	nc := connect(t, ns.ClientURL())
	seen := make(chan string, 1)
	srv := natsrpc.NewServer("ids")
	natsrpc.Handle(srv, "Fail", func(ctx context.Context, _ struct{}) (struct{}, error) {
		seen <- meta.RequestID(ctx)
		return struct{}{}, svcerr.New(svcerr.NotFound, "no such thing")
	})
	serve(t, srv, nc)
	// A NATS micro service in another language: an error reply with its own headers.
	sub, err := nc.Subscribe("svc.foreign.*", func(m *nats.Msg) {
		r := nats.NewMsg(m.Reply)
		r.Header.Set(natsrpc.ErrorCodeHeader, "503")
		r.Header.Set(natsrpc.ErrorHeader, "overloaded")
		switch m.Subject {
		case "svc.foreign.Header":
			r.Header.Set(meta.RequestIDHeader, "py-1")
		case "svc.foreign.BadHeader":
			r.Header.Set(meta.RequestIDHeader, "py 1\r\nx")
		case "svc.foreign.BadBody":
			r.Header.Set(natsrpc.ErrorCodeHeader, "409")
			r.Data = []byte(`{"kind":"already_exists","request_id":"evil\nline"}`)
		}
		_ = m.RespondMsg(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	tests := []struct {
		name     string
		service  string
		method   string
		sent     string
		want     string // "" with service ids: the id the handler saw
		wantKind svcerr.Kind
	}{
		{"svckit, none sent", "ids", "Fail", "", "", svcerr.NotFound},
		{"svckit, sent", "ids", "Fail", "order-7", "order-7", svcerr.NotFound},
		{"svckit, invalid sent", "ids", "Fail", "bad id", "", svcerr.NotFound},
		{"foreign, header", "foreign", "Header", "order-7", "py-1", svcerr.Unavailable},
		{"foreign, no header", "foreign", "None", "order-7", "order-7", svcerr.Unavailable},
		{"foreign, none", "foreign", "None", "", "", svcerr.Unavailable},
		{"foreign, bad header", "foreign", "BadHeader", "", "", svcerr.Unavailable},
		{"foreign body, bad id", "foreign", "BadBody", "", "", svcerr.AlreadyExists},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if tt.sent != "" {
				ctx = meta.WithRequestID(ctx, tt.sent)
			}
			_, err := natsrpc.Call[struct{}, struct{}](natsrpc.NewClient(nc, tt.service), tt.method)(ctx, struct{}{})
			e := svcerr.From(err)
			if e == nil || e.Kind != tt.wantKind {
				t.Fatalf("err %v, want kind %s", err, tt.wantKind)
			}
			want := tt.want
			if tt.service == "ids" {
				used := <-seen
				if want != "" && used != want {
					t.Fatalf("server used id %q, want %q", used, want)
				}
				want = used
			}
			if e.RequestID != want {
				t.Errorf("RequestID %q, want %q", e.RequestID, want)
			}
		})
	}
}
