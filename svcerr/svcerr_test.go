package svcerr_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/svckit/svckit/svcerr"
)

// allKinds lists every kind. TestAllKindsListed fails when a kind is added without being
// listed here, so that every table below covers it.
var allKinds = []svcerr.Kind{
	svcerr.Unknown, svcerr.InvalidArgument, svcerr.NotFound, svcerr.AlreadyExists,
	svcerr.FailedPrecondition, svcerr.Aborted, svcerr.OutOfRange, svcerr.Unauthenticated,
	svcerr.PermissionDenied, svcerr.ResourceExhausted, svcerr.Canceled, svcerr.DeadlineExceeded,
	svcerr.Unimplemented, svcerr.Unavailable, svcerr.Internal, svcerr.DataLoss,
}

func TestAllKindsListed(t *testing.T) {
	for i, k := range allKinds {
		if k != svcerr.Kind(i) {
			t.Errorf("allKinds[%d] = %v, want Kind(%d)", i, k, i)
		}
		if strings.HasPrefix(k.String(), "kind(") {
			t.Errorf("Kind(%d) has no name", i)
		}
	}
	if next := svcerr.Kind(len(allKinds)); !strings.HasPrefix(next.String(), "kind(") {
		t.Errorf("Kind(%d) is named %q: a new kind is missing from allKinds", len(allKinds), next)
	}
}

func TestKindString(t *testing.T) {
	want := map[svcerr.Kind]string{
		svcerr.Unknown: "unknown", svcerr.InvalidArgument: "invalid_argument", svcerr.NotFound: "not_found",
		svcerr.AlreadyExists: "already_exists", svcerr.FailedPrecondition: "failed_precondition",
		svcerr.Aborted: "aborted", svcerr.OutOfRange: "out_of_range", svcerr.Unauthenticated: "unauthenticated",
		svcerr.PermissionDenied: "permission_denied", svcerr.ResourceExhausted: "resource_exhausted",
		svcerr.Canceled: "canceled", svcerr.DeadlineExceeded: "deadline_exceeded",
		svcerr.Unimplemented: "unimplemented", svcerr.Unavailable: "unavailable",
		svcerr.Internal: "internal", svcerr.DataLoss: "data_loss",
	}
	for _, k := range allKinds {
		t.Run(want[k], func(t *testing.T) {
			if got := k.String(); got != want[k] {
				t.Errorf("String() = %q, want %q", got, want[k])
			}
			got, ok := svcerr.ParseKind(k.String())
			if !ok || got != k {
				t.Errorf("ParseKind(%q) = %v, %v; want %v, true", k.String(), got, ok, k)
			}
		})
	}
	if got := svcerr.Kind(200).String(); got != "kind(200)" {
		t.Errorf("Kind(200).String() = %q, want kind(200)", got)
	}
	for _, s := range []string{"", "kind(200)", "NotFound", "not found", "NOT_FOUND", "internal "} {
		if k, ok := svcerr.ParseKind(s); ok || k != svcerr.Unknown {
			t.Errorf("ParseKind(%q) = %v, %v; want unknown, false", s, k, ok)
		}
	}
}

