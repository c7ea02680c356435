package dashboard

import (
	"context"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/svckit/svckit/internal/devrun"
)

// ServiceView is one service of the system as /api/services returns it.
type ServiceView struct {
	Name      string         `json:"name"`
	Package   string         `json:"package"`
	Public    bool           `json:"public"`
	Replicas  int            `json:"replicas"`
	Version   string         `json:"version"`
	Instances []InstanceView `json:"instances"`
}

// InstanceView is an instance's status with the result of its last health probe.
type InstanceView struct {
	devrun.InstanceStatus
	UptimeSeconds float64 `json:"uptime_s"`
	Healthy       bool    `json:"healthy"`
	Ready         bool    `json:"ready"`
	HealthError   string  `json:"health_error,omitempty"`
}

// SystemView is the answer of /api/services.
type SystemView struct {
	Name     string        `json:"name"`
	URL      string        `json:"url"`
	NATS     string        `json:"nats,omitempty"`
	Services []ServiceView `json:"services"`
	Traces   int           `json:"traces"`
	Spans    int           `json:"spans"`
	Logs     int           `json:"logs"`
}

type probe struct {
	at             time.Time
	healthy, ready bool
	err            string
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// systemView gathers every service and instance; health probes are at most one second old.
func (d *dash) systemView(ctx context.Context) SystemView {
	v := SystemView{Name: d.sys.Manifest.Name, URL: d.sys.URL}
	if d.sys.NATS != nil {
		v.NATS = d.sys.NATS.PlainURL() // never the admin credentials
	}
	v.Traces, v.Spans = d.sys.Traces.Stats()
	v.Logs = d.sys.Logs.Len()
	d.probeAll(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, svc := range d.sys.Manifest.Services {
		sv := ServiceView{Name: svc.Name, Package: svc.Package, Public: svc.Public, Replicas: svc.Replicas,
			Instances: []InstanceView{}}
		for _, in := range d.sys.Instances {
			if in.Service != svc.Name {
				continue
			}
			if sv.Version == "" {
				sv.Version = d.versionLocked(in.Bin)
			}
			st := in.Status()
			iv := InstanceView{InstanceStatus: st, UptimeSeconds: st.Uptime.Seconds()}
			if p, ok := d.probes[in.ID]; ok && st.State == devrun.StateRunning {
				iv.Healthy, iv.Ready, iv.HealthError = p.healthy, p.ready, p.err
			}
			sv.Instances = append(sv.Instances, iv)
		}
		v.Services = append(v.Services, sv)
	}
	return v
}

// probeAll asks every running instance's admin listener for /healthz and /readyz, unless
// it did so less than a second ago.
func (d *dash) probeAll(ctx context.Context) {
	now := time.Now()
	var wg sync.WaitGroup
	for _, in := range d.sys.Instances {
		d.mu.Lock()
		p, ok := d.probes[in.ID]
		d.mu.Unlock()
		if ok && now.Sub(p.at) < time.Second {
			continue
		}
		if in.Status().State != devrun.StateRunning {
			d.mu.Lock()
			d.probes[in.ID] = probe{at: now}
			d.mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := "http://" + in.Addrs["admin"]
			p := probe{at: now}
			var err error
			p.healthy, err = d.get(ctx, base+"/healthz")
			if err != nil {
				p.err = err.Error()
			}
			p.ready, err = d.get(ctx, base+"/readyz")
			if err != nil && p.err == "" {
				p.err = err.Error()
			}
			d.mu.Lock()
			d.probes[in.ID] = p
			d.mu.Unlock()
		}()
	}
	wg.Wait()
}

func (d *dash) get(ctx context.Context, url string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

// versionLocked reads the module version and VCS revision from a service's binary once.
func (d *dash) versionLocked(bin string) string {
	if v, ok := d.versions[bin]; ok {
		return v
	}
	v := ""
	if bi, err := buildinfo.ReadFile(bin); err == nil {
		v = bi.Main.Version
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = "+dirty"
				}
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			v += " " + rev + modified
		}
		v += " (" + bi.GoVersion + ")"
	}
	d.versions[bin] = v
	return v
}

func (d *dash) services(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, d.systemView(r.Context()))
}

