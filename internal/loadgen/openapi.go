package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
)

// MaxOpenAPIBytes bounds an OpenAPI document.
const MaxOpenAPIBytes = 8 << 20

// Operation is one operation of an OpenAPI document.
type Operation struct {
	ID     string // operationId
	Method string // upper case: GET, POST…
	Path   string // the path template, such as /orders/{id}
	// PathParams are the names of the path's {parameters}, in order.
	PathParams []string
	// Body reports whether the operation takes a request body.
	Body bool
}

// ReadOpenAPI returns the document at src: a file, or an http(s) URL fetched with c (the
// caller checks the URL's host). Documents larger than MaxOpenAPIBytes are refused.
func ReadOpenAPI(ctx context.Context, c *http.Client, src string) ([]byte, error) {
	var r io.Reader
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
		if err != nil {
			return nil, fmt.Errorf("openapi %s: %w", src, err)
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, fmt.Errorf("openapi: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("openapi %s: status %d", src, resp.StatusCode)
		}
		r = resp.Body
	} else {
		f, err := os.Open(src)
		if err != nil {
			return nil, fmt.Errorf("openapi: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, MaxOpenAPIBytes+1))
	if err != nil {
		return nil, fmt.Errorf("openapi %s: %w", src, err)
	}
	if len(b) > MaxOpenAPIBytes {
		return nil, fmt.Errorf("openapi %s: larger than %d bytes", src, MaxOpenAPIBytes)
	}
	return b, nil
}

var pathParam = regexp.MustCompile(`\{([^{}/]+)\}`)

// FindOperation finds the operation called name in the OpenAPI (3.x, JSON) document doc:
// the one whose operationId is name, or else the only one whose operationId ends with it
// (svckit gen prefixes a service's operations with its interface: GatewayPlaceOrder is
// found as PlaceOrder), compared without regard to case.
func FindOperation(doc []byte, name string) (Operation, error) {
	var d struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return Operation{}, fmt.Errorf("openapi: not a JSON OpenAPI document: %w", err)
	}
	if !strings.HasPrefix(d.OpenAPI, "3.") {
		return Operation{}, fmt.Errorf("openapi: version %q, want 3.x", d.OpenAPI)
	}
	var all []Operation
	for path, item := range d.Paths {
		for method, raw := range item {
			switch method {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
			default:
				continue // parameters, summary, servers…
			}
			var op struct {
				OperationID string          `json:"operationId"`
				RequestBody json.RawMessage `json:"requestBody"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				return Operation{}, fmt.Errorf("openapi: %s %s: %w", method, path, err)
			}
			o := Operation{ID: op.OperationID, Method: strings.ToUpper(method), Path: path, Body: len(op.RequestBody) > 0}
			for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
				o.PathParams = append(o.PathParams, m[1])
			}
			all = append(all, o)
		}
	}
	slices.SortFunc(all, func(a, b Operation) int { return strings.Compare(a.ID, b.ID) })
	var suffix []Operation
	for _, o := range all {
		if strings.EqualFold(o.ID, name) {
			return o, nil
		}
		if len(o.ID) > len(name) && strings.EqualFold(o.ID[len(o.ID)-len(name):], name) {
			suffix = append(suffix, o)
		}
	}
	ids := func(ops []Operation) string {
		var s []string
		for _, o := range ops {
			s = append(s, o.ID)
		}
		if len(s) > 30 {
			s = append(s[:30], "…")
		}
		return strings.Join(s, ", ")
	}
	switch len(suffix) {
	case 1:
		return suffix[0], nil
	case 0:
		return Operation{}, fmt.Errorf("openapi: no operation %q; the document has: %s", name, ids(all))
	default:
		return Operation{}, fmt.Errorf("openapi: %q is ambiguous: %s", name, ids(suffix))
	}
}
