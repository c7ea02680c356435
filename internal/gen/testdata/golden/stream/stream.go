// Package stream exercises server streaming: a method returns iter.Seq2[T, error].
package stream

import (
	"context"
	"iter"
	"time"
)

// Event is one event.
type Event struct {
	Seq  int64     `json:"seq"`
	At   time.Time `json:"at"`
	Text string    `json:"text"`
}

// WatchRequest asks for events.
type WatchRequest struct {
	Topic string `json:"topic"`
	From  int64  `json:"from"`
}

// Service streams.
type Service interface {
	// Count yields 0 to n-1: a stream of a basic type.
	Count(ctx context.Context, n int) (iter.Seq2[int64, error], error)
	// Watch yields events: a request struct and a stream of structs.
	Watch(ctx context.Context, req WatchRequest) (iter.Seq2[Event, error], error)
	// Tail yields pointers to events.
	Tail(ctx context.Context, topic string) (iter.Seq2[*Event, error], error)
	// Last returns the last event: a unary method beside the streams.
	Last(ctx context.Context, topic string) (Event, error)
}
