// Package svcerr is svckit's one error model. An error has a [Kind] (invalid argument, not
// found, unavailable, …), a message safe to show to callers, and optional details: field
// violations and string metadata. Transports map kinds to HTTP status codes with
// application/problem+json bodies (RFC 9457) and to gRPC status codes, in both directions,
// so a Go client gets back the kind the server returned.
//
// Any error that is not an *Error, or does not wrap one, is treated as [Internal], and its
// text is not shown to callers.
package svcerr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"
)

// Kind classifies an error by what the caller can do about it. The zero Kind is Unknown.
type Kind uint8

// The kinds follow the gRPC status codes, which are the most widely shared vocabulary.
const (
	Unknown            Kind = iota // the error could not be classified
	InvalidArgument                // the request is malformed or a field is invalid
	NotFound                       // the addressed resource does not exist
	AlreadyExists                  // the resource to create exists already
	FailedPrecondition             // the system is not in a state that allows the operation
	Aborted                        // a concurrency conflict; retry the whole transaction
	OutOfRange                     // a value is past the valid range
	Unauthenticated                // credentials are missing or invalid
	PermissionDenied               // the caller may not do this
	ResourceExhausted              // a quota or rate limit was hit, or the payload is too large
	Canceled                       // the caller canceled the request
	DeadlineExceeded               // the deadline passed before the operation completed
	Unimplemented                  // the operation is not supported
	Unavailable                    // the service cannot take the request now; retry later
	Internal                       // an invariant broke; a bug
	DataLoss                       // unrecoverable data loss or corruption
	numKinds
)

var kindNames = [numKinds]string{
	Unknown:            "unknown",
	InvalidArgument:    "invalid_argument",
	NotFound:           "not_found",
	AlreadyExists:      "already_exists",
	FailedPrecondition: "failed_precondition",
	Aborted:            "aborted",
	OutOfRange:         "out_of_range",
	Unauthenticated:    "unauthenticated",
	PermissionDenied:   "permission_denied",
	ResourceExhausted:  "resource_exhausted",
	Canceled:           "canceled",
	DeadlineExceeded:   "deadline_exceeded",
	Unimplemented:      "unimplemented",
	Unavailable:        "unavailable",
	Internal:           "internal",
	DataLoss:           "data_loss",
}

// String returns the snake_case name of the kind, as used in metrics labels and in the
// "kind" member of problem+json bodies.
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Reason returns the kind's name in UPPER_SNAKE_CASE ("NOT_FOUND"), the form of the
// reason of a google.rpc.ErrorInfo error detail.
func (k Kind) Reason() string {
	if k < numKinds {
		return kindReasons[k]
	}
	return "UNKNOWN"
}

// ParseReason returns the Kind whose [Kind.Reason] is s, or Unknown and false.
func ParseReason(s string) (Kind, bool) {
	for k, n := range kindReasons {
		if n == s {
			return Kind(k), true
		}
	}
	return Unknown, false
}

// kindReasons holds each kind's Reason, built once.
var kindReasons = func() (r [numKinds]string) {
	for k, n := range kindNames {
		r[k] = strings.ToUpper(n)
	}
	return r
}()

// ParseKind returns the Kind named s (as returned by String), or Unknown and false.
func ParseKind(s string) (Kind, bool) {
	for k, n := range kindNames {
		if n == s {
			return Kind(k), true
		}
	}
	return Unknown, false
}

// Retryable reports whether a call that failed with this kind may succeed if repeated
// unchanged.
func (k Kind) Retryable() bool {
	switch k {
	case Unavailable, ResourceExhausted, Aborted, DeadlineExceeded:
		return true
	}
	return false
}

// FieldViolation names one invalid field of a request and says what is wrong with it.
type FieldViolation struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

// Error is an error with a Kind, a caller-safe message and optional details.
type Error struct {
	// Kind classifies the error.
	Kind Kind
	// Message is shown to callers. It must not contain secrets or internals.
	Message string
	// Fields lists invalid request fields, for InvalidArgument errors.
	Fields []FieldViolation
	// Meta carries machine-readable details, such as "retry_after" or a reason code.
	Meta map[string]string
	// Cause is the underlying error; it is logged, never shown to callers.
	Cause error
	// RequestID is the id of the failed request: the one the server reported in its reply
	// (a svckit server makes one up when the caller sent none, as a call from a cron job
	// or a worker does), or else the one the call sent. svckit's HTTP, gRPC and NATS
	// clients set it on the errors that replies carry, so that a caller can quote the id
	// under which the server logged and traced the failure. A server never sends it on:
	// its reply names the request it answers.
	RequestID string
}

