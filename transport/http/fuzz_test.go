package http_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	shttp "github.com/svckit/svckit/transport/http"
)

// FuzzDecodeRequest sends arbitrary bodies and content types through the server's decoder
// and checks the contract: never a panic, and every response is either a 200 with JSON or
// a problem+json with a 4xx status.
func FuzzDecodeRequest(f *testing.F) {
	f.Add("application/json", `{"a":1,"b":2}`)
	f.Add("application/json", `{"a":"x"}`)
	f.Add("application/json", `{"a":1e400}`)
	f.Add("application/json", `[`)
	f.Add("application/json", `null`)
	f.Add("text/plain", `hello`)
	f.Add("application/json; charset=utf-8", `{"a":-9223372036854775808,"b":0}`)
	f.Add("application/json", "\xff\xfe")
	f.Add("APPLICATION/JSON", `{"A":1,"B":2}`)
	s := shttp.NewServer("fuzz", shttp.WithMaxBodyBytes(4096))
	shttp.Handle(s, "POST /sum", "Sum", func(_ context.Context, r sumReq) (sumResp, error) { return sumResp{V: r.A + r.B}, nil })
	f.Fuzz(func(t *testing.T, ctype, body string) {
		req := httptest.NewRequest(http.MethodPost, "/sum", strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		res := rec.Result()
		raw, _ := io.ReadAll(res.Body)
		switch {
		case res.StatusCode == 200:
			var out sumResp
			if err := json.Unmarshal(raw, &out); err != nil {
				t.Fatalf("200 with non-JSON body %q", raw)
			}
		case res.StatusCode >= 400 && res.StatusCode < 500:
			var p shttp.Problem
			if res.Header.Get("Content-Type") != shttp.ProblemContentType || json.Unmarshal(raw, &p) != nil || p.Status != res.StatusCode || p.Detail == "" {
				t.Fatalf("bad problem response %d %q", res.StatusCode, raw)
			}
		default:
			t.Fatalf("unexpected status %d for body %q: %s", res.StatusCode, body, raw)
		}
	})
}
