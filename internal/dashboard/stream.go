package dashboard

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/svckit/svckit/internal/devrun"
)

// sse prepares a response for server-sent events; it returns nil when the writer cannot
// flush.
func sse(w http.ResponseWriter) *http.ResponseController {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return nil
	}
	return rc
}

func writeEvent(w http.ResponseWriter, event string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
	return err
}

// stopped reports whether the system has been stopped (every instance is), so that open
// streams end and the collector's server can shut down without waiting for them.
func (d *dash) stopped() bool {
	if len(d.sys.Instances) == 0 {
		return false
	}
	for _, in := range d.sys.Instances {
		if in.Status().State != devrun.StateStopped {
			return false
		}
	}
	return true
}

// streamLogs sends every new log line that passes the filter as a "log" event. Lines
// arriving together are sent in one write; a client too slow to keep up misses lines
// rather than holding up the services.
func (d *dash) streamLogs(w http.ResponseWriter, r *http.Request) {
	f := LogFilterFrom(r.URL.Query())
	ch, stop := d.sys.Logs.Subscribe(4096)
	defer stop()
	rc := sse(w)
	if rc == nil {
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	idle := 0
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			if d.stopped() {
				return
			}
			if idle++; idle >= 15 {
				idle = 0
				if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
					return
				}
			}
		case l, ok := <-ch:
			if !ok {
				return
			}
			n := 0
		drain:
			for {
				if f.Match(&l) {
					if writeEvent(w, "log", l) != nil {
						return
					}
					n++
				}
				if n >= 500 {
					break
				}
				select {
				case l, ok = <-ch:
					if !ok {
						return
					}
				default:
					break drain
				}
			}
			if n > 0 && rc.Flush() != nil {
				return
			}
		}
	}
}

// Status is the periodic update of /api/stream/status.
type Status struct {
	Time   time.Time  `json:"time"`
	System SystemView `json:"system"`
	// Metrics holds the RED points that are new since the previous event of the stream;
	// the first event has the last 150 points of every series.
	Metrics []Series `json:"metrics"`
	Edges   []Edge   `json:"edges"`
}

// streamStatus sends a "status" event at once and then every interval: services and
// instances, new RED points and the architecture's edges.
func (d *dash) streamStatus(w http.ResponseWriter, r *http.Request) {
	rc := sse(w)
	if rc == nil {
		return
	}
	tick := time.NewTicker(d.cfg.interval)
	defer tick.Stop()
	var since time.Time
	for {
		st := Status{Time: time.Now(), System: d.systemView(r.Context()), Metrics: d.seriesList("", 150, since), Edges: d.edgeList()}
		for _, s := range st.Metrics {
			if n := len(s.Points); n > 0 && s.Points[n-1].Time.After(since) {
				since = s.Points[n-1].Time
			}
		}
		if writeEvent(w, "status", st) != nil || rc.Flush() != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			if d.stopped() {
				return
			}
		}
	}
}
