package pubsub_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svckit/svckit/pubsub"
)

// TestKeyDispatch checks how a subscription runs keyed and unkeyed messages: what each
// key's handler calls were, in order, as "n@attempt".
func TestKeyDispatch(t *testing.T) {
	keyed := func(key string, ns ...int) []*pubsub.Message {
		var out []*pubsub.Message
		for _, n := range ns {
			out = append(out, &pubsub.Message{Subject: "events.kd", Key: key, Data: []byte(strconv.Itoa(n))})
		}
		return out
	}
	tests := []struct {
		name string
		opts []pubsub.SubscribeOption
		msgs []*pubsub.Message
		// fail decides a handler call's error.
		fail func(n, attempt int) error
		// overlap makes message 0's first call wait until message 1 has started, and fail
		// the test if it does not within the wait: messages 0 and 1 must run at once.
		overlap bool
		// maxAttempts is the subscription's MaxAttempts, if not the default 5.
		maxAttempts int
		// done is how many calls succeed or are dead-lettered in all.
		done int
		// settle is how long to wait after done for calls that must not come.
		settle time.Duration
		want   map[string]string
	}{
		{
			name:        "a dead-lettered message lets its key go on",
			opts:        []pubsub.SubscribeOption{pubsub.MaxAttempts(2), pubsub.Backoff(10 * time.Millisecond), pubsub.Concurrency(4)},
			maxAttempts: 2,
			msgs:        append(keyed("a", 0, 1, 2, 3), keyed("b", 0, 1, 2)...),
			fail: func(n, _ int) error {
				if n == 1 {
					return errors.New("fails")
				}
				return nil
			},
			done: 7,
			want: map[string]string{"a": "0@1 1@1 1@2 2@1 3@1", "b": "0@1 1@1 1@2 2@1"},
		},
		{
			name: "a permanent failure is dead-lettered at once and the key goes on",
			opts: []pubsub.SubscribeOption{pubsub.Concurrency(4)},
			msgs: keyed("a", 0, 1, 2),
			fail: func(n, _ int) error {
				if n == 0 {
					return pubsub.Permanent(errors.New("cannot parse"))
				}
				return nil
			},
			done: 3,
			want: map[string]string{"a": "0@1 1@1 2@1"},
		},
		{
			name: "messages waiting behind a retry are not redelivered meanwhile",
			opts: []pubsub.SubscribeOption{pubsub.AckWait(3 * time.Second), pubsub.Backoff(5 * time.Second), pubsub.Concurrency(4)},
			msgs: keyed("a", 0, 1, 2),
			fail: func(n, attempt int) error {
				if n == 0 && attempt == 1 {
					return errors.New("not yet")
				}
				return nil
			},
			done:   3,
			settle: 4 * time.Second,
			want:   map[string]string{"a": "0@1 0@2 1@1 2@1"},
		},
		{
			name:    "Unordered runs one key's messages at once",
			opts:    []pubsub.SubscribeOption{pubsub.Unordered(), pubsub.Concurrency(2)},
			msgs:    keyed("a", 0, 1),
			overlap: true,
			done:    2,
		},
		{
			name:    "Ordered runs unkeyed messages at once",
			opts:    []pubsub.SubscribeOption{pubsub.Ordered(), pubsub.Concurrency(2)},
			msgs:    keyed("", 0, 1),
			overlap: true,
			done:    2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bus := newBus(t)
			var (
				mu    sync.Mutex
				calls = map[string][]string{}
				done  int
				errs  []error
			)
			finished := make(chan struct{})
			started1 := make(chan struct{})
			h := func(ctx context.Context, m *pubsub.Message) error {
				n, _ := strconv.Atoi(string(m.Data))
				mu.Lock()
				calls[m.Key] = append(calls[m.Key], fmt.Sprintf("%d@%d", n, m.Attempt))
				mu.Unlock()
				if tc.overlap && n == 1 && m.Attempt == 1 {
					close(started1)
				}
				if tc.overlap && n == 0 && m.Attempt == 1 {
					select {
					case <-started1:
					case <-time.After(30 * time.Second):
						mu.Lock()
						errs = append(errs, errors.New("message 1 did not start while message 0 ran"))
						mu.Unlock()
					}
				}
				var err error
				if tc.fail != nil {
					err = tc.fail(n, m.Attempt)
				}
				mu.Lock()
				defer mu.Unlock()
				if err == nil || pubsub.IsPermanent(err) || m.Attempt >= cmp.Or(tc.maxAttempts, 5) {
					if done++; done == tc.done {
						close(finished)
					}
				}
				return err
			}
			sub, err := bus.Subscribe(context.Background(), "events.kd", "kd", h, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sub.Stop(context.Background()) })
			if err := bus.Publish(context.Background(), tc.msgs...); err != nil {
				t.Fatal(err)
			}
			select {
			case <-finished:
			case <-time.After(60 * time.Second):
				t.Fatal("messages not handled")
			}
			time.Sleep(tc.settle)
			mu.Lock()
			defer mu.Unlock()
			for _, err := range errs {
				t.Error(err)
			}
			for key, want := range tc.want {
				if got := strings.Join(calls[key], " "); got != want {
					t.Errorf("key %q calls %q, want %q", key, got, want)
				}
			}
		})
	}
}
