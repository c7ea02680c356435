package binding_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/svckit/svckit/binding"
	"github.com/svckit/svckit/svcerr"
)

func TestHTTPCall(t *testing.T) {
	type seen struct {
		method, path, query, sig, ts, idem, ct, custom string
		body                                           string
	}
	got := make(chan seen, 10)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("X-Signature"), r.Header.Get("X-Timestamp"),
			r.Header.Get("Idempotency-Key"), r.Header.Get("Content-Type"), r.Header.Get("X-Tenant"), string(body)}
		switch r.URL.Query().Get("want") {
		case "500":
			http.Error(w, "boom", http.StatusInternalServerError)
		case "404":
			http.Error(w, "no such order", http.StatusNotFound)
		case "429":
			w.WriteHeader(http.StatusTooManyRequests)
		case "slow":
			<-release
		default:
			w.Header().Set("X-Result", "stored")
			w.Write([]byte(`{"ok":true}`))
		}
	}))
	defer srv.Close()
	defer close(release)
	now := time.Unix(1_800_000_000, 0)
	set := mustOpen(t, `
bindings:
  - name: notify
    type: http-call
    method: PUT
    url: `+srv.URL+`/orders/{order}?want={want}
    headers: {X-Tenant: "{tenant}"}
    timeout: 300ms
    secret: env:HOOK
    signature: {header: X-Signature, timestamp_header: X-Timestamp}
`, binding.Deps{Env: env("HOOK", hookSecret), Now: func() time.Time { return now }})
	out, _ := set.Output("notify")
	md := func(order, want string) map[string]string {
		return map[string]string{"order": order, "want": want, "tenant": "acme", "id": "evt-1"}
	}
	body := []byte(`{"total":42}`)

	resp, err := out.Invoke(context.Background(), binding.Request{Data: body, Metadata: md("a/b c", "ok&x=1")})
	if err != nil {
		t.Fatal(err)
	}
	s := <-got
	if s.method != "PUT" || s.path != "/orders/a%2Fb%20c" || s.query != "want=ok%26x%3D1" || s.idem != "evt-1" ||
		s.ct != "application/json" || s.custom != "acme" || s.body != string(body) {
		t.Fatalf("request %+v", s)
	}
	if s.ts != "1800000000" || s.sig != stampedSig(hookSecret, "1800000000", string(body)) {
		t.Fatalf("signature %q at %q", s.sig, s.ts)
	}
	if string(resp.Data) != `{"ok":true}` || resp.Metadata["status"] != "200" || resp.Metadata["x-result"] != "stored" {
		t.Fatalf("response %+v", resp)
	}

	tests := []struct {
		want     string
		kind     svcerr.Kind
		retry    bool
		inErrMsg string
	}{
		{"500", svcerr.Unavailable, true, "500 Internal Server Error: boom"},
		{"404", svcerr.NotFound, false, "404 Not Found: no such order"},
		{"429", svcerr.ResourceExhausted, true, "429"},
		{"slow", svcerr.Unavailable, true, "PUT"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := out.Invoke(context.Background(), binding.Request{Data: body, Metadata: md("1", tt.want)})
			<-got
			if svcerr.KindOf(err) != tt.kind || binding.Retryable(err) != tt.retry || !strings.Contains(err.Error(), tt.inErrMsg) {
				t.Fatalf("err %v (kind %s), want kind %s, retryable %v, containing %q", err, svcerr.KindOf(err), tt.kind, tt.retry, tt.inErrMsg)
			}
			if strings.Contains(err.Error(), "want=") {
				t.Errorf("the error shows the query: %v", err)
			}
		})
	}

	if _, err := out.Invoke(context.Background(), binding.Request{Metadata: map[string]string{"order": "1"}}); svcerr.KindOf(err) != svcerr.InvalidArgument {
		t.Fatalf("missing metadata: %v", err)
	}
}

// A signed http-call output and a webhook input talk to each other.
func TestHTTPCallToWebhook(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	sig := `{header: X-Hub-Signature-256, prefix: "sha256=", timestamp_header: X-Hub-Timestamp}`
	set := mustOpen(t, `
bindings:
  - {name: in, type: webhook, path: /in, secret: env:SHARED, signature: `+sig+`, id_header: Idempotency-Key}
  - {name: out, type: http-call, url: "`+srv.URL+`/in", secret: env:SHARED, signature: `+sig+`}
  - {name: forged, type: http-call, url: "`+srv.URL+`/in", secret: env:OTHER, signature: `+sig+`}
`, binding.Deps{Mux: mux, Env: env("SHARED", "s1", "OTHER", "s2")})
	in, _ := set.Input("in")
	c := newCollector()
	runInput(t, in, c.handle)
	waitReady(t, srv.URL+"/in")
	out, _ := set.Output("out")
	if _, err := out.Invoke(context.Background(), binding.Request{Data: []byte(`{"a":1}`), Metadata: map[string]string{"id": "x1"}}); err != nil {
		t.Fatal(err)
	}
	if e := c.next(t); e.ID != "x1" || string(e.Data) != `{"a":1}` {
		t.Fatalf("event %+v", e)
	}
	forged, _ := set.Output("forged")
	_, err := forged.Invoke(context.Background(), binding.Request{Data: []byte(`{}`)})
	if svcerr.KindOf(err) != svcerr.Unauthenticated {
		t.Fatalf("wrong secret: %v, want unauthenticated", err)
	}
}
