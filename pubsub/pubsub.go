// Package pubsub publishes and subscribes to events on NATS JetStream, the message bus of
// svckit services.
//
// [Publisher] and [Subscriber] are small interfaces in the style of Watermill; [Bus] is the
// JetStream implementation and [Connect] builds one on the NATS servers at a URL: a real
// server or cluster, or, in tests and under `svckit dev`, a server embedded in the process
// by package natsserver. The same code runs against both; the embedded server is started
// explicitly, never as a fallback for a missing URL.
//
// Every message is a CloudEvents 1.0 event in binary content mode: the attributes travel
// as NATS headers (ce-id, ce-source, ce-type, ce-specversion, ce-time, content-type) and
// the data is the message body. The event id is also the Nats-Msg-Id header, so JetStream
// drops a message published twice within the stream's duplicate window.
//
// Delivery is at least once. A subscription is a durable pull consumer with explicit
// acks: a handler that returns nil acks the message, one that fails naks it with a delay
// from the subscription's backoff, and after the last attempt the message is published to
// the dead-letter subject dlq.<stream>.<group> (with the original subject and the error in
// headers) and terminated. All subscriptions of one group share the consumer, so each
// message goes to one member.
//
// # Ordering per key
//
// Every subscription keeps the order of each key's messages by default. Its handlers
// ([Concurrency], default 8) run messages with different keys, and messages without a key,
// in parallel, but the messages of one key one at a time, in the order the subscription
// received them (JetStream's order, the publish order). A failed message of a key is not
// handed back to JetStream: the subscription runs it again itself after the backoff
// delay, and the key's later messages wait, unacknowledged, until it succeeds or is
// dead-lettered; messages waiting long are marked in progress so that JetStream does not
// redeliver them meanwhile. Other keys go on. Acks therefore follow each key's order. A
// handler that is slow for one key delays only that key; the cost against no order is a
// map lookup per message (docs/performance.md).
//
// This order holds within one subscription. When several members share a group, JetStream
// hands each message to any member, so two of one key's messages may run at once on two
// members, and a message given back by a stopping member may run after its successor
// elsewhere. Where that matters, use [Ordered]: a message with a Key is published on the
// subject <subject>._k.<p>, where p is the key's FNV-1a hash modulo the bus's partition
// count (Config.Partitions, the same for all publishers and subscribers), and an Ordered
// subscription consumes each partition through its own consumer with at most one
// unacknowledged message, so the messages of one key are handled one at a time, in
// publish order, across redeliveries and across the members of a group, while different
// partitions proceed in parallel (at one message per round trip each). Messages without
// a key keep full concurrency in both. [Unordered] gives the order up: keyed messages run
// like unkeyed ones and failures are redelivered by JetStream.
//
// Every subscription on <subject> receives keyed and unkeyed messages alike, and
// Message.Subject always reads <subject>.
//
// Handlers are wrapped by [Middleware] (func(Handler) Handler): [Logging], [NewMetrics],
// [Tracing], [Recover] and [Timeout]. The publisher injects the W3C trace context into the
// headers, and the subscriber extracts it before the middleware runs, so a consumer span
// is a child of the producer's span.
package pubsub

import (
	"context"
	"errors"
	"time"
)

// Message is one event. On publish, ID, Type, Source and Time are filled in when empty.
type Message struct {
	// ID identifies the event (ce-id); it is the JetStream de-duplication id.
	ID string
	// Subject is the NATS subject the event is published on.
	Subject string
	// Key, if set, orders the event after earlier events with the same key, for every
	// subscription that is not Unordered (see the package documentation).
	Key string
	// Type is the CloudEvents type (ce-type); default the subject.
	Type string
	// Source is the CloudEvents source (ce-source); default the bus's source.
	Source string
	// Time is when the event happened (ce-time); default the time of publishing.
	Time time.Time
	// ContentType is the media type of Data (content-type); default application/json.
	ContentType string
	// Data is the event payload.
	Data []byte
	// Headers holds further headers, such as traceparent or CloudEvents extensions.
	Headers map[string]string

	// Attempt is the delivery attempt, from 1; set on received messages.
	Attempt int
	// Sequence is the message's sequence number in its stream; set on received messages.
	Sequence uint64
	// Group is the consumer group that received the message; set on received messages.
	Group string
}

// Header returns the value of header k, or "".
func (m *Message) Header(k string) string { return m.Headers[k] }

// SetHeader sets header k to v.
func (m *Message) SetHeader(k, v string) {
	if m.Headers == nil {
		m.Headers = make(map[string]string, 4)
	}
	m.Headers[k] = v
}

// Handler handles one received message. Returning nil acknowledges it; an error asks for
// redelivery, unless it is [Permanent].
type Handler func(ctx context.Context, msg *Message) error

// Middleware decorates a Handler.
type Middleware func(next Handler) Handler

// Chain composes middleware, the first outermost. Nil entries are skipped.
func Chain(mws ...Middleware) Middleware {
	return func(next Handler) Handler {
		for i := len(mws) - 1; i >= 0; i-- {
			if mws[i] != nil {
				next = mws[i](next)
			}
		}
		return next
	}
}

// Publisher publishes messages.
type Publisher interface {
	// Publish publishes msgs and returns once the broker has stored every one of them,
	// or with an error if any could not be stored before ctx ended. A message whose ID
	// was published before, within the duplicate window, is stored once.
	Publish(ctx context.Context, msgs ...*Message) error
}

// Subscriber subscribes handlers to subjects.
type Subscriber interface {
	// Subscribe calls h for each message published on subject (which may have
	// wildcards). Subscriptions with the same non-empty group share the messages, each
	// going to one of them, and the group remembers its position across restarts; an
	// empty group receives every message published from now on, for this subscription
	// only.
	Subscribe(ctx context.Context, subject, group string, h Handler, opts ...SubscribeOption) (Subscription, error)
}

// Subscription is a running subscription.
type Subscription interface {
	// Stop stops fetching messages, waits for the handlers running now to return (or
	// ctx to end), and acknowledges what they finished. A group's position is kept.
	Stop(ctx context.Context) error
}

// permanentError marks an error that no redelivery can cure.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent wraps err so that the subscriber dead-letters the message at once instead of
// retrying it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}
