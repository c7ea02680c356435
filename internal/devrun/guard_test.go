package devrun_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/svckit/svckit/internal/devrun"
)

// TestLocalOnly sends requests to the collector's routes behind LocalOnly over real
// loopback HTTP, as runner.go mounts them: the services' OTLP exports and JWKS fetches
// (Host = the address they were given, no Origin) arrive; a DNS-rebinding Host is
// refused on every route, and a browser's cross-origin POST of spans too.
func TestLocalOnly(t *testing.T) {
	traces := devrun.NewTraceStore(0)
	mux := http.NewServeMux()
	mux.Handle("POST /v1/traces", traces.OTLPHandler())
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, `{"keys":[]}`) })
	srv := httptest.NewServer(devrun.LocalOnly(mux))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))

	export := func(traceID byte) []byte {
		b, err := proto.Marshal(&collectortrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
			Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name",
				Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "orders"}}}}},
			ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{TraceId: bytes.Repeat([]byte{traceID}, 16),
				SpanId: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Name: "orders/Place", StartTimeUnixNano: 1, EndTimeUnixNano: 2}}}},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name, method, path, host, origin, fetchSite string
		traceID                                     byte
		code                                        int
	}{
		{name: "OTLP export", method: "POST", path: "/v1/traces", host: "127.0.0.1:PORT", traceID: 1, code: 200},
		{name: "OTLP export to localhost", method: "POST", path: "/v1/traces", host: "localhost:PORT", traceID: 2, code: 200},
		{name: "JWKS", method: "GET", path: "/.well-known/jwks.json", host: "127.0.0.1:PORT", code: 200},
		{name: "JWKS from a page of another origin (a read: the browser keeps the answer from it)", method: "GET",
			path: "/.well-known/jwks.json", host: "127.0.0.1:PORT", origin: "http://evil.example", fetchSite: "cross-site", code: 200},
		{name: "OTLP export, rebinding Host", method: "POST", path: "/v1/traces", host: "rebind.example:PORT", traceID: 3, code: 403},
		{name: "JWKS, rebinding Host", method: "GET", path: "/.well-known/jwks.json", host: "rebind.example:PORT", code: 403},
		{name: "OTLP export, wrong port", method: "POST", path: "/v1/traces", host: "127.0.0.1:1", traceID: 4, code: 403},
		{name: "OTLP export from a page of another origin", method: "POST", path: "/v1/traces", host: "127.0.0.1:PORT",
			origin: "http://evil.example", traceID: 5, code: 403},
		{name: "OTLP export from another port of 127.0.0.1", method: "POST", path: "/v1/traces", host: "127.0.0.1:PORT",
			fetchSite: "same-site", traceID: 6, code: 403},
		{name: "unknown route, rebinding Host", method: "GET", path: "/nosuch", host: "rebind.example:PORT", code: 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.traceID != 0 {
				body = bytes.NewReader(export(tc.traceID))
			}
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = strings.ReplaceAll(tc.host, "PORT", port)
			if tc.traceID != 0 {
				req.Header.Set("Content-Type", "application/x-protobuf")
			}
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if tc.fetchSite != "" {
				req.Header.Set("Sec-Fetch-Site", tc.fetchSite)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Fatalf("%d %s, want %d", resp.StatusCode, b, tc.code)
			}
			if tc.traceID != 0 {
				_, stored := traces.Get(hex.EncodeToString(bytes.Repeat([]byte{tc.traceID}, 16)))
				if stored != (tc.code == 200) {
					t.Fatalf("trace %d stored: %v", tc.traceID, stored)
				}
			}
		})
	}
}

// TestCheckHost checks Host values against a listener on 127.0.0.1:7070 and one on all
// addresses, reached at 192.0.2.10:7070.
func TestCheckHost(t *testing.T) {
	tests := []struct {
		local, host string
		ok          bool
	}{
		{"127.0.0.1:7070", "127.0.0.1:7070", true},
		{"127.0.0.1:7070", "localhost:7070", true},
		{"127.0.0.1:7070", "LOCALHOST:7070", true},
		{"127.0.0.1:7070", "[::1]:7070", true},
		{"[::1]:7070", "[::1]:7070", true},
		{"127.0.0.1:80", "localhost", true},
		{"127.0.0.1:80", "[::1]", true},
		{"192.0.2.10:7070", "192.0.2.10:7070", true},
		{"127.0.0.1:7070", "127.0.0.1:7071", false},
		{"127.0.0.1:7070", "localhost", false},
		{"127.0.0.1:7070", "rebind.example:7070", false},
		{"127.0.0.1:7070", "localhost.:7070", false},
		{"127.0.0.1:7070", "app.localhost:7070", false},
		{"127.0.0.1:7070", "127.0.0.2:7070", false},
		{"127.0.0.1:7070", "192.0.2.10:7070", false},
		{"127.0.0.1:7070", "0.0.0.0:7070", false},
		{"127.0.0.1:7070", "::1:7070", false},
		{"127.0.0.1:7070", "", false},
		{"192.0.2.10:7070", "rebind.example:7070", false},
	}
	for _, tc := range tests {
		t.Run(tc.local+" "+tc.host, func(t *testing.T) {
			local, err := net.ResolveTCPAddr("tcp", tc.local)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Host = tc.host
			err = devrun.CheckHost(r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, local)))
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, devrun.ErrForeignHost)) {
				t.Fatalf("CheckHost = %v, want ok %v", err, tc.ok)
			}
		})
	}
	if err := devrun.CheckHost(httptest.NewRequest(http.MethodGet, "http://127.0.0.1:7070/", nil)); !errors.Is(err, devrun.ErrForeignHost) {
		t.Fatalf("a request without a listener: %v", err)
	}
}

// TestCheckSameOrigin checks the browser's Origin and Sec-Fetch-Site headers.
func TestCheckSameOrigin(t *testing.T) {
	tests := []struct {
		name, origin, fetchSite string
		ok                      bool
	}{
		{"curl", "", "", true},
		{"the page itself", "http://127.0.0.1:7070", "same-origin", true},
		{"same origin, older browser", "http://127.0.0.1:7070", "", true},
		{"another site", "http://evil.example", "cross-site", false},
		{"another port", "http://127.0.0.1:8080", "same-site", false},
		{"another name for the same address", "http://localhost:7070", "", false},
		{"https origin", "https://127.0.0.1:7070", "", false},
		{"sandboxed page", "null", "", false},
		{"no Origin, cross-site", "", "cross-site", false},
		{"no Origin, same-site", "", "same-site", false},
		{"typed navigation", "", "none", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:7070/api/x", nil)
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if tc.fetchSite != "" {
				r.Header.Set("Sec-Fetch-Site", tc.fetchSite)
			}
			err := devrun.CheckSameOrigin(r)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, devrun.ErrCrossOrigin)) {
				t.Fatalf("CheckSameOrigin = %v, want ok %v", err, tc.ok)
			}
		})
	}
}