// Error returns "kind: message: cause". The cause is left out when the message contains
// its text already, as it does for errors made by [Errorf] with %w. A nil *Error returns
// "<nil>".
func (e *Error) Error() string {
	if e == nil {
		return "<nil>"
	}
	var b strings.Builder
	b.WriteString(e.Kind.String())
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Cause != nil {
		if c := e.Cause.Error(); !strings.Contains(e.Message, c) {
			b.WriteString(": ")
			b.WriteString(c)
		}
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Cause
}

// Is reports whether target is an *Error of the same kind with no message, or of the same
// kind and message; fields, metadata and cause are not compared. It lets callers write
// errors.Is(err, svcerr.New(svcerr.NotFound, "")).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok || t == nil || e == nil {
		return false
	}
	return t.Kind == e.Kind && (t.Message == "" || t.Message == e.Message)
}

// New returns an error of kind k with message msg.
func New(k Kind, msg string) *Error { return &Error{Kind: k, Message: msg} }

// Errorf returns an error of kind k with a formatted message. A %w verb sets the cause; the
// cause's text is then also part of the message, so use %w only for caller-safe errors.
// With several %w verbs the cause is an error that wraps all of them, so that errors.Is
// and errors.As find each.
func Errorf(k Kind, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	cause := errors.Unwrap(err)
	if _, multi := err.(interface{ Unwrap() []error }); multi {
		cause = err
	}
	return &Error{Kind: k, Message: err.Error(), Cause: cause}
}

// Wrap returns an error of kind k with message msg and cause err. err's text is logged,
// not shown to callers. Wrap(k, msg, nil) is New(k, msg).
func Wrap(k Kind, msg string, err error) *Error { return &Error{Kind: k, Message: msg, Cause: err} }

// Invalid returns an InvalidArgument error listing field violations as pairs of field and
// description: Invalid("a", "must be positive", "b", "is required"). With one violation the
// message is "field: description", otherwise "invalid request". A last field without a
// description is ignored.
func Invalid(fieldDescPairs ...string) *Error {
	e := &Error{Kind: InvalidArgument, Message: "invalid request"}
	for i := 0; i+1 < len(fieldDescPairs); i += 2 {
		e.Fields = append(e.Fields, FieldViolation{Field: fieldDescPairs[i], Description: fieldDescPairs[i+1]})
	}
	if len(e.Fields) == 1 {
		e.Message = e.Fields[0].Field + ": " + e.Fields[0].Description
	}
	return e
}

// WithMeta sets the metadata entry key to value and returns e, for chaining:
// svcerr.New(svcerr.Unavailable, "busy").WithMeta("retry_after", "5"). It changes e.
func (e *Error) WithMeta(key, value string) *Error {
	if e.Meta == nil {
		e.Meta = make(map[string]string, 1)
	}
	e.Meta[key] = value
	return e
}

// KindOf returns the kind of err: the kind of the first *Error in its chain, Canceled or
// DeadlineExceeded for the context errors, Unknown for nil, and Internal otherwise. A nil
// *Error in the chain (a typed nil returned as an error) counts as no *Error.
func KindOf(err error) Kind {
	if err == nil {
		return Unknown
	}
	var e *Error
	if errors.As(err, &e) && e != nil {
		return e.Kind
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return Canceled
	}
	return Internal
}

// From returns err as an *Error: the first *Error in its chain, or a new one whose kind is
// KindOf(err) and whose message is generic, so that internal error text never reaches
// callers. From(nil) is nil; From of any other error is not.
func From(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) && e != nil {
		return e
	}
	k := KindOf(err)
	return &Error{Kind: k, Message: defaultMessage(k), Cause: err}
}

func defaultMessage(k Kind) string {
	switch k {
	case DeadlineExceeded:
		return "deadline exceeded"
	case Canceled:
		return "request canceled"
	}
	return "internal error"
}

