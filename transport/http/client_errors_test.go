package http_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/svckit/svckit/svcerr"
	shttp "github.com/svckit/svckit/transport/http"
)

// TestClientErrorsNameNothingInternal calls servers that answer badly — too much, not
// JSON — through a svckit HTTP client: the error has the right kind and a message a
// service may pass on to its own callers, naming neither the called service nor its
// method; the cause keeps them for the logs.
func TestClientErrorsNameNothingInternal(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		kind   svcerr.Kind
		msg    string
		inLogs string
	}{
		{"too large", `{"v":"` + strings.Repeat("x", 100) + `"}`, svcerr.ResourceExhausted, "response is larger than 64 bytes", "ledger.Balance"},
		{"not JSON", `<html>10.0.0.7</html>`, svcerr.Internal, "decoding the response failed", "ledger.Balance"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			c, err := shttp.NewClient(srv.URL, "ledger", shttp.WithMaxResponseBytes(64))
			if err != nil {
				t.Fatal(err)
			}
			call := shttp.Call[struct{}, map[string]string](c, "GET /balance", "Balance")
			_, err = call(context.Background(), struct{}{})
			var e *svcerr.Error
			if !errors.As(err, &e) {
				t.Fatalf("got %T %v", err, err)
			}
			if e.Kind != tt.kind || e.Message != tt.msg {
				t.Errorf("got %v %q, want %v %q", e.Kind, e.Message, tt.kind, tt.msg)
			}
			for _, leak := range []string{"ledger", "Balance", "10.0.0.7"} {
				if strings.Contains(e.Message, leak) {
					t.Errorf("the message %q names %q", e.Message, leak)
				}
			}
			if e.Cause == nil || !strings.Contains(e.Cause.Error(), tt.inLogs) {
				t.Errorf("the cause %v does not name %s for the logs", e.Cause, tt.inLogs)
			}
		})
	}
}
