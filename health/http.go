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
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
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

// AdminMux returns a new ServeMux for a service's admin listener, serving
//
//	/healthz        h.LiveHandler()
//	/readyz         h.ReadyHandler()
//	/metrics        metrics, if it is not nil
//	/debug/pprof/   the net/http/pprof index and profiles
//
// The pprof handlers are registered on the returned mux only. (Importing net/http/pprof
// also registers them on http.DefaultServeMux; svckit never serves that mux.) The admin
// listener exposes profiling data and must not be reachable from outside the cluster.
func AdminMux(h *Health, metrics http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/healthz", h.LiveHandler())
	mux.Handle("/readyz", h.ReadyHandler())
	if metrics != nil {
		mux.Handle("/metrics", metrics)
	}
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
