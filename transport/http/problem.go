package http

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/svckit/svckit/svcerr"
	"github.com/svckit/svckit/transport/meta"
)

// ProblemContentType is the media type of error bodies (RFC 9457).
const ProblemContentType = "application/problem+json"

// Problem is the body of an error response: RFC 9457 members plus svckit's extensions.
type Problem struct {
	Type      string                  `json:"type"`
	Title     string                  `json:"title"`
	Status    int                     `json:"status"`
	Detail    string                  `json:"detail,omitempty"`
	Instance  string                  `json:"instance,omitempty"`
	Kind      string                  `json:"kind"`
	RequestID string                  `json:"request_id,omitempty"`
	Errors    []svcerr.FieldViolation `json:"errors,omitempty"`
	Meta      map[string]string       `json:"meta,omitempty"`
}

// statusError is a svcerr.Error with an HTTP status that the kind alone does not give,
// such as 413 or 415.
type statusError struct {
	status int
	err    *svcerr.Error
	accept string // the Accept-Encoding header of a 415 for an unsupported Content-Encoding
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// WithStatus returns err, which is reported to HTTP callers with the given status code
// instead of the one its kind maps to. Other transports see err unchanged.
func WithStatus(status int, err *svcerr.Error) error {
	return &statusError{status: status, err: err}
}

// ProblemFor returns the problem that describes err. Errors that are not *svcerr.Error
// become a generic 500 whose detail does not reveal the error text.
func ProblemFor(err error) (*Problem, int) {
	e := svcerr.From(err)
	status := e.Kind.HTTPStatus()
	var se *statusError
	if errors.As(err, &se) {
		status = se.status
	}
	detail := e.Message
	if e.Kind == svcerr.Internal || e.Kind == svcerr.Unknown {
		if detail == "" {
			detail = "internal error"
		}
	}
	p := &Problem{
		Type:   "about:blank",
		Title:  statusText(status),
		Status: status,
		Detail: detail,
		Kind:   e.Kind.String(),
		Errors: e.Fields,
		Meta:   e.Meta,
	}
	return p, status
}

func statusText(status int) string {
	switch status {
	case 499:
		return "Client Closed Request"
	case http.StatusRequestEntityTooLarge:
		return "Content Too Large" // RFC 9110's name; net/http still says "Request Entity Too Large"
	case http.StatusUnprocessableEntity:
		return "Unprocessable Content" // RFC 9110
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "Error"
}

// WriteProblem writes err as an application/problem+json response.
func WriteProblem(w http.ResponseWriter, r *http.Request, err error) {
	p, status := ProblemFor(err)
	if r != nil {
		p.Instance = r.URL.Path
		p.RequestID = w.Header().Get(meta.RequestIDHeader)
	}
	if ra, ok := p.Meta["retry_after"]; ok {
		if _, err := strconv.Atoi(ra); err == nil {
			w.Header().Set("Retry-After", ra)
		}
	}
	if se, ok := errors.AsType[*statusError](err); ok && se.accept != "" {
		// RFC 7694: a 415 for a Content-Encoding says which encodings the server takes.
		w.Header().Set("Accept-Encoding", se.accept)
	}
	if status == http.StatusRequestTimeout {
		// The request was not read to its end: the connection cannot carry another one.
		w.Header().Set("Connection", "close")
	}
	if status == http.StatusUnauthorized {
		if c, ok := p.Meta["www_authenticate"]; ok && c != "" {
			w.Header().Set("WWW-Authenticate", c)
		}
	}
	body, mErr := json.Marshal(p)
	if mErr != nil { // cannot happen for these field types; keep the response well-formed anyway
		body = []byte(`{"type":"about:blank","title":"Internal Server Error","status":500,"kind":"internal"}`)
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h["Content-Type"] = []string{ProblemContentType}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// errorFromResponse turns a non-2xx response into a *svcerr.Error: from its problem+json
// body when it has one, from the status code otherwise. Its RequestID is the problem's
// request_id, the response's X-Request-Id, or sentID, the first that is a valid id.
func errorFromResponse(resp *http.Response, sentID string) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var p Problem
	if isProblem(resp.Header.Get("Content-Type")) && json.Unmarshal(body, &p) == nil && p.Kind != "" {
		k, ok := svcerr.ParseKind(p.Kind)
		if !ok {
			k = svcerr.KindFromHTTP(resp.StatusCode)
		}
		return &svcerr.Error{Kind: k, Message: p.Detail, Fields: p.Errors, Meta: p.Meta,
			RequestID: meta.FirstValidRequestID(p.RequestID, resp.Header.Get(meta.RequestIDHeader), sentID)}
	}
	// A body that is not svckit's problem+json comes from something else on the way — a
	// proxy, a load balancer, a foreign server — and may name internal addresses: it is
	// kept in the cause, for logs, and the message is the status text.
	e := &svcerr.Error{Kind: svcerr.KindFromHTTP(resp.StatusCode), Message: statusText(resp.StatusCode),
		RequestID: meta.FirstValidRequestID(resp.Header.Get(meta.RequestIDHeader), sentID)}
	if len(body) > 0 {
		if len(body) > 200 {
			body = body[:200]
		}
		e.Cause = fmt.Errorf("HTTP %d: %s", resp.StatusCode, body)
	}
	return e
}

func isProblem(ct string) bool {
	mt, _, _ := cutParams(ct)
	return mt == ProblemContentType
}
