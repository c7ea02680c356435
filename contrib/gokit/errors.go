package gokit

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/go-kit/kit/ratelimit"

	"github.com/svckit/svckit/svcerr"
)

// statusCoder is go-kit's transport/http.StatusCoder: an error that knows its HTTP status.
type statusCoder interface {
	StatusCode() int
}

// ErrorFromKit returns err as svckit sees it:
//
//   - nil, an error that is or wraps an [*svcerr.Error], and an error made by [ErrorToKit]
//     are returned unchanged: they are classified already.
//   - An error that is or wraps a go-kit StatusCoder (an error with a StatusCode() int
//     method, as go-kit's HTTP server understands it) becomes an [*svcerr.Error] whose kind
//     is [svcerr.KindFromHTTP] of that status code, whose message is err's text (the text
//     that go-kit's default error encoder showed callers) and whose cause is err, so
//     errors.Is and errors.As still find the original.
//   - go-kit's ratelimit.ErrLimited becomes ResourceExhausted, with err as the cause.
//   - Any other error is returned unchanged. svckit treats it as Internal (or as Canceled or
//     DeadlineExceeded for the context errors) and does not show its text to callers.
//
// Map other sentinel errors (a circuit breaker's "open" error, for example) to svcerr
// kinds in the go-kit code, or with a small go-kit middleware, before they reach svckit.
func ErrorFromKit(err error) error {
	if err == nil {
		return nil
	}
	var se *svcerr.Error
	var te *statusError
	if errors.As(err, &se) || errors.As(err, &te) {
		return err
	}
	var sc statusCoder
	if errors.As(err, &sc) {
		return &svcerr.Error{Kind: svcerr.KindFromHTTP(sc.StatusCode()), Message: err.Error(), Cause: err}
	}
	if errors.Is(err, ratelimit.ErrLimited) {
		return svcerr.Wrap(svcerr.ResourceExhausted, "rate limit exceeded", err)
	}
	return err
}

// ErrorToKit returns err as go-kit's HTTP server understands it: an error that implements
// go-kit's StatusCoder with the HTTP status of its svckit kind ([svcerr.KindOf]), and
// json.Marshaler with a caller-safe problem body, so that go-kit's DefaultErrorEncoder
// answers with the right status code and without internal error text. The result unwraps
// to err, so errors.Is, errors.As and [svcerr.KindOf] see through it, and its Error is
// err's.
//
// An error that came from go-kit through [ErrorFromKit] gets its original status code
// back. nil, and an error that itself implements StatusCoder, are returned unchanged.
func ErrorToKit(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(statusCoder); ok {
		return err
	}
	return &statusError{err: err, status: statusOf(err)}
}

// statusOf returns the HTTP status code for err: that of its kind, or, for an error made
// by ErrorFromKit from a StatusCoder and not reclassified since, the original status code.
func statusOf(err error) int {
	var te *statusError
	if errors.As(err, &te) {
		return te.status
	}
	var se *svcerr.Error
	if errors.As(err, &se) {
		if sc, ok := se.Cause.(statusCoder); ok && svcerr.KindFromHTTP(sc.StatusCode()) == se.Kind {
			return sc.StatusCode()
		}
	}
	return svcerr.KindOf(err).HTTPStatus()
}

// statusError is an error as ErrorToKit hands it to go-kit.
type statusError struct {
	err    error
	status int
}

func (e *statusError) Error() string   { return e.err.Error() }
func (e *statusError) Unwrap() error   { return e.err }
func (e *statusError) StatusCode() int { return e.status }

// MarshalJSON returns the caller-safe problem body of the error; go-kit's
// DefaultErrorEncoder writes it as the response body.
func (e *statusError) MarshalJSON() ([]byte, error) { return json.Marshal(problemFor(e.err, e.status)) }

// problem is an RFC 9457 problem body with svckit's members: the kind, field violations
// and metadata.
type problem struct {
	Type   string                  `json:"type"`
	Title  string                  `json:"title"`
	Status int                     `json:"status"`
	Detail string                  `json:"detail,omitempty"`
	Kind   string                  `json:"kind"`
	Errors []svcerr.FieldViolation `json:"errors,omitempty"`
	Meta   map[string]string       `json:"meta,omitempty"`
}

func problemFor(err error, status int) *problem {
	e := svcerr.From(err)
	title := http.StatusText(status)
	switch {
	case status == 499:
		title = "Client Closed Request"
	case title == "":
		title = "Error"
	}
	return &problem{
		Type:   "about:blank",
		Title:  title,
		Status: status,
		Detail: e.Message,
		Kind:   e.Kind.String(),
		Errors: e.Fields,
		Meta:   e.Meta,
	}
}

// ProblemContentType is the media type that [ErrorEncoder] writes (RFC 9457).
const ProblemContentType = "application/problem+json"

// ErrorEncoder writes err as an application/problem+json response with a "kind" member, as
// svckit's HTTP transport does, so that svckit clients read back the exact kind. Its
// signature is go-kit's transport/http.ErrorEncoder: pass it to a go-kit HTTP server with
// kithttp.ServerErrorEncoder(gokit.ErrorEncoder).
//
// The status code is that of [ErrorToKit]: an error implementing go-kit's StatusCoder keeps
// its code; otherwise the code of its kind. The body never contains the text of errors
// that are not [*svcerr.Error]. A "retry_after" metadata entry of whole seconds is also
// sent as a Retry-After header.
func ErrorEncoder(_ context.Context, err error, w http.ResponseWriter) {
	var status int
	if sc, ok := err.(statusCoder); ok {
		status = sc.StatusCode()
	} else {
		status = statusOf(err)
	}
	p := problemFor(ErrorFromKit(err), status)
	body, mErr := json.Marshal(p)
	if mErr != nil { // cannot happen for these field types; keep the response well-formed anyway
		status = http.StatusInternalServerError
		body = []byte(`{"type":"about:blank","title":"Internal Server Error","status":500,"kind":"internal"}`)
	}
	h := w.Header()
	if ra, ok := p.Meta["retry_after"]; ok {
		if _, err := strconv.Atoi(ra); err == nil {
			h.Set("Retry-After", ra)
		}
	}
	h.Set("Content-Type", ProblemContentType)
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
