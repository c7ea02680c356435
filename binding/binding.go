package binding

import (
	"context"
	"maps"
	"time"

	"github.com/svckit/svckit/svcerr"
)

// Event is something that happened outside the service, delivered by an input binding.
type Event struct {
	// Binding is the name of the input binding that delivered the event.
	Binding string
	// ID identifies the event: the NATS message id, the webhook's delivery id header
	// (or a generated id), or the binding name and tick for cron. Redeliveries of one
	// event keep the id, so it is the key for de-duplication.
	ID string
	// Time is when the event happened: the cron tick, the CloudEvents time of a
	// JetStream message, the signed timestamp of a webhook, or else the time of receipt.
	Time time.Time
	// Subject is where the event came from: the NATS subject, the webhook's request
	// path, or the cron spec.
	Subject string
	// Attempt is the delivery attempt, from 1; above 1 only for JetStream redeliveries.
	Attempt int
	// Metadata holds further attributes with lower-case keys: selected request headers
	// of a webhook, the headers of a NATS message, the tick of a cron event.
	Metadata map[string]string
	// Data is the payload: the request body, the message data, the cron data.
	Data []byte
}

// Handler handles an event. Returning nil acknowledges it; an error asks for another
// attempt when the input can redeliver, unless the error is not [Retryable].
type Handler func(ctx context.Context, e Event) error

// Input is an input binding. Run delivers events to h until ctx ends, then returns nil
// once the handlers it started have returned; run it as a worker of svckit.App.Go. An Input runs
// once at a time.
type Input interface {
	// Name returns the binding's name.
	Name() string
	// Run delivers events to h until ctx ends.
	Run(ctx context.Context, h Handler) error
}

// Request is what an output binding sends.
type Request struct {
	// Data is the payload: an HTTP body, a NATS message, the JSON object a SQL
	// statement's parameters are read from.
	Data []byte
	// Metadata fills templates ({key} in URLs, headers and subjects) and SQL parameters
	// (meta:key). The key "id" is the de-duplication id of NATS publishes and the
	// Idempotency-Key of HTTP calls.
	Metadata map[string]string
}

// Response is what an output binding got back.
type Response struct {
	// Data is the payload: an HTTP response body, a NATS reply, SQL rows as a JSON
	// array of objects.
	Data []byte
	// Metadata describes the result with lower-case keys: "status" and response
	// headers of an HTTP call, "rows_affected" of a SQL statement, …
	Metadata map[string]string
}

// Output is an output binding.
type Output interface {
	// Name returns the binding's name.
	Name() string
	// Invoke sends r and returns the response. Errors are *svcerr.Error values whose
	// kind says whether a retry may succeed.
	Invoke(ctx context.Context, r Request) (Response, error)
}

// RequestFrom returns the request a pipeline sends for e: its data, and its metadata
// plus "id", "binding", "subject" and "time" (RFC 3339) from the event.
func RequestFrom(e Event) Request {
	md := make(map[string]string, len(e.Metadata)+4)
	maps.Copy(md, e.Metadata)
	md[MetaID] = e.ID
	md[MetaBinding] = e.Binding
	md[MetaSubject] = e.Subject
	if !e.Time.IsZero() {
		md[MetaTime] = e.Time.UTC().Format(time.RFC3339Nano)
	}
	return Request{Data: e.Data, Metadata: md}
}

// Metadata keys that RequestFrom sets and outputs read.
const (
	MetaID      = "id"
	MetaBinding = "binding"
	MetaSubject = "subject"
	MetaTime    = "time"
)

// Retryable reports whether another attempt after err may succeed. Errors of the kinds
// a retry cannot fix — invalid argument, not found, already exists, failed
// precondition, out of range, unauthenticated, permission denied, unimplemented — are
// not; every other error, including one that is not a *svcerr.Error, is.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	switch svcerr.KindOf(err) {
	case svcerr.InvalidArgument, svcerr.NotFound, svcerr.AlreadyExists, svcerr.FailedPrecondition,
		svcerr.OutOfRange, svcerr.Unauthenticated, svcerr.PermissionDenied, svcerr.Unimplemented:
		return false
	}
	return true
}