func TestHTTPStatus(t *testing.T) {
	// back is the kind that KindFromHTTP returns for the status. It differs from the kind
	// where several kinds share a status:
	//   400: InvalidArgument, OutOfRange,
	//        FailedPrecondition                     -> InvalidArgument
	//   409: AlreadyExists, Aborted                 -> AlreadyExists
	//   500: Unknown, Internal, DataLoss            -> Internal
	// Transports therefore send the kind by name as well (problem+json "kind").
	tests := []struct {
		kind   svcerr.Kind
		status int
		back   svcerr.Kind
	}{
		{svcerr.Unknown, 500, svcerr.Internal},
		{svcerr.InvalidArgument, 400, svcerr.InvalidArgument},
		{svcerr.NotFound, 404, svcerr.NotFound},
		{svcerr.AlreadyExists, 409, svcerr.AlreadyExists},
		{svcerr.FailedPrecondition, 400, svcerr.InvalidArgument},
		{svcerr.Aborted, 409, svcerr.AlreadyExists},
		{svcerr.OutOfRange, 400, svcerr.InvalidArgument},
		{svcerr.Unauthenticated, 401, svcerr.Unauthenticated},
		{svcerr.PermissionDenied, 403, svcerr.PermissionDenied},
		{svcerr.ResourceExhausted, 429, svcerr.ResourceExhausted},
		{svcerr.Canceled, 499, svcerr.Canceled},
		{svcerr.DeadlineExceeded, 504, svcerr.DeadlineExceeded},
		{svcerr.Unimplemented, 501, svcerr.Unimplemented},
		{svcerr.Unavailable, 503, svcerr.Unavailable},
		{svcerr.Internal, 500, svcerr.Internal},
		{svcerr.DataLoss, 500, svcerr.Internal},
	}
	if len(tests) != len(allKinds) {
		t.Fatalf("table has %d kinds, want %d", len(tests), len(allKinds))
	}
	for _, tt := range tests {
		t.Run(tt.kind.String(), func(t *testing.T) {
			if got := tt.kind.HTTPStatus(); got != tt.status {
				t.Errorf("HTTPStatus() = %d, want %d", got, tt.status)
			}
			if got := svcerr.KindFromHTTP(tt.status); got != tt.back {
				t.Errorf("KindFromHTTP(%d) = %v, want %v", tt.status, got, tt.back)
			}
		})
	}
	if got := svcerr.Kind(200).HTTPStatus(); got != 500 {
		t.Errorf("Kind(200).HTTPStatus() = %d, want 500", got)
	}
}

func TestKindFromHTTPOtherStatuses(t *testing.T) {
	tests := []struct {
		status int
		want   svcerr.Kind
	}{
		{http.StatusOK, svcerr.Unknown},
		{http.StatusNoContent, svcerr.Unknown},
		{http.StatusFound, svcerr.Unknown},
		{0, svcerr.Unknown},
		{http.StatusMethodNotAllowed, svcerr.InvalidArgument},
		{http.StatusPreconditionFailed, svcerr.FailedPrecondition}, // a foreign server's failed If-Match
		{http.StatusNotAcceptable, svcerr.InvalidArgument},
		{http.StatusRequestTimeout, svcerr.DeadlineExceeded},
		{http.StatusRequestEntityTooLarge, svcerr.ResourceExhausted},
		{http.StatusUnsupportedMediaType, svcerr.InvalidArgument},
		{http.StatusTeapot, svcerr.InvalidArgument},
		{http.StatusUnprocessableEntity, svcerr.InvalidArgument},
		{http.StatusBadGateway, svcerr.Unavailable},
		{http.StatusHTTPVersionNotSupported, svcerr.Internal},
		{599, svcerr.Internal},
	}
	for _, tt := range tests {
		if got := svcerr.KindFromHTTP(tt.status); got != tt.want {
			t.Errorf("KindFromHTTP(%d) = %v, want %v", tt.status, got, tt.want)
		}
	}
}

