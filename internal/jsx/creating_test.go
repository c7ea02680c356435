package jsx

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestCreatingIsTransient checks that a stream another replica is still creating is
// retried although errCreating wraps a "not found" API error, which alone is final. (CI:
// the production suite's orders failed to start on "stream SHOP_DLQ: stream is being
// created by another client: 10059" because the API error was looked at first.)
func TestCreatingIsTransient(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("%w: %w", errCreating, jetstream.ErrStreamNotFound),
		fmt.Errorf("stream SHOP_DLQ: %w", fmt.Errorf("%w: %w", errCreating, jetstream.ErrStreamNotFound)),
		fmt.Errorf("%w: %w", errCreating, jetstream.ErrBucketNotFound),
	} {
		if !Transient(err) {
			t.Errorf("Transient(%v) = false, want true", err)
		}
	}
	if Transient(jetstream.ErrStreamNotFound) {
		t.Error("a plain stream-not-found is transient; it should be final")
	}
}
