// Package jsx holds the JetStream client steps every svckit package that keeps state in
// NATS needs: creating a stream or bucket so that it can be used at once, on one server
// or on a cluster that is still forming, and telling transient errors from final ones.
//
// On a cluster, a stream that has just been created has no leader for a few hundred
// milliseconds; a publish to it meanwhile fails with "no responders". Right after the
// cluster forms, or while a node restarts, placement fails with "no suitable peers"
// (10005). [CreateStream] and [CreateKeyValue] retry through both and return once the
// stream has a leader.
package jsx

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PlacementWait is how long Retry keeps retrying "no suitable peers for placement":
// long enough for a forming cluster or a restarting node, short enough to report a stream
// that asks for more replicas than the cluster has.
const PlacementWait = 20 * time.Second

// Retry calls fn until it succeeds, fails with an error that is not transient, or ctx
// ends. Each call gets at most 5 seconds; pauses grow from 50 ms to 1 s.
func Retry(ctx context.Context, fn func(ctx context.Context) error) error {
	pause := 50 * time.Millisecond
	start := time.Now()
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := fn(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if !Transient(err) && !(NoPeers(err) && time.Since(start) < PlacementWait) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(pause):
		}
		pause = min(pause*2, time.Second)
	}
}

// errCreating marks a stream that is "in use" to create and "not found" to update: on a
// cluster, another replica's create of it is still being applied. Retrying settles it.
var errCreating = errors.New("stream is being created by another client")

// NoPeers reports JetStream's "no suitable peers for placement" (10005).
func NoPeers(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == 10005
}

// Transient reports whether err may go away: a timeout, no responders, a cluster without
// a leader for the moment, a lost connection.
func Transient(err error) bool {
	// First: errCreating wraps the API error it stands for (10059 stream not found), which
	// the checks below would call final.
	if errors.Is(err, errCreating) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		if final(apiErr.ErrorCode) {
			return false
		}
		// 503 / 10008: JetStream temporarily unavailable; 500: mostly a stream or
		// consumer without a leader for the moment; 10010: cluster not ready; 10158: a
		// publish with the same message id is in process (retrying gets its ack).
		return apiErr.Code == 503 || apiErr.Code == 500 || apiErr.ErrorCode == 10008 || apiErr.ErrorCode == 10010 || apiErr.ErrorCode == 10158
	}
	return errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, jetstream.ErrAsyncPublishTimeout) ||
		errors.Is(err, jetstream.ErrTooManyStalledMsgs) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled)
}

// final reports the JetStream error codes with status 500 or 503 that waiting cannot
// cure: the request asks for something the server or account cannot give.
func final(code jetstream.ErrorCode) bool {
	switch code {
	case 10006, // not in clustered mode
		10023, // insufficient resources
		10028, // insufficient memory resources
		10036, // not supported in clustered mode
		10047, // insufficient storage resources
		10074, // replicas > 1 not supported in non-clustered mode
		10096, // stream not valid
		10117: // subject details would exceed maximum allowed
		return true
	}
	return false
}

// CreateStream creates the stream, or updates its configuration if it differs, retrying
// transient errors, and waits until it has a leader.
//
// Creating a stream that exists with the same configuration succeeds without a change,
// so the many replicas of a service that start together send no updates: an update
// rewrites the stream's store configuration while other replicas add consumers, which
// nats-server v2.15 does not guard (the race detector reports it).
func CreateStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	var s jetstream.Stream
	err := Retry(ctx, func(ctx context.Context) error {
		var err error
		s, err = js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = js.UpdateStream(ctx, cfg)
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				err = fmt.Errorf("%w: %w", errCreating, err)
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := WaitLeader(ctx, js, cfg.Name); err != nil {
		return nil, err
	}
	if len(cfg.Subjects) > 0 && !cfg.NoAck {
		if err := waitReachable(ctx, js, cfg.Name, cfg.Subjects[0]); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// waitReachable waits until a publish to the stream's subject reaches its leader from
// this connection: right after an election the leader's interest in the subject may not
// have spread through the cluster yet, and a publish then meets "no responders". The
// probe expects a last sequence the stream can never have, so the leader refuses it
// without storing anything; any answer from the stream proves it reachable.
func waitReachable(ctx context.Context, js jetstream.JetStream, name, subject string) error {
	subject = strings.NewReplacer(">", "svckit-probe", "*", "svckit-probe").Replace(subject)
	return Retry(ctx, func(ctx context.Context) error {
		_, err := js.Publish(ctx, subject, nil, jetstream.WithExpectLastSequence(math.MaxUint64), jetstream.WithRetryAttempts(0))
		var apiErr *jetstream.APIError
		switch {
		case err == nil, errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence:
			return nil
		case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
			return fmt.Errorf("%w: stream %s not reachable on %s yet: %w", errCreating, name, subject, err)
		}
		return fmt.Errorf("stream %s: probe: %w", name, err)
	})
}

// CreateKeyValue creates the bucket, or updates its configuration if it differs,
// retrying transient errors, and waits until its stream has a leader. Like CreateStream,
// it sends no update when the bucket exists as configured.
func CreateKeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := Retry(ctx, func(ctx context.Context) error {
		var err error
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.UpdateKeyValue(ctx, cfg)
			if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
				err = fmt.Errorf("%w: %w", errCreating, err)
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := WaitLeader(ctx, js, "KV_"+cfg.Bucket); err != nil {
		return nil, err
	}
	return kv, nil
}

// WaitLeader waits until the stream named name has a leader (on a single server it has
// one from the start) or ctx ends.
func WaitLeader(ctx context.Context, js jetstream.JetStream, name string) error {
	pause := 20 * time.Millisecond
	for {
		var info *jetstream.StreamInfo
		err := Retry(ctx, func(ctx context.Context) error {
			s, err := js.Stream(ctx, name)
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				// Just created or confirmed, but not yet applied on the node asked.
				return fmt.Errorf("%w: %w", errCreating, err)
			}
			if err != nil {
				return err
			}
			info = s.CachedInfo()
			return nil
		})
		if err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
		if info.Cluster == nil || info.Cluster.Leader != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stream %s: no leader: %w", name, ctx.Err())
		case <-time.After(pause):
		}
		pause = min(pause*2, 500*time.Millisecond)
	}
}