func TestGRPCCode(t *testing.T) {
	tests := []struct {
		kind svcerr.Kind
		code codes.Code
	}{
		{svcerr.Unknown, codes.Unknown},
		{svcerr.InvalidArgument, codes.InvalidArgument},
		{svcerr.NotFound, codes.NotFound},
		{svcerr.AlreadyExists, codes.AlreadyExists},
		{svcerr.FailedPrecondition, codes.FailedPrecondition},
		{svcerr.Aborted, codes.Aborted},
		{svcerr.OutOfRange, codes.OutOfRange},
		{svcerr.Unauthenticated, codes.Unauthenticated},
		{svcerr.PermissionDenied, codes.PermissionDenied},
		{svcerr.ResourceExhausted, codes.ResourceExhausted},
		{svcerr.Canceled, codes.Canceled},
		{svcerr.DeadlineExceeded, codes.DeadlineExceeded},
		{svcerr.Unimplemented, codes.Unimplemented},
		{svcerr.Unavailable, codes.Unavailable},
		{svcerr.Internal, codes.Internal},
		{svcerr.DataLoss, codes.DataLoss},
	}
	if len(tests) != len(allKinds) {
		t.Fatalf("table has %d kinds, want %d", len(tests), len(allKinds))
	}
	for _, tt := range tests {
		t.Run(tt.kind.String(), func(t *testing.T) {
			if got := tt.kind.GRPCCode(); got != tt.code {
				t.Errorf("GRPCCode() = %v, want %v", got, tt.code)
			}
			// Every kind survives the round trip through gRPC.
			if got := svcerr.KindFromGRPC(tt.code); got != tt.kind {
				t.Errorf("KindFromGRPC(%v) = %v, want %v", tt.code, got, tt.kind)
			}
		})
	}
	if got := svcerr.Kind(200).GRPCCode(); got != codes.Internal {
		t.Errorf("Kind(200).GRPCCode() = %v, want Internal", got)
	}
	for _, c := range []codes.Code{codes.OK, codes.Code(99)} {
		if got := svcerr.KindFromGRPC(c); got != svcerr.Unknown {
			t.Errorf("KindFromGRPC(%v) = %v, want unknown", c, got)
		}
	}
}

func TestRetryable(t *testing.T) {
	retryable := map[svcerr.Kind]bool{
		svcerr.Aborted: true, svcerr.ResourceExhausted: true, svcerr.DeadlineExceeded: true, svcerr.Unavailable: true,
	}
	for _, k := range append(allKinds, svcerr.Kind(200)) {
		if got := k.Retryable(); got != retryable[k] {
			t.Errorf("%v.Retryable() = %v, want %v", k, got, retryable[k])
		}
	}
}