// Edge is one arrow of the architecture view.
type Edge struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Kind  string `json:"kind"` // "call", "publish" (service → subject) or "consume" (subject → service)
	Count int    `json:"count"`
}

// edgeList computes the architecture's edges in one pass over the stored traces: calls
// (as TraceStore.Edges counts them: a span whose parent span belongs to another service)
// and publish and consume edges from spans with messaging attributes; a consumer span is
// an event hop, drawn through its subject rather than as a call, and its parent, when that
// is not a producer span, stands for the publisher. The result is cached for a second.
func (d *dash) edgeList() []Edge {
	d.mu.Lock()
	if time.Since(d.edgesAt) < time.Second && d.edgesVal != nil {
		v := d.edgesVal
		d.mu.Unlock()
		return v
	}
	d.mu.Unlock()
	counts := map[Edge]int{}
	var byID map[string]*devrun.Span // reused for large traces
	d.sys.Traces.Range(func(t *devrun.Trace) bool {
		spans := t.Spans
		parent := func(id string) *devrun.Span {
			if len(spans) <= 32 { // a linear search beats building a map for small traces
				for j := range spans {
					if spans[j].SpanID == id {
						return &spans[j]
					}
				}
				return nil
			}
			return byID[id]
		}
		if len(spans) > 32 {
			clear(byID)
			if byID == nil {
				byID = make(map[string]*devrun.Span, len(spans))
			}
			for j := range spans {
				byID[spans[j].SpanID] = &spans[j]
			}
		}
		for i := range spans {
			sp := &spans[i]
			role := ""
			if dest := messagingDestination(sp); dest != "" {
				switch role = messagingRole(sp); role {
				case "publish":
					if sp.Attrs["svckit.outbox.relay"] == "true" && sp.ParentID != "" {
						// The outbox relay's hop: counted once, by the event's own publish
						// span if the span that added the event was one.
						if p := parent(sp.ParentID); p != nil && messagingRole(p) == "publish" && messagingDestination(p) == dest {
							break
						}
					}
					counts[Edge{From: sp.Service, To: dest, Kind: "publish"}]++
				case "consume":
					counts[Edge{From: dest, To: sp.Service, Kind: "consume"}]++
				}
			}
			if sp.ParentID == "" {
				continue
			}
			p := parent(sp.ParentID)
			if p == nil {
				continue
			}
			if role == "consume" {
				// A publisher without a producer span of its own (such as an outbox, which
				// stores the context of the span that added the message) is the service of
				// the span the consumer continues.
				if messagingDestination(p) == "" || messagingRole(p) != "publish" {
					counts[Edge{From: p.Service, To: messagingDestination(sp), Kind: "publish"}]++
				}
				continue
			}
			if p.Service != sp.Service {
				counts[Edge{From: p.Service, To: sp.Service, Kind: "call"}]++
			}
		}
		return true
	})
	for _, e := range d.eventEdges() {
		if _, ok := counts[e]; !ok {
			counts[e] = 0
		}
	}
	out := make([]Edge, 0, len(counts))
	for e, n := range counts {
		e.Count = n
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].From != out[j].From {
			return out[i].From < out[j].From
		}
		if out[i].To != out[j].To {
			return out[i].To < out[j].To
		}
		return out[i].Kind < out[j].Kind
	})
	d.mu.Lock()
	d.edgesAt, d.edgesVal = time.Now(), out
	d.mu.Unlock()
	return out
}

