package jsx_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/svckit/svckit/internal/jsx"
	"github.com/svckit/svckit/natsserver"
)

// TestUsableAtOnce creates replicated buckets and streams on a fresh three-node cluster
// and writes to each right away: the first write must not meet a stream without a leader.
func TestUsableAtOnce(t *testing.T) {
	ctx := t.Context()
	c, err := natsserver.StartCluster(ctx, 3, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Shutdown(context.Background()) })
	nc, err := nats.Connect(c.URLs())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		kv, err := jsx.CreateKeyValue(ctx, js, jetstream.KeyValueConfig{Bucket: fmt.Sprint("b", i), Replicas: 3})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Create(ctx, "k", []byte("v")); err != nil {
			t.Fatalf("bucket %d: first write: %v", i, err)
		}
		name := fmt.Sprint("S", i)
		if _, err := jsx.CreateStream(ctx, js, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Replicas: 3}); err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, name+".x", nil, jetstream.WithRetryAttempts(0)); err != nil {
			t.Fatalf("stream %d: first publish: %v", i, err)
		}
	}
}

// TestFinalError: an error that waiting cannot cure (several replicas on a server without
// a cluster) is returned at once, not retried.
func TestFinalError(t *testing.T) {
	ctx := t.Context()
	s, err := natsserver.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	nc, err := s.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	_, err = jsx.CreateStream(ctx, js, jetstream.StreamConfig{Name: "R3", Replicas: 3})
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || jsx.Transient(err) {
		t.Fatalf("want a final JetStream API error, got %v", err)
	}
}

func TestTransient(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nats.ErrNoResponders, true},
		{fmt.Errorf("wrapped: %w", nats.ErrTimeout), true},
		{&jetstream.APIError{Code: 503, ErrorCode: 10008}, true},
		{&jetstream.APIError{Code: 400, ErrorCode: 10005}, false},
		{jetstream.ErrStreamNotFound, false},
		{errors.New("other"), false},
	}
	for _, tc := range tests {
		if got := jsx.Transient(tc.err); got != tc.want {
			t.Errorf("Transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
