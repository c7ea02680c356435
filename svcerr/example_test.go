package svcerr_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/svckit/svckit/svcerr"
)

func ExampleNew() {
	err := svcerr.New(svcerr.NotFound, "no such user").WithMeta("user_id", "42")
	fmt.Println(err)
	fmt.Println(err.Kind.HTTPStatus(), err.Kind.GRPCCode(), err.Meta["user_id"])

	// Callers match on the kind with errors.Is and an *Error without a message.
	wrapped := fmt.Errorf("loading profile: %w", err)
	fmt.Println(errors.Is(wrapped, svcerr.New(svcerr.NotFound, "")))
	// Output:
	// not_found: no such user
	// 404 NotFound 42
	// true
}

func ExampleKindOf() {
	for _, err := range []error{
		nil,
		svcerr.New(svcerr.PermissionDenied, "not your order"),
		fmt.Errorf("handler: %w", svcerr.New(svcerr.Unavailable, "store is down")),
		fmt.Errorf("query: %w", context.DeadlineExceeded),
		sql.ErrConnDone, // anything else is a bug as far as callers are concerned
	} {
		fmt.Println(svcerr.KindOf(err))
	}

	// From gives every error a caller-safe form; the text of unclassified errors stays in
	// the cause, for logs.
	e := svcerr.From(errors.New("dial tcp 10.0.0.7:5432: connection refused"))
	fmt.Printf("%v: %q\n", e.Kind, e.Message)
	// Output:
	// unknown
	// permission_denied
	// unavailable
	// deadline_exceeded
	// internal
	// internal: "internal error"
}

func ExampleInvalid() {
	err := svcerr.Invalid("email", "is required", "age", "must be at least 18")
	fmt.Println(err.Kind, err.Kind.HTTPStatus(), err.Message)
	for _, f := range err.Fields {
		fmt.Printf("%s: %s\n", f.Field, f.Description)
	}

	// With a single violation, the message names it.
	fmt.Println(svcerr.Invalid("name", "is required"))
	// Output:
	// invalid_argument 400 invalid request
	// email: is required
	// age: must be at least 18
	// invalid_argument: name: is required
}