// eventEdges returns subject → service edges for the event source's consumers whose name
// starts with a service's name ("notifications" or "notifications-order-placed"), read at
// most every five seconds. Their count is 0: they show configuration, not traffic.
func (d *dash) eventEdges() []Edge {
	if d.cfg.events == nil {
		return nil
	}
	d.mu.Lock()
	if time.Since(d.eventsAt) < 5*time.Second {
		v := d.eventsVal
		d.mu.Unlock()
		return v
	}
	d.eventsAt = time.Now() // one refresh at a time; a failure waits for the next period
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	streams, err := d.cfg.events.Streams(ctx)
	if err != nil {
		return nil
	}
	var out []Edge
	for _, st := range streams {
		for _, c := range st.Consumers {
			svc := ""
			for _, s := range d.sys.Manifest.Services {
				if (c.Name == s.Name || strings.HasPrefix(c.Name, s.Name+"-") || strings.HasPrefix(c.Name, s.Name+"_")) && len(s.Name) > len(svc) {
					svc = s.Name
				}
			}
			if svc == "" {
				continue
			}
			from := c.FilterSubject
			if from == "" || strings.Contains(from, ",") {
				from = st.Name
			}
			out = append(out, Edge{From: from, To: svc, Kind: "consume"})
		}
	}
	d.mu.Lock()
	d.eventsVal = out
	d.mu.Unlock()
	return out
}

// messagingDestination returns the subject or stream a messaging span names, following
// the OpenTelemetry messaging conventions.
func messagingDestination(sp *devrun.Span) string {
	if sp.Attrs == nil {
		return ""
	}
	for _, k := range []string{"messaging.destination.name", "messaging.destination", "messaging.nats.subject"} {
		if v := sp.Attrs[k]; v != "" {
			return v
		}
	}
	return ""
}

// messagingRole tells a producing span ("publish") from a consuming one ("consume").
func messagingRole(sp *devrun.Span) string {
	op := strings.ToLower(sp.Attrs["messaging.operation.type"] + sp.Attrs["messaging.operation"])
	switch {
	case sp.Kind == "producer" || strings.Contains(op, "publish") || strings.Contains(op, "send") || strings.Contains(op, "create"):
		return "publish"
	case sp.Kind == "consumer" || strings.Contains(op, "process") || strings.Contains(op, "receive") || strings.Contains(op, "deliver"):
		return "consume"
	}
	return ""
}

func (d *dash) edges(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, d.edgeList())
}

// Series is one endpoint's RED series as /api/metrics returns it.
type Series struct {
	devrun.SeriesKey
	Points []devrun.REDPoint `json:"points"`
}

// seriesList returns the series of service (all when empty), each with its last points
// (all when last is 0) that are newer than since.
func (d *dash) seriesList(service string, last int, since time.Time) []Series {
	out := []Series{}
	for k, pts := range d.sys.Metrics.Series() {
		if service != "" && k.Service != service {
			continue
		}
		if last > 0 && len(pts) > last {
			pts = pts[len(pts)-last:]
		}
		i := len(pts)
		for i > 0 && pts[i-1].Time.After(since) {
			i--
		}
		if pts = pts[i:]; len(pts) == 0 && !since.IsZero() {
			continue
		}
		out = append(out, Series{SeriesKey: k, Points: pts})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].SeriesKey, out[j].SeriesKey
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		if a.Method != b.Method {
			return a.Method < b.Method
		}
		return a.Transport < b.Transport
	})
	return out
}

func (d *dash) metrics(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	last, _ := strconv.Atoi(q.Get("last"))
	writeJSON(w, http.StatusOK, d.seriesList(q.Get("service"), last, time.Time{}))
}

// TraceFilterFrom reads a trace filter from query parameters service, name, error
// ("1" or "true": failed traces only), min_ms, id and limit.
func TraceFilterFrom(q map[string][]string) devrun.TraceFilter {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	f := devrun.TraceFilter{Service: get("service"), Name: get("name"), ID: strings.ToLower(get("id"))}
	switch get("error") {
	case "1", "true", "on", "yes":
		f.ErrorsOnly = true
	}
	if ms, err := strconv.ParseFloat(get("min_ms"), 64); err == nil && ms > 0 {
		f.MinDuration = time.Duration(ms * float64(time.Millisecond))
	}
	if n, err := strconv.Atoi(get("limit")); err == nil && n > 0 {
		f.Limit = min(n, 1000)
	}
	return f
}

