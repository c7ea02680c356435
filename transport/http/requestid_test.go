package http_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/svckit/svckit/svcerr"
	shttp "github.com/svckit/svckit/transport/http"
	"github.com/svckit/svckit/transport/meta"
)

// TestErrorRequestID checks the request id that a failed call's *svcerr.Error names: the
// id the svckit server used (the caller's, or one it made up for a caller that sent none
// or an invalid one), and for a reply that is not svckit's, the reply's X-Request-Id or
// else the id the call sent. An id from a reply that is not safe to log is dropped.
func TestErrorRequestID(t *testing.T) {
	seen := make(chan string, 1)
	s := shttp.NewServer("ids")
	shttp.Handle(s, "POST /fail", "Fail", func(ctx context.Context, _ struct{}) (struct{}, error) {
		seen <- meta.RequestID(ctx)
		return struct{}{}, svcerr.New(svcerr.NotFound, "no such thing")
	})
	svc := httptest.NewServer(s)
	defer svc.Close()
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.URL.Query().Get("id"); id != "" {
			w.Header().Set("X-Request-Id", id)
		}
		if r.URL.Query().Get("problem") != "" {
			// A problem+json body that is not svckit's own, with a request_id that
			// must not reach a log line.
			w.Header().Set("Content-Type", shttp.ProblemContentType)
			w.WriteHeader(http.StatusConflict)
			_, _ = io.WriteString(w, `{"kind":"already_exists","request_id":"evil\nline"}`)
			return
		}
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer foreign.Close()

	tests := []struct {
		name     string
		server   *httptest.Server
		path     string
		sent     string
		want     string // "" with server svc: the id the handler saw
		wantKind svcerr.Kind
	}{
		{"svckit, none sent", svc, "POST /fail", "", "", svcerr.NotFound},
		{"svckit, sent", svc, "POST /fail", "order-7", "order-7", svcerr.NotFound},
		{"svckit, invalid sent", svc, "POST /fail", "bad id", "", svcerr.NotFound},
		{"foreign, header", foreign, "POST /x?id=proxy-1", "order-7", "proxy-1", svcerr.Unavailable},
		{"foreign, no header", foreign, "POST /x", "order-7", "order-7", svcerr.Unavailable},
		{"foreign, none", foreign, "POST /x", "", "", svcerr.Unavailable},
		{"foreign, bad header", foreign, "POST /x?id=a%20b", "order-7", "order-7", svcerr.Unavailable},
		{"foreign problem, bad id", foreign, "POST /x?problem=1", "", "", svcerr.AlreadyExists},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := shttp.NewClient(tt.server.URL, "ids")
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			if tt.sent != "" {
				ctx = meta.WithRequestID(ctx, tt.sent)
			}
			_, err = shttp.Call[struct{}, struct{}](c, tt.path, "Fail")(ctx, struct{}{})
			e := svcerr.From(err)
			if e == nil || e.Kind != tt.wantKind {
				t.Fatalf("err %v, want kind %s", err, tt.wantKind)
			}
			want := tt.want
			if tt.server == svc {
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
