package payments_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/svckit/svckit/examples/shop/payments"
	"github.com/svckit/svckit/store"
	"github.com/svckit/svckit/svcerr"
)

func newPayments(t *testing.T) *payments.Service {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "payments.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx, payments.Migrations, store.WithDir("migrations")); err != nil {
		t.Fatal(err)
	}
	return payments.New(st, payments.DeclineRule{AboveCents: 100_000, CustomerPrefix: "decline"})
}

func TestChargeOncePerOrder(t *testing.T) {
	ctx := context.Background()
	p := newPayments(t)
	var wg sync.WaitGroup
	ids := make([]string, 20)
	for i := range ids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			pay, err := p.Charge(ctx, "o1", "ada", 1234)
			if err != nil {
				t.Error(err)
			}
			ids[i] = pay.ID
		}(i)
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] || id == "" {
			t.Fatalf("concurrent charges produced different payments: %v", ids)
		}
	}
	if _, err := p.Charge(ctx, "o1", "ada", 999); svcerr.KindOf(err) != svcerr.AlreadyExists {
		t.Fatalf("same order, other amount: %v", err)
	}
}

func TestDeclineAndRefund(t *testing.T) {
	ctx := context.Background()
	p := newPayments(t)
	tests := []struct {
		order, customer string
		amount          int64
		status          string
		kind            svcerr.Kind
	}{
		{"a", "ada", 500, "charged", svcerr.Unknown},
		{"b", "decline-bob", 500, "declined", svcerr.FailedPrecondition},
		{"c", "cy", 100_001, "declined", svcerr.FailedPrecondition},
		{"d", "", 500, "", svcerr.InvalidArgument},
		{"e", "ed", 0, "", svcerr.InvalidArgument},
	}
	for _, tc := range tests {
		pay, err := p.Charge(ctx, tc.order, tc.customer, tc.amount)
		if svcerr.KindOf(err) != tc.kind || pay.Status != tc.status {
			t.Fatalf("%s: %+v %v; want %s %s", tc.order, pay, err, tc.status, tc.kind)
		}
	}
	// A retried declined charge is declined again, not charged.
	if pay, err := p.Charge(ctx, "b", "decline-bob", 500); err == nil || pay.Status != "declined" {
		t.Fatalf("retried decline: %+v %v", pay, err)
	}
	for i := 0; i < 2; i++ {
		pay, err := p.Refund(ctx, "a")
		if err != nil || pay.Status != "refunded" {
			t.Fatalf("refund %d: %+v %v", i, pay, err)
		}
	}
	// A refund before any charge voids the order: the late charge (one the saga gave up
	// on while it was in flight) is refused, and refunding again changes nothing.
	for i := 0; i < 2; i++ {
		if pay, err := p.Refund(ctx, "late"); err != nil || pay.Status != "voided" {
			t.Fatalf("refund %d of nothing: %+v %v", i, pay, err)
		}
	}
	if pay, err := p.Charge(ctx, "late", "alice", 700); svcerr.KindOf(err) != svcerr.FailedPrecondition || pay.Status == "charged" {
		t.Fatalf("charge after the refund: %+v %v; want failed_precondition and no charge", pay, err)
	}
	if pay, err := p.GetPayment(ctx, "late"); err != nil || pay.Status != "voided" || pay.AmountCents != 0 {
		t.Fatalf("voided order's payment: %+v %v", pay, err)
	}
	if pay, _ := p.GetPayment(ctx, "b"); pay.Status != "declined" {
		t.Fatalf("declined charge refunded: %+v", pay)
	}
	if _, err := p.GetPayment(ctx, "zzz"); svcerr.KindOf(err) != svcerr.NotFound {
		t.Fatalf("get unknown: %v", err)
	}
}
