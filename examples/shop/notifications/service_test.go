package notifications_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/svckit/svckit/examples/shop/notifications"
	"github.com/svckit/svckit/examples/shop/orders"
	"github.com/svckit/svckit/pubsub"
	"github.com/svckit/svckit/store"
	_ "github.com/svckit/svckit/store/sqlite"
)

func newStore(t *testing.T) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "notifications.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx, notifications.Migrations, store.WithDir("migrations")); err != nil {
		t.Fatal(err)
	}
	return st
}

func event(t *testing.T, id, subject, order, customer string) *pubsub.Message {
	t.Helper()
	data, err := json.Marshal(orders.Event{OrderID: order, Customer: customer, TotalCents: 2490})
	if err != nil {
		t.Fatal(err)
	}
	return &pubsub.Message{ID: id, Subject: subject, Type: "OrderPlaced", Data: data}
}

// TestHandleRecordsEachEventOnce handles events concurrently, each of them twice (a
// redelivery), in batches of several sizes: every event is recorded exactly once.
func TestHandleRecordsEachEventOnce(t *testing.T) {
	tests := []struct {
		name   string
		linger time.Duration
		max    int
	}{
		{"a transaction per event", 0, 32},
		{"batches", 5 * time.Millisecond, 32},
		{"batches of one", time.Second, 1},
		{"full batches", time.Hour, 4}, // a batch commits as it fills; 40 events make 10
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := notifications.New(newStore(t), notifications.WithBatch(tc.linger, tc.max))
			var wg sync.WaitGroup
			for i := range 40 {
				for range 2 {
					wg.Go(func() {
						msg := event(t, fmt.Sprintf("m%02d", i), orders.SubjectPlaced, fmt.Sprintf("o%d", i%10), "ada")
						if err := s.Handle(ctx, msg); err != nil {
							t.Errorf("Handle(%s): %v", msg.ID, err)
						}
					})
				}
			}
			wg.Wait()
			for o := range 10 {
				got, err := s.ListNotifications(ctx, fmt.Sprintf("o%d", o))
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != 4 {
					t.Fatalf("order o%d: %d notifications, want 4: %+v", o, len(got), got)
				}
				want := fmt.Sprintf("We received your order o%d.", o)
				if got[0].Text != want || got[0].Customer != "ada" || got[0].Kind != "OrderPlaced" {
					t.Fatalf("notification %+v, want text %q", got[0], want)
				}
			}
		})
	}
}

// TestBatchWithAFailingEvent records a batch in which one event cannot be recorded (a
// trigger refuses it): the others are recorded, and only that event's handler fails.
func TestBatchWithAFailingEvent(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	if _, err := st.DB().ExecContext(ctx, `CREATE TRIGGER refuse BEFORE INSERT ON notifications
		WHEN NEW.customer = 'mallory' BEGIN SELECT RAISE(ABORT, 'refused'); END`); err != nil {
		t.Fatal(err)
	}
	s := notifications.New(st, notifications.WithBatch(50*time.Millisecond, 32))
	customers := []string{"ada", "bob", "mallory", "cy", "dee"}
	errs := make([]error, len(customers))
	var wg sync.WaitGroup
	for i, c := range customers {
		wg.Go(func() {
			errs[i] = s.Handle(ctx, event(t, "m-"+c, orders.SubjectConfirmed, "o-"+c, c))
		})
	}
	wg.Wait()
	for i, c := range customers {
		got, err := s.ListNotifications(ctx, "o-"+c)
		if err != nil {
			t.Fatal(err)
		}
		if c == "mallory" {
			if errs[i] == nil || len(got) != 0 {
				t.Errorf("refused event: err %v, %d notifications; want an error and none", errs[i], len(got))
			}
			continue
		}
		if errs[i] != nil || len(got) != 1 || got[0].Text != "Your order o-"+c+" is confirmed: 24.90 charged." {
			t.Errorf("%s: err %v, notifications %+v; want one, confirmed", c, errs[i], got)
		}
	}
}

func TestHandleRefusesMalformedEvents(t *testing.T) {
	s := notifications.New(newStore(t))
	tests := []struct {
		name string
		data string
	}{
		{"not JSON", "{"},
		{"no order", `{"customer":"ada"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Handle(context.Background(), &pubsub.Message{ID: "m", Subject: orders.SubjectPlaced, Data: []byte(tc.data)})
			if !pubsub.IsPermanent(err) {
				t.Fatalf("Handle = %v, want a permanent error", err)
			}
		})
	}
}
