package fault

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxBody bounds the request bodies of the admin API.
const maxBody = 64 << 10

// List is the body of the admin API's answers and of PUT: the active rules.
type List struct {
	Rules []Rule `json:"rules"`
}

// Handler returns the admin API of the injector, for a path such as /faults on the admin
// listener:
//
//	GET    /faults                       {"rules":[…]}: the active rules
//	PUT    /faults    {"rules":[…]}      replace every rule
//	POST   /faults    {rule}             add a rule, or replace the one with its method and side
//	DELETE /faults                       remove every rule
//	DELETE /faults?method=M&side=S       remove one rule (404 if there is none)
//
// Every request needs "Authorization: Bearer TOKEN"; without it, or with another token,
// the answer is 401. Changes answer with the rules now active. Errors are
// application/problem+json. An empty token refuses every request with 404: the control
// is off.
func (i *Injector) Handler(token string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token == "" {
			writeProblem(w, http.StatusNotFound, "not_found", "fault injection control is off: no FAULT_TOKEN is set")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="faults"`)
			writeProblem(w, http.StatusUnauthorized, "unauthenticated", "a bearer token that the fault control accepts is required")
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodPut:
			var l List
			if !decode(w, r, &l) {
				return
			}
			if err := i.Set(l.Rules...); err != nil {
				writeProblem(w, http.StatusBadRequest, "invalid_argument", err.Error())
				return
			}
		case http.MethodPost:
			var rule Rule
			if !decode(w, r, &rule) {
				return
			}
			if err := i.Add(rule); err != nil {
				writeProblem(w, http.StatusBadRequest, "invalid_argument", err.Error())
				return
			}
		case http.MethodDelete:
			q := r.URL.Query()
			if !q.Has("method") {
				i.Clear()
				break
			}
			side := Side(q.Get("side"))
			if !side.valid() {
				writeProblem(w, http.StatusBadRequest, "invalid_argument", fmt.Sprintf("side %q is not server or client", side))
				return
			}
			if !i.Remove(q.Get("method"), side) {
				writeProblem(w, http.StatusNotFound, "not_found", fmt.Sprintf("no rule for method %q and side %q", q.Get("method"), side))
				return
			}
		default:
			w.Header().Set("Allow", "GET, HEAD, PUT, POST, DELETE")
			writeProblem(w, http.StatusMethodNotAllowed, "invalid_argument",
				"method "+r.Method+" is not allowed on "+r.URL.Path+"; allowed: GET, HEAD, PUT, POST, DELETE")
			return
		}
		hd := w.Header()
		hd.Set("Content-Type", "application/json")
		hd.Set("Cache-Control", "no-store")
		hd.Set("X-Content-Type-Options", "nosniff")
		if r.Method == http.MethodHead {
			return
		}
		_ = json.NewEncoder(w).Encode(List{Rules: i.Rules()}) // the client may be gone
	})
}

// decode reads a JSON body of at most maxBody bytes into v and answers 400 or 413 if it
// cannot.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeProblem(w, http.StatusRequestEntityTooLarge, "resource_exhausted", fmt.Sprintf("the body is larger than %d bytes", maxBody))
			return false
		}
		writeProblem(w, http.StatusBadRequest, "invalid_argument", "the body is not a fault rule in JSON: "+err.Error())
		return false
	}
	return true
}

// problem is an application/problem+json body (RFC 9457) with svckit's kind member.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Kind   string `json:"kind"`
}

func writeProblem(w http.ResponseWriter, status int, kind, detail string) {
	b, _ := json.Marshal(problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail, Kind: kind})
	hd := w.Header()
	hd.Set("Content-Type", "application/problem+json")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// Client calls the admin API of a process's injector ([Injector.Handler]), as the
// dashboard of `svckit dev` and tests do.
type Client struct {
	// URL is the API's address, such as http://127.0.0.1:9090/faults.
	URL string
	// Token is the bearer token the API accepts (the process's FAULT_TOKEN).
	Token string
	// HTTP makes the requests; nil means http.DefaultClient.
	HTTP *http.Client
}

// List returns the process's active rules.
func (c *Client) List(ctx context.Context) ([]Rule, error) {
	return c.do(ctx, http.MethodGet, "", nil)
}

// Set replaces the process's rules with rules and returns the rules now active.
func (c *Client) Set(ctx context.Context, rules ...Rule) ([]Rule, error) {
	if rules == nil {
		rules = []Rule{}
	}
	return c.do(ctx, http.MethodPut, "", List{Rules: rules})
}

// Add adds r, or replaces the rule with its method and side, and returns the rules now
// active.
func (c *Client) Add(ctx context.Context, r Rule) ([]Rule, error) {
	return c.do(ctx, http.MethodPost, "", r)
}

// Remove removes the rule with method and side and returns the rules now active.
func (c *Client) Remove(ctx context.Context, method string, side Side) ([]Rule, error) {
	return c.do(ctx, http.MethodDelete, "?"+url.Values{"method": {method}, "side": {string(side)}}.Encode(), nil)
}

// Clear removes every rule.
func (c *Client) Clear(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodDelete, "", nil)
	return err
}

func (c *Client) do(ctx context.Context, method, query string, body any) ([]Rule, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("fault: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL+query, rd)
	if err != nil {
		return nil, fmt.Errorf("fault: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fault: %s %s: %w", method, c.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("fault: %s %s: %w", method, c.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		var p problem
		if json.Unmarshal(b, &p) == nil && p.Detail != "" {
			return nil, &StatusError{Status: resp.StatusCode, Detail: p.Detail}
		}
		return nil, &StatusError{Status: resp.StatusCode, Detail: http.StatusText(resp.StatusCode)}
	}
	var l List
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("fault: %s %s: the answer is not a list of rules: %w", method, c.URL, err)
	}
	return l.Rules, nil
}

// StatusError is the error of a [Client] call the API refused.
type StatusError struct {
	// Status is the HTTP status of the answer.
	Status int
	// Detail is the problem's detail: why the API refused.
	Detail string
}

// Error returns "fault: STATUS: DETAIL".
func (e *StatusError) Error() string { return fmt.Sprintf("fault: %d: %s", e.Status, e.Detail) }