var httpStatus = [numKinds]int{
	Unknown:            http.StatusInternalServerError,
	InvalidArgument:    http.StatusBadRequest,
	NotFound:           http.StatusNotFound,
	AlreadyExists:      http.StatusConflict,
	FailedPrecondition: http.StatusBadRequest, // Google's mapping (google/rpc/code.proto); 412 is for conditional headers (RFC 9110)
	Aborted:            http.StatusConflict,
	OutOfRange:         http.StatusBadRequest,
	Unauthenticated:    http.StatusUnauthorized,
	PermissionDenied:   http.StatusForbidden,
	ResourceExhausted:  http.StatusTooManyRequests,
	Canceled:           499, // client closed request (nginx convention)
	DeadlineExceeded:   http.StatusGatewayTimeout,
	Unimplemented:      http.StatusNotImplemented,
	Unavailable:        http.StatusServiceUnavailable,
	Internal:           http.StatusInternalServerError,
	DataLoss:           http.StatusInternalServerError,
}

// HTTPStatus returns the HTTP status code for kind k, following the mapping of
// google/rpc/code.proto: failed_precondition and out_of_range are 400 like
// invalid_argument (412 Precondition Failed is reserved by RFC 9110 for failed
// conditional request headers such as If-Match), aborted is 409, canceled 499.
func (k Kind) HTTPStatus() int {
	if k < numKinds {
		return httpStatus[k]
	}
	return http.StatusInternalServerError
}

// KindFromHTTP returns the kind for an HTTP status code, for responses that carry no
// problem+json "kind" member.
func KindFromHTTP(status int) Kind {
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusUnsupportedMediaType,
		http.StatusMethodNotAllowed, http.StatusNotAcceptable:
		return InvalidArgument
	case http.StatusUnauthorized:
		return Unauthenticated
	case http.StatusForbidden:
		return PermissionDenied
	case http.StatusNotFound:
		return NotFound
	case http.StatusConflict:
		return AlreadyExists
	case http.StatusPreconditionFailed:
		return FailedPrecondition
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return ResourceExhausted
	case 499:
		return Canceled
	case http.StatusNotImplemented:
		return Unimplemented
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return Unavailable
	case http.StatusGatewayTimeout, http.StatusRequestTimeout:
		return DeadlineExceeded
	}
	if status >= 500 {
		return Internal
	}
	if status >= 400 {
		return InvalidArgument
	}
	return Unknown
}

// GRPCCode returns the gRPC status code for kind k.
func (k Kind) GRPCCode() codes.Code {
	switch k {
	case Unknown:
		return codes.Unknown
	case InvalidArgument:
		return codes.InvalidArgument
	case NotFound:
		return codes.NotFound
	case AlreadyExists:
		return codes.AlreadyExists
	case FailedPrecondition:
		return codes.FailedPrecondition
	case Aborted:
		return codes.Aborted
	case OutOfRange:
		return codes.OutOfRange
	case Unauthenticated:
		return codes.Unauthenticated
	case PermissionDenied:
		return codes.PermissionDenied
	case ResourceExhausted:
		return codes.ResourceExhausted
	case Canceled:
		return codes.Canceled
	case DeadlineExceeded:
		return codes.DeadlineExceeded
	case Unimplemented:
		return codes.Unimplemented
	case Unavailable:
		return codes.Unavailable
	case DataLoss:
		return codes.DataLoss
	}
	return codes.Internal
}

// KindFromGRPC returns the kind for a gRPC status code. codes.OK maps to Unknown.
func KindFromGRPC(c codes.Code) Kind {
	switch c {
	case codes.Canceled:
		return Canceled
	case codes.Unknown:
		return Unknown
	case codes.InvalidArgument:
		return InvalidArgument
	case codes.DeadlineExceeded:
		return DeadlineExceeded
	case codes.NotFound:
		return NotFound
	case codes.AlreadyExists:
		return AlreadyExists
	case codes.PermissionDenied:
		return PermissionDenied
	case codes.ResourceExhausted:
		return ResourceExhausted
	case codes.FailedPrecondition:
		return FailedPrecondition
	case codes.Aborted:
		return Aborted
	case codes.OutOfRange:
		return OutOfRange
	case codes.Unimplemented:
		return Unimplemented
	case codes.Internal:
		return Internal
	case codes.Unavailable:
		return Unavailable
	case codes.DataLoss:
		return DataLoss
	case codes.Unauthenticated:
		return Unauthenticated
	}
	return Unknown
}
