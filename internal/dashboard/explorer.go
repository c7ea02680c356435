package dashboard

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/svckit/svckit/internal/devrun"
	shttp "github.com/svckit/svckit/transport/http"
)

// Endpoint is one callable operation of a service in the API explorer.
type Endpoint struct {
	Method      string `json:"method"` // HTTP method, upper case
	Path        string `json:"path"`
	Name        string `json:"name"` // operationId, or the span name
	Summary     string `json:"summary,omitempty"`
	Example     string `json:"example,omitempty"` // a request body built from the schema
	HasBody     bool   `json:"has_body"`
	Transport   string `json:"transport,omitempty"`
	Guessed     bool   `json:"guessed,omitempty"` // method and path are a guess from a span name
	Description string `json:"description,omitempty"`
}

// ServiceAPI is a service's entry in /api/explorer.
type ServiceAPI struct {
	Service   string     `json:"service"`
	Source    string     `json:"source"` // "openapi", "traces" or "none"
	Error     string     `json:"error,omitempty"`
	Endpoints []Endpoint `json:"endpoints"`
	Token     bool       `json:"token"` // calls carry the dev token
	// Public marks the public service, which the explorer calls with any method.
	Public bool `json:"public"`
	// ReadOnly marks an internal service: the explorer calls it with GET and HEAD only,
	// and ReadOnlyReason says why.
	ReadOnly       bool   `json:"read_only"`
	ReadOnlyReason string `json:"read_only_reason,omitempty"`
}

func (d *dash) openapiBytes(ctx context.Context, service string) ([]byte, error) {
	if d.cfg.openapi == nil {
		return nil, nil
	}
	return d.cfg.openapi(ctx, service)
}

func (d *dash) explorer(w http.ResponseWriter, r *http.Request) {
	seen := d.endpointsFromTraces()
	out := []ServiceAPI{}
	for _, svc := range d.sys.Manifest.Services {
		api := ServiceAPI{Service: svc.Name, Source: "none", Endpoints: []Endpoint{}, Token: d.cfg.token != nil,
			Public: svc.Public, ReadOnly: !svc.Public}
		if api.ReadOnly {
			api.ReadOnlyReason = internalReadOnly(d.sys.Manifest, svc.Name)
		}
		doc, err := d.openapiBytes(r.Context(), svc.Name)
		switch {
		case err != nil:
			api.Error = err.Error()
		case len(doc) > 0:
			eps, err := ParseOpenAPI(doc)
			if err != nil {
				api.Error = err.Error()
			} else {
				api.Source, api.Endpoints = "openapi", eps
			}
		}
		if api.Source == "none" && len(seen[svc.Name]) > 0 {
			api.Source, api.Endpoints = "traces", seen[svc.Name]
		}
		out = append(out, api)
	}
	writeJSON(w, http.StatusOK, out)
}

// endpointsFromTraces lists, per service, the server spans' endpoints seen in the traces,
// with a guessed method and path ("POST /sum" for "addsvc/Sum").
func (d *dash) endpointsFromTraces() map[string][]Endpoint {
	type key struct{ service, name, transport string }
	found := map[key]bool{}
	d.sys.Traces.Range(func(t *devrun.Trace) bool {
		for i := range t.Spans {
			sp := &t.Spans[i]
			if sp.Kind == "server" {
				found[key{sp.Service, sp.Name, spanTransport(sp)}] = true
			}
		}
		return len(found) < 500
	})
	out := map[string][]Endpoint{}
	for k := range found {
		if k.transport != "http" && found[key{k.service, k.name, "http"}] {
			continue // the HTTP route of the same method is listed
		}
		method := k.name[strings.LastIndex(k.name, "/")+1:]
		ep := Endpoint{Name: k.name, Transport: k.transport, Guessed: true, Method: http.MethodPost,
			Path: "/" + strings.ToLower(method), HasBody: true, Example: "{}"}
		out[k.service] = append(out[k.service], ep)
	}
	for _, eps := range out {
		sort.Slice(eps, func(i, j int) bool {
			if eps[i].Name != eps[j].Name {
				return eps[i].Name < eps[j].Name
			}
			return eps[i].Transport < eps[j].Transport
		})
	}
	return out
}