// LogFilterFrom reads a log filter from query parameters service, level, text, trace_id
// and limit.
func LogFilterFrom(q map[string][]string) devrun.LogFilter {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	f := devrun.LogFilter{Service: get("service"), Level: get("level"), Text: get("text"), TraceID: strings.ToLower(get("trace_id"))}
	if n, err := strconv.Atoi(get("limit")); err == nil && n > 0 {
		f.Limit = min(n, 5000)
	}
	return f
}

func (d *dash) traces(w http.ResponseWriter, r *http.Request) {
	out := d.sys.Traces.Query(TraceFilterFrom(r.URL.Query()))
	if out == nil {
		out = []devrun.Summary{}
	}
	writeJSON(w, http.StatusOK, out)
}

// TraceView is a trace with its summary and the number of log lines that carry its id.
type TraceView struct {
	devrun.Trace
	Summary devrun.Summary `json:"summary"`
	Logs    int            `json:"logs"`
}

func (d *dash) trace(w http.ResponseWriter, r *http.Request) {
	t, ok := d.sys.Traces.Get(strings.ToLower(r.PathValue("id")))
	if !ok {
		writeError(w, http.StatusNotFound, "no trace "+r.PathValue("id")+" in the window kept")
		return
	}
	v := TraceView{Trace: t, Summary: t.Summarize()}
	v.Logs = len(d.sys.Logs.Query(devrun.LogFilter{TraceID: t.ID, Limit: 1000}))
	writeJSON(w, http.StatusOK, v)
}

func (d *dash) logs(w http.ResponseWriter, r *http.Request) {
	out := d.sys.Logs.Query(LogFilterFrom(r.URL.Query()))
	if out == nil {
		out = []devrun.LogLine{}
	}
	writeJSON(w, http.StatusOK, out)
}

// kill sends SIGKILL to an instance, which its supervisor restarts; an instance that
// failed with a configuration error (StateFailed) is started again instead.
func (d *dash) kill(w http.ResponseWriter, r *http.Request) {
	in := d.sys.Instance(r.PathValue("id"))
	if in == nil {
		writeError(w, http.StatusNotFound, "no instance "+r.PathValue("id"))
		return
	}
	failed := in.Status().State == devrun.StateFailed
	if err := in.Kill(); err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	if failed {
		d.sys.Logs.Add("svckit", "dev", "devrun", "starting "+in.ID+" again from the dashboard (it had failed with a configuration error)")
		writeJSON(w, http.StatusOK, map[string]string{"started": in.ID})
		return
	}
	d.sys.Logs.Add("svckit", "dev", "devrun", "killed "+in.ID+" from the dashboard")
	writeJSON(w, http.StatusOK, map[string]string{"killed": in.ID})
}

// restart replaces an instance's process without a gap (devrun.Instance.Restart) in the
// background and answers 202 at once: the replacement takes as long as the new process
// needs to become ready, and its outcome is logged (stream "devrun").
func (d *dash) restart(w http.ResponseWriter, r *http.Request) {
	in := d.sys.Instance(r.PathValue("id"))
	if in == nil {
		writeError(w, http.StatusNotFound, "no instance "+r.PathValue("id"))
		return
	}
	if st := in.Status().State; st != devrun.StateRunning && st != devrun.StateFailed {
		writeError(w, http.StatusConflict, fmt.Sprintf("%s is %s", in.ID, st))
		return
	}
	d.sys.Logs.Add("svckit", "dev", "devrun", "restarting "+in.ID+" from the dashboard")
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		msg := in.ID + ": restarted from the dashboard"
		if err := in.Restart(ctx); err != nil {
			msg = in.ID + ": not restarted: " + err.Error()
		}
		d.sys.Logs.Add("svckit", "dev", "devrun", msg)
	}()
	writeJSON(w, http.StatusAccepted, map[string]string{"restarting": in.ID})
}