func TestKindOf(t *testing.T) {
	var typedNil *svcerr.Error
	tests := []struct {
		name string
		err  error
		want svcerr.Kind
	}{
		{"nil", nil, svcerr.Unknown},
		{"plain", errors.New("boom"), svcerr.Internal},
		{"io.EOF", io.EOF, svcerr.Internal},
		{"os error", &os.PathError{Op: "open", Path: "/x", Err: os.ErrNotExist}, svcerr.Internal},
		{"svcerr", svcerr.New(svcerr.NotFound, "no such user"), svcerr.NotFound},
		{"explicit unknown", svcerr.New(svcerr.Unknown, "?"), svcerr.Unknown},
		{"wrapped svcerr", fmt.Errorf("loading: %w", svcerr.New(svcerr.NotFound, "x")), svcerr.NotFound},
		{"twice wrapped svcerr",
			fmt.Errorf("a: %w", fmt.Errorf("b: %w", svcerr.New(svcerr.PermissionDenied, "x"))), svcerr.PermissionDenied},
		{"joined", errors.Join(errors.New("a"), svcerr.New(svcerr.Unavailable, "b")), svcerr.Unavailable},
		{"first svcerr wins", svcerr.Wrap(svcerr.Unavailable, "x", svcerr.New(svcerr.NotFound, "y")), svcerr.Unavailable},
		{"svcerr wins over context", svcerr.Wrap(svcerr.Unavailable, "x", context.Canceled), svcerr.Unavailable},
		{"canceled", context.Canceled, svcerr.Canceled},
		{"deadline", context.DeadlineExceeded, svcerr.DeadlineExceeded},
		{"wrapped canceled", fmt.Errorf("query: %w", context.Canceled), svcerr.Canceled},
		{"wrapped deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), svcerr.DeadlineExceeded},
		{"os deadline", os.ErrDeadlineExceeded, svcerr.Internal},
		{"typed nil", typedNil, svcerr.Internal},
		{"wrapped typed nil", fmt.Errorf("x: %w", typedNil), svcerr.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := svcerr.KindOf(tt.err); got != tt.want {
				t.Errorf("KindOf(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestFrom(t *testing.T) {
	if got := svcerr.From(nil); got != nil {
		t.Errorf("From(nil) = %v, want nil", got)
	}
	inner := svcerr.New(svcerr.NotFound, "no such user").WithMeta("id", "7")
	for _, err := range []error{inner, fmt.Errorf("handler: %w", inner)} {
		if got := svcerr.From(err); got != inner {
			t.Errorf("From(%v) = %v, want the *Error in the chain", err, got)
		}
	}

	const secret = "password=hunter2 at db.internal:5432"
	var typedNil *svcerr.Error
	tests := []struct {
		name    string
		err     error
		kind    svcerr.Kind
		message string
	}{
		{"plain", errors.New(secret), svcerr.Internal, "internal error"},
		{"wrapped plain", fmt.Errorf("%s: %w", secret, io.ErrUnexpectedEOF), svcerr.Internal, "internal error"},
		{"canceled", fmt.Errorf("%s: %w", secret, context.Canceled), svcerr.Canceled, "request canceled"},
		{"deadline", fmt.Errorf("%s: %w", secret, context.DeadlineExceeded), svcerr.DeadlineExceeded, "deadline exceeded"},
		{"typed nil", typedNil, svcerr.Internal, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := svcerr.From(tt.err)
			if got == nil {
				t.Fatal("From returned nil for a non-nil error")
			}
			if got.Kind != tt.kind || got.Message != tt.message {
				t.Errorf("From = {%v %q}, want {%v %q}", got.Kind, got.Message, tt.kind, tt.message)
			}
			if strings.Contains(got.Message, "hunter2") || got.Fields != nil || got.Meta != nil {
				t.Errorf("From leaked details: %+v", got)
			}
			// The cause is kept for logs.
			if got.Cause != tt.err || !errors.Is(got, tt.err) {
				t.Errorf("Cause = %v, want %v", got.Cause, tt.err)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	var typedNil *svcerr.Error
	tests := []struct {
		name string
		err  *svcerr.Error
		want string
	}{
		{"kind only", &svcerr.Error{Kind: svcerr.NotFound}, "not_found"},
		{"message", svcerr.New(svcerr.NotFound, "no such user"), "not_found: no such user"},
		{"cause", svcerr.Wrap(svcerr.Unavailable, "store down", errors.New("dial tcp: refused")),
			"unavailable: store down: dial tcp: refused"},
		{"cause without message", &svcerr.Error{Kind: svcerr.Internal, Cause: errors.New("boom")}, "internal: boom"},
		{"cause in message", svcerr.Errorf(svcerr.NotFound, "user 7: %w", io.EOF), "not_found: user 7: EOF"},
		{"nil", typedNil, "<nil>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestErrorf(t *testing.T) {
	errA := errors.New("a failed")
	errB := errors.New("b failed")
	tests := []struct {
		name    string
		err     *svcerr.Error
		message string
		cause   error // nil: no cause; compared with ==
		is      []error
	}{
		{"no verb", svcerr.Errorf(svcerr.NotFound, "user %d", 7), "user 7", nil, nil},
		{"%v is no cause", svcerr.Errorf(svcerr.Internal, "x: %v", errA), "x: a failed", nil, nil},
		{"%w", svcerr.Errorf(svcerr.Unavailable, "x: %w", errA), "x: a failed", errA, []error{errA}},
		{"%w of a svcerr", svcerr.Errorf(svcerr.Internal, "x: %w", svcerr.New(svcerr.NotFound, "y")),
			"x: not_found: y", svcerr.New(svcerr.NotFound, "y"), []error{svcerr.New(svcerr.NotFound, "")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err.Message != tt.message {
				t.Errorf("Message = %q, want %q", tt.err.Message, tt.message)
			}
			if !reflect.DeepEqual(tt.err.Cause, tt.cause) {
				t.Errorf("Cause = %#v, want %#v", tt.err.Cause, tt.cause)
			}
			for _, target := range tt.is {
				if !errors.Is(tt.err, target) {
					t.Errorf("errors.Is(err, %v) = false", target)
				}
			}
		})
	}
	t.Run("several %w", func(t *testing.T) {
		err := svcerr.Errorf(svcerr.Internal, "both: %w, %w", errA, errB)
		if err.Message != "both: a failed, b failed" || err.Cause == nil {
			t.Fatalf("got %q with cause %v", err.Message, err.Cause)
		}
		if !errors.Is(err, errA) || !errors.Is(err, errB) {
			t.Errorf("errors.Is does not find both causes of %v", err)
		}
		if got, want := err.Error(), "internal: both: a failed, b failed"; got != want {
			t.Errorf("Error() = %q, want %q", got, want)
		}
	})
}

func TestWrap(t *testing.T) {
	cause := errors.New("x")
	err := svcerr.Wrap(svcerr.Unavailable, "later", cause)
	if err.Kind != svcerr.Unavailable || err.Message != "later" || err.Cause != cause || errors.Unwrap(err) != cause {
		t.Errorf("Wrap = %+v", err)
	}
	if got, want := svcerr.Wrap(svcerr.NotFound, "m", nil), svcerr.New(svcerr.NotFound, "m"); !reflect.DeepEqual(got, want) {
		t.Errorf("Wrap(k, m, nil) = %+v, want %+v", got, want)
	}
}

func TestInvalid(t *testing.T) {
	tests := []struct {
		name    string
		pairs   []string
		message string
		fields  []svcerr.FieldViolation
	}{
		{"none", nil, "invalid request", nil},
		{"one", []string{"name", "is required"}, "name: is required",
			[]svcerr.FieldViolation{{Field: "name", Description: "is required"}}},
		{"two", []string{"a", "must be positive", "b", "is required"}, "invalid request",
			[]svcerr.FieldViolation{{Field: "a", Description: "must be positive"}, {Field: "b", Description: "is required"}}},
		{"odd", []string{"a", "must be positive", "b"}, "a: must be positive",
			[]svcerr.FieldViolation{{Field: "a", Description: "must be positive"}}},
		{"lone field", []string{"a"}, "invalid request", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := svcerr.Invalid(tt.pairs...)
			if err.Kind != svcerr.InvalidArgument || err.Message != tt.message || !reflect.DeepEqual(err.Fields, tt.fields) {
				t.Errorf("Invalid(%q) = {%v %q %v}, want {invalid_argument %q %v}",
					tt.pairs, err.Kind, err.Message, err.Fields, tt.message, tt.fields)
			}
			if svcerr.KindOf(err) != svcerr.InvalidArgument {
				t.Errorf("kind of %v is not InvalidArgument", err)
			}
		})
	}
}

func TestIs(t *testing.T) {
	notFound := svcerr.New(svcerr.NotFound, "no such user")
	var typedNil *svcerr.Error
	tests := []struct {
		name   string
		err    error
		target error
		want   bool
	}{
		{"same kind, empty target message", notFound, svcerr.New(svcerr.NotFound, ""), true},
		{"same kind and message", notFound, svcerr.New(svcerr.NotFound, "no such user"), true},
		{"same kind, other message", notFound, svcerr.New(svcerr.NotFound, "no such order"), false},
		{"other kind", notFound, svcerr.New(svcerr.Internal, ""), false},
		{"message set only on err", svcerr.New(svcerr.NotFound, ""), svcerr.New(svcerr.NotFound, "x"), false},
		{"details ignored", svcerr.Invalid("a", "b").WithMeta("k", "v"), svcerr.New(svcerr.InvalidArgument, "a: b"), true},
		{"wrapped", fmt.Errorf("get: %w", notFound), svcerr.New(svcerr.NotFound, ""), true},
		{"in the cause", svcerr.Wrap(svcerr.Internal, "x", notFound), svcerr.New(svcerr.NotFound, ""), true},
		{"not an *Error", notFound, errors.New("no such user"), false},
		{"plain error", errors.New("x"), svcerr.New(svcerr.Internal, ""), false},
		{"cause", svcerr.Wrap(svcerr.Internal, "x", io.EOF), io.EOF, true},
		{"typed nil target", notFound, typedNil, false},
		{"typed nil err", typedNil, svcerr.New(svcerr.Unknown, ""), false},
		{"typed nil both", typedNil, typedNil, true}, // errors.Is compares with == first
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errors.Is(tt.err, tt.target); got != tt.want {
				t.Errorf("errors.Is(%v, %v) = %v, want %v", tt.err, tt.target, got, tt.want)
			}
		})
	}
}

func TestWithMeta(t *testing.T) {
	err := svcerr.New(svcerr.Unavailable, "busy")
	got := err.WithMeta("retry_after", "5").WithMeta("reason", "maintenance").WithMeta("retry_after", "10")
	if got != err {
		t.Error("WithMeta returned another error, want its receiver")
	}
	want := map[string]string{"retry_after": "10", "reason": "maintenance"}
	if !reflect.DeepEqual(err.Meta, want) {
		t.Errorf("Meta = %v, want %v", err.Meta, want)
	}
	if err.Error() != "unavailable: busy" {
		t.Errorf("Error() = %q: metadata must not show in the text", err.Error())
	}
}

func TestKindReason(t *testing.T) {
	// google/rpc/error_details.proto: an ErrorInfo reason matches [A-Z][A-Z0-9_]+[A-Z0-9].
	upperSnake := regexp.MustCompile(`^[A-Z][A-Z0-9_]+[A-Z0-9]$`)
	tests := []struct {
		kind   svcerr.Kind
		reason string
	}{
		{svcerr.Unknown, "UNKNOWN"}, {svcerr.InvalidArgument, "INVALID_ARGUMENT"}, {svcerr.NotFound, "NOT_FOUND"},
		{svcerr.AlreadyExists, "ALREADY_EXISTS"}, {svcerr.FailedPrecondition, "FAILED_PRECONDITION"},
		{svcerr.Aborted, "ABORTED"}, {svcerr.OutOfRange, "OUT_OF_RANGE"}, {svcerr.Unauthenticated, "UNAUTHENTICATED"},
		{svcerr.PermissionDenied, "PERMISSION_DENIED"}, {svcerr.ResourceExhausted, "RESOURCE_EXHAUSTED"},
		{svcerr.Canceled, "CANCELED"}, {svcerr.DeadlineExceeded, "DEADLINE_EXCEEDED"},
		{svcerr.Unimplemented, "UNIMPLEMENTED"}, {svcerr.Unavailable, "UNAVAILABLE"},
		{svcerr.Internal, "INTERNAL"}, {svcerr.DataLoss, "DATA_LOSS"},
	}
	if len(tests) != len(allKinds) {
		t.Fatalf("table has %d kinds, want %d", len(tests), len(allKinds))
	}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			if got := tt.kind.Reason(); got != tt.reason {
				t.Errorf("Reason() = %q, want %q", got, tt.reason)
			}
			if !upperSnake.MatchString(tt.reason) {
				t.Errorf("%q is not UPPER_SNAKE_CASE", tt.reason)
			}
			if k, ok := svcerr.ParseReason(tt.reason); !ok || k != tt.kind {
				t.Errorf("ParseReason(%q) = %v, %v; want %v, true", tt.reason, k, ok, tt.kind)
			}
		})
	}
	for _, s := range []string{"", "not_found", "NotFound", "KIND(200)"} {
		if k, ok := svcerr.ParseReason(s); ok || k != svcerr.Unknown {
			t.Errorf("ParseReason(%q) = %v, %v; want unknown, false", s, k, ok)
		}
	}
	if got := svcerr.Kind(200).Reason(); got != "UNKNOWN" {
		t.Errorf("Kind(200).Reason() = %q, want UNKNOWN", got)
	}
}
