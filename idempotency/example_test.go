package idempotency_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/idempotency"
	"github.com/svckit/svckit/store"
)

func ExampleMiddleware() {
	ctx := context.Background()
	charges := 0
	charge := func(ctx context.Context, req ChargeRequest) (ChargeResponse, error) {
		charges++
		return ChargeResponse{ChargeID: fmt.Sprint("ch_", charges), Amount: req.Amount}, nil
	}
	info := endpoint.Info{Service: "payments", Method: "Charge"}
	e := endpoint.Wrap(info, charge, idempotency.Middleware(idempotency.NewMemory()))

	// Over HTTP the key comes from the Idempotency-Key header; here from the context.
	ctx = idempotency.WithKey(ctx, "order-42")
	a, _ := e(ctx, ChargeRequest{Account: "acc", Amount: 10})
	b, _ := e(ctx, ChargeRequest{Account: "acc", Amount: 10}) // a retry: replayed
	_, err := e(ctx, ChargeRequest{Account: "acc", Amount: 99})
	fmt.Println(a.ChargeID, b.ChargeID, charges)
	fmt.Println(err)
	// Output:
	// ch_1 ch_1 1
	// invalid_argument: idempotency key reused with a different request
}

func ExampleOnce() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "idem")
	defer os.RemoveAll(dir)
	st, _ := store.Open(ctx, "sqlite:"+filepath.Join(dir, "svc.db"))
	defer st.Close()
	st.DB().Exec(`CREATE TABLE emails (id INTEGER PRIMARY KEY, text TEXT)`)
	keys, _ := idempotency.NewSQL(ctx, st)

	handle := func(msgID, text string) {
		ran, err := idempotency.Once(ctx, keys, "welcome-emails", msgID, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO emails (text) VALUES (?)`, text)
			return err
		})
		fmt.Println(msgID, ran, err)
	}
	handle("msg-1", "hello")
	handle("msg-1", "hello") // redelivered
	// Output:
	// msg-1 true <nil>
	// msg-1 false <nil>
}
