package jsx_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

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

// TestCreateSendsNoNeedlessUpdate: creating a stream or bucket that exists as configured
// changes nothing (no stream update advisory); a changed configuration is applied.
func TestCreateSendsNoNeedlessUpdate(t *testing.T) {
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
	updates, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.STREAM.UPDATED.>")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	cfg := jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, MaxAge: time.Hour}
	kvCfg := jetstream.KeyValueConfig{Bucket: "b", History: 1}
	for range 3 {
		if _, err := jsx.CreateStream(ctx, js, cfg); err != nil {
			t.Fatal(err)
		}
		if _, err := jsx.CreateKeyValue(ctx, js, kvCfg); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if m, err := updates.NextMsg(200 * time.Millisecond); err == nil {
		t.Fatalf("an update for an unchanged stream: %s", m.Subject)
	}
	cfg.MaxAge = 2 * time.Hour
	st, err := jsx.CreateStream(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.MaxAge; got != 2*time.Hour {
		t.Errorf("MaxAge %v after the change", got)
	}
	kvCfg.History = 5
	kv, err := jsx.CreateKeyValue(ctx, js, kvCfg)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := kv.Status(ctx); err != nil || st.History() != 5 {
		t.Errorf("bucket history after the change: %v %v", st, err)
	}
	for _, want := range []string{"S", "KV_b"} {
		m, err := updates.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("no update advisory for %s: %v", want, err)
		}
		if !strings.HasSuffix(m.Subject, "."+want) {
			t.Errorf("advisory %s, want one for %s", m.Subject, want)
		}
	}
}