func (d *dash) openapiDoc(w http.ResponseWriter, r *http.Request) {
	doc, err := d.openapiBytes(r.Context(), r.PathValue("service"))
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if len(doc) == 0 {
		writeError(w, http.StatusNotFound, "no OpenAPI document for "+r.PathValue("service"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(doc)
}

// ParseOpenAPI lists the operations of an OpenAPI 3 document, with an example request
// body built from each operation's JSON schema.
func ParseOpenAPI(doc []byte) ([]Endpoint, error) {
	var d struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, err
	}
	var out []Endpoint
	for path, item := range d.Paths {
		for method, raw := range item {
			m := strings.ToUpper(method)
			switch m {
			case "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS":
			default:
				continue
			}
			var op struct {
				OperationID string `json:"operationId"`
				Summary     string `json:"summary"`
				Description string `json:"description"`
				RequestBody *struct {
					Content map[string]struct {
						Schema json.RawMessage `json:"schema"`
					} `json:"content"`
				} `json:"requestBody"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				continue
			}
			ep := Endpoint{Method: m, Path: path, Name: op.OperationID, Summary: op.Summary, Description: op.Description}
			if sameText(ep.Summary, ep.Description) {
				ep.Description = "" // a generated document's summary is its description's first sentence
			}
			if op.RequestBody != nil {
				ep.HasBody = true
				ep.Example = "{}"
				if c, ok := op.RequestBody.Content["application/json"]; ok {
					if b, err := json.MarshalIndent(example(c.Schema, d.Components.Schemas, 0), "", "  "); err == nil {
						ep.Example = string(b)
					}
				}
			}
			out = append(out, ep)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out, nil
}

// sameText reports whether a and b are the same text but for white space, line breaks
// and a final period.
func sameText(a, b string) bool {
	norm := func(s string) string { return strings.TrimRight(strings.Join(strings.Fields(s), " "), ".") }
	return norm(a) == norm(b)
}

// example builds a sample value for a JSON schema, following $ref into the components.
func example(raw json.RawMessage, schemas map[string]json.RawMessage, depth int) any {
	if depth > 6 || len(raw) == 0 {
		return nil
	}
	var s struct {
		Ref        string                     `json:"$ref"`
		Type       any                        `json:"type"`
		Format     string                     `json:"format"`
		Example    any                        `json:"example"`
		Examples   []any                      `json:"examples"`
		Enum       []any                      `json:"enum"`
		Properties map[string]json.RawMessage `json:"properties"`
		Items      json.RawMessage            `json:"items"`
	}
	if json.Unmarshal(raw, &s) != nil {
		return nil
	}
	if s.Ref != "" {
		return example(schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")], schemas, depth+1)
	}
	switch {
	case s.Example != nil:
		return s.Example
	case len(s.Examples) > 0:
		return s.Examples[0]
	case len(s.Enum) > 0:
		return s.Enum[0]
	}
	typ, _ := s.Type.(string)
	if list, ok := s.Type.([]any); ok { // OpenAPI 3.1: ["string", "null"]
		for _, t := range list {
			if ts, _ := t.(string); ts != "null" {
				typ = ts
				break
			}
		}
	}
	switch {
	case typ == "object" || s.Properties != nil:
		obj := map[string]any{}
		for name, p := range s.Properties {
			obj[name] = example(p, schemas, depth+1)
		}
		return obj
	case typ == "array":
		return []any{example(s.Items, schemas, depth+1)}
	case typ == "integer" || typ == "number":
		return 0
	case typ == "boolean":
		return false
	case typ == "string":
		if s.Format == "date-time" {
			return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)
		}
		return ""
	}
	return nil
}

// call proxies /api/call/{service}/{path...} to a running instance of the service
// (round robin): the public service with any method, as the development user (the dev
// token as a bearer Authorization header, unless the request has one); an internal
// service read-only, GET and HEAD (see internalReadOnly). Cookies and the dashboard's own
// headers are not passed on. The guard has checked Host, Origin and the secret; call
// checks the secret again, so that no route to a service is left without it.
func (d *dash) call(w http.ResponseWriter, r *http.Request) {
	if !d.authorized(r) {
		devrun.Refuse(w, errNoSecret)
		return
	}
	service := r.PathValue("service")
	svc := d.sys.Manifest.Service(service)
	if svc == nil {
		writeError(w, http.StatusNotFound, "no service "+service)
		return
	}
	if !svc.Public && r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusForbidden, internalReadOnly(d.sys.Manifest, service))
		return
	}
	var addrs []string
	for _, in := range d.sys.Instances {
		switch in.Status().State {
		case devrun.StateStopped, devrun.StateBackoff, devrun.StateFailed:
			continue
		}
		if in.Service == service && in.Addrs["http"] != "" {
			addrs = append(addrs, in.Addrs["http"])
		}
	}
	if len(addrs) == 0 {
		writeError(w, http.StatusBadGateway, "no running instance of "+service)
		return
	}
	addr := addrs[int(atomic.AddUint64(&d.rr, 1)%uint64(len(addrs)))]
	token := ""
	if d.cfg.token != nil && r.Header.Get("Authorization") == "" {
		t, err := d.cfg.token(r.Context())
		if err != nil {
			writeError(w, http.StatusInternalServerError, "dev token: "+err.Error())
			return
		}
		token = t
	}
	target := &url.URL{Scheme: "http", Host: addr}
	var transport http.RoundTripper
	if tr := d.mtlsTransport(service); tr != nil {
		// Under mTLS a service's HTTP listener wants the runner's client certificate.
		target.Scheme, transport = "https", tr
	}
	proxy := &httputil.ReverseProxy{
		Transport: transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = target.Scheme, target.Host
			pr.Out.URL.Path = "/" + r.PathValue("path")
			pr.Out.URL.RawPath = ""
			pr.Out.Host = target.Host
			for _, h := range []string{"Cookie", SecretHeader, PageHeader, "Origin", "Referer"} {
				pr.Out.Header.Del(h)
			}
			for h := range pr.Out.Header {
				if strings.HasPrefix(h, "Sec-Fetch-") {
					pr.Out.Header.Del(h)
				}
			}
			if token != "" {
				pr.Out.Header.Set("Authorization", "Bearer "+token)
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Del("Set-Cookie") // a service's cookie would be the dashboard's
			resp.Header.Set("X-Svckit-Instance", addr)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			writeError(w, http.StatusBadGateway, err.Error())
		},
	}
	proxy.ServeHTTP(w, r)
}

// internalReadOnly says why the explorer calls an internal service only with GET and
// HEAD: writes to it would skip the public service's checks and the invariants its
// callers keep (a payment charged for an order that does not exist, a refund that the
// order never hears of, stock held forever).
func internalReadOnly(m *devrun.Manifest, service string) string {
	via := "the system has no public service"
	for _, s := range m.Services {
		if s.Public {
			via = "change things through the public service, " + s.Name
			break
		}
	}
	return service + " is an internal service: the dashboard calls it read-only (GET, HEAD); " +
		via + " (see docs/dashboard.md)"
}

// mtlsTransport returns the transport that calls service's HTTP listener with the
// runner's client certificate when the system runs with mTLS and the service is not
// public (a public service keeps plain HTTP), or nil for plain HTTP.
func (d *dash) mtlsTransport(service string) http.RoundTripper {
	cfg := d.sys.ClientTLS()
	if cfg == nil {
		return nil
	}
	for _, s := range d.sys.Manifest.Services {
		if s.Name == service && s.Public {
			return nil
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.tlsTr == nil {
		d.tlsTr = shttp.NewTransport(cfg)
	}
	return d.tlsTr
}

// spanTransport is the transport of a server span: rpc.system.name (semantic conventions
// v1.43, gRPC spans), or rpc.system (older binaries), or "http" for a span with neither.
func spanTransport(sp *devrun.Span) string {
	if t := sp.Attrs["rpc.system.name"]; t != "" {
		return t
	}
	if t := sp.Attrs["rpc.system"]; t != "" {
		return t
	}
	return "http"
}
