package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/svckit/svckit/fault"
	"github.com/svckit/svckit/internal/devrun"
)

// FaultsView is one instance's fault rules as /api/faults returns them.
type FaultsView struct {
	Service  string       `json:"service"`
	Instance string       `json:"instance"`
	Rules    []fault.Rule `json:"rules"`
	// Error says why the rules could not be read or changed on this instance.
	Error string `json:"error,omitempty"`
}

// faultTimeout bounds one call to an instance's fault control.
const faultTimeout = 2 * time.Second

// faultRoutes adds the fault injection API:
//
//	GET    /api/faults                       every running instance's rules
//	POST   /api/faults/{service}  {rule}     add the rule on every running instance of service
//	DELETE /api/faults/{service}?method=&side=   remove one rule (without method: all)
//
// The dashboard calls each instance's /faults on its admin port with the FAULT_TOKEN
// devrun gave it. Changes need the run's secret, as every method but GET does.
func (d *dash) faultRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/faults", d.listFaults)
	mux.HandleFunc("POST /api/faults/{service}", d.addFault)
	mux.HandleFunc("DELETE /api/faults/{service}", d.removeFaults)
}

// faultToken returns the FAULT_TOKEN in in's environment (the last one wins, as for the
// process), or "".
func faultToken(in *devrun.Instance) string {
	tok := ""
	for _, kv := range in.Env {
		if v, ok := strings.CutPrefix(kv, "FAULT_TOKEN="); ok {
			tok = v
		}
	}
	return tok
}

// faultClient returns the client of in's fault control.
func (d *dash) faultClient(in *devrun.Instance) *fault.Client {
	return &fault.Client{URL: "http://" + in.Addrs["admin"] + "/faults", Token: faultToken(in),
		HTTP: &http.Client{Timeout: faultTimeout}}
}

// faultInstances returns the instances of service (every service if "") that may be
// running: not stopped, failed or waiting to restart, as for /api/call.
func (d *dash) faultInstances(service string) []*devrun.Instance {
	var out []*devrun.Instance
	for _, in := range d.sys.Instances {
		if service != "" && in.Service != service {
			continue
		}
		switch in.Status().State {
		case devrun.StateStopped, devrun.StateBackoff, devrun.StateFailed:
			continue
		}
		out = append(out, in)
	}
	return out
}

// eachInstance runs f on every instance at once and returns a view per instance, in order.
func (d *dash) eachInstance(ctx context.Context, ins []*devrun.Instance,
	f func(ctx context.Context, c *fault.Client) ([]fault.Rule, error)) []FaultsView {
	out := make([]FaultsView, len(ins))
	var wg sync.WaitGroup
	for i, in := range ins {
		out[i] = FaultsView{Service: in.Service, Instance: in.ID, Rules: []fault.Rule{}}
		if faultToken(in) == "" {
			out[i].Error = "no fault control: the instance has no FAULT_TOKEN"
			continue
		}
		wg.Go(func() {
			rules, err := f(ctx, d.faultClient(in))
			if err != nil {
				out[i].Error = faultError(err)
				return
			}
			if rules != nil {
				out[i].Rules = rules
			}
		})
	}
	wg.Wait()
	return out
}

// faultError explains an instance's refusal without transport detail.
func faultError(err error) string {
	var se *fault.StatusError
	switch {
	case errors.As(err, &se) && se.Status == http.StatusNotFound && strings.Contains(se.Detail, "FAULT_TOKEN"):
		return "no fault control: the service does not run svckit's admin listener with FAULT_TOKEN"
	case errors.As(err, &se):
		return se.Detail
	}
	return "the instance's admin listener did not answer"
}

func (d *dash) listFaults(w http.ResponseWriter, r *http.Request) {
	views := d.eachInstance(r.Context(), d.faultInstances(""), func(ctx context.Context, c *fault.Client) ([]fault.Rule, error) {
		return c.List(ctx)
	})
	writeJSON(w, http.StatusOK, views)
}

// knownService reports whether the manifest has service.
func (d *dash) knownService(service string) bool {
	for _, s := range d.sys.Manifest.Services {
		if s.Name == service {
			return true
		}
	}
	return false
}

func (d *dash) addFault(w http.ResponseWriter, r *http.Request) {
	service := r.PathValue("service")
	if !d.knownService(service) {
		writeError(w, http.StatusNotFound, "no service "+service)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 16<<10))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "the rule is larger than 16 KiB")
		return
	}
	var rule fault.Rule
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&rule); err != nil {
		writeError(w, http.StatusBadRequest, "the body is not a fault rule in JSON: "+err.Error())
		return
	}
	if err := fault.New().Add(rule); err != nil { // the instances would refuse it alike
		writeError(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), "fault: "))
		return
	}
	d.change(w, r, service, func(ctx context.Context, c *fault.Client) ([]fault.Rule, error) {
		return c.Add(ctx, rule)
	})
}

func (d *dash) removeFaults(w http.ResponseWriter, r *http.Request) {
	service := r.PathValue("service")
	if !d.knownService(service) {
		writeError(w, http.StatusNotFound, "no service "+service)
		return
	}
	q := r.URL.Query()
	if q.Has("side") && fault.Side(q.Get("side")) != fault.Both && fault.Side(q.Get("side")) != fault.ServerSide &&
		fault.Side(q.Get("side")) != fault.ClientSide {
		writeError(w, http.StatusBadRequest, "side is not server or client")
		return
	}
	d.change(w, r, service, func(ctx context.Context, c *fault.Client) ([]fault.Rule, error) {
		if !q.Has("method") {
			return nil, c.Clear(ctx)
		}
		rules, err := c.Remove(ctx, q.Get("method"), fault.Side(q.Get("side")))
		var se *fault.StatusError
		if errors.As(err, &se) && se.Status == http.StatusNotFound && !strings.Contains(se.Detail, "FAULT_TOKEN") {
			return c.List(ctx) // not on this instance: nothing to remove
		}
		return rules, err
	})
}

// change applies f to every running instance of service and answers with each one's
// rules: 200 if every instance took the change, 502 if some did not (their error says
// why), 409 if the service has no running instance.
func (d *dash) change(w http.ResponseWriter, r *http.Request, service string,
	f func(ctx context.Context, c *fault.Client) ([]fault.Rule, error)) {
	ins := d.faultInstances(service)
	if len(ins) == 0 {
		writeError(w, http.StatusConflict, service+" has no running instance")
		return
	}
	views := d.eachInstance(r.Context(), ins, f)
	code := http.StatusOK
	for _, v := range views {
		if v.Error != "" {
			code = http.StatusBadGateway
		}
	}
	writeJSON(w, code, views)
}
