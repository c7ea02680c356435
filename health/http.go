package health

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/pprof"
)

// LiveHandler returns the /healthz handler. It answers GET and HEAD with 200 and
// {"status":"ok","checks":{}} when every liveness check passes, and with 503 and
// {"status":"fail","checks":{NAME:{"status":"fail","error":…,"duration":…},…}} listing the
// failing checks otherwise. With a ?verbose query parameter every check is listed.
func (h *Health) LiveHandler() http.Handler {
	return reportHandler(h.Live)
}

// ReadyHandler returns the /readyz handler. It answers like [Health.LiveHandler], for the
// readiness checks and the readiness gate.
func (h *Health) ReadyHandler() http.Handler {
	return reportHandler(h.Ready)
}

func reportHandler(get func(ctx context.Context) Report) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !readOnly(w, r) {
			return
		}
		rep := get(r.Context())
		if !verbose(r) {
			rep.Checks = rep.Failed()
		}
		code := http.StatusOK
		if !rep.OK() {
			code = http.StatusServiceUnavailable
		}
		hd := w.Header()
		hd.Set("Content-Type", "application/json")
		hd.Set("Cache-Control", "no-store")
		hd.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(code)
		if r.Method == http.MethodHead {
			return
		}
		_ = json.NewEncoder(w).Encode(rep) // the client may be gone; nothing to do about it
	})
}

// readOnly answers a request whose method is not GET or HEAD with 405 problem+json and
// reports false; other requests it leaves alone and reports true.
func readOnly(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	writeProblem(w, http.StatusMethodNotAllowed, "invalid_argument",
		"method "+clip(r.Method, 32)+" is not allowed on "+clip(r.URL.Path, 256)+"; allowed: GET, HEAD")
	return false
}

// clip returns s cut to at most n bytes, so that a caller's long method or path does not
// travel back whole in an error.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// verbose reports whether the request asks for every check: ?verbose, ?verbose=1 or
// ?verbose=true (any value but "0" and "false").
func verbose(r *http.Request) bool {
	q := r.URL.Query()
	if !q.Has("verbose") {
		return false
	}
	v := q.Get("verbose")
	return v != "0" && v != "false"
}

// AdminOption configures [AdminMux].
type AdminOption func(*adminConfig)

type adminConfig struct{ pprof bool }

// WithPprof serves the net/http/pprof handlers under /debug/pprof/ on the admin mux.
// Profiles show the program's memory, goroutine stacks and command line, and a CPU profile
// or trace keeps the process busy for as long as the caller asks: serve them only where
// the admin listener is reachable by operators alone, and only when needed (svckit's
// -pprof setting, PPROF=true).
func WithPprof() AdminOption { return func(c *adminConfig) { c.pprof = true } }

// AdminMux returns a new ServeMux for a service's admin listener, serving
//
//	/healthz        h.LiveHandler()
//	/readyz         h.ReadyHandler()
//	/metrics        metrics, if it is not nil
//	/debug/pprof/   the net/http/pprof index and profiles, with [WithPprof] only
//
// Other paths get 404, and the probes and /metrics 405 for methods other than GET and
// HEAD, both as application/problem+json (RFC 9457), as on svckit's other listeners.
//
// The pprof handlers are registered on the returned mux only. (Importing net/http/pprof
// also registers them on http.DefaultServeMux; svckit never serves that mux.) The admin
// listener exposes readiness details and metrics and must not be reachable from outside
// the cluster.
func AdminMux(h *Health, metrics http.Handler, opts ...AdminOption) *http.ServeMux {
	var cfg adminConfig
	for _, o := range opts {
		o(&cfg)
	}
	mux := http.NewServeMux()
	mux.Handle("/healthz", h.LiveHandler())
	mux.Handle("/readyz", h.ReadyHandler())
	if metrics != nil {
		mux.Handle("/metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if readOnly(w, r) {
				metrics.ServeHTTP(w, r)
			}
		}))
	}
	if cfg.pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, "not_found", "no route for "+clip(r.Method, 32)+" "+clip(r.URL.Path, 256))
	})
	return mux
}

// problem is the application/problem+json body (RFC 9457) of the admin listener's errors,
// with the members svckit's transports use.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Kind   string `json:"kind"`
}

// writeProblem writes an error response as application/problem+json.
func writeProblem(w http.ResponseWriter, status int, kind, detail string) {
	b, _ := json.Marshal(problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail, Kind: kind}) // 404, 405, 503: RFC 9110's titles
	hd := w.Header()
	hd.Set("Content-Type", "application/problem+json")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
