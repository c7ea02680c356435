package saga_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/svckit/svckit/saga"
	"github.com/svckit/svckit/store"
)

type Order struct {
	ID      string `json:"id"`
	Amount  int    `json:"amount"`
	Payment string `json:"payment,omitempty"`
}

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "saga")
	defer os.RemoveAll(dir)
	st, _ := store.Open(ctx, "sqlite:"+filepath.Join(dir, "orders.db"))
	defer st.Close()
	st.DB().Exec(`CREATE TABLE stock (order_id TEXT PRIMARY KEY)`)

	placeOrder := saga.Define("place-order",
		saga.Step[Order]{
			Name: "reserve-stock",
			// Runs in the checkpoint transaction: the reservation commits with the step.
			ActionTx: func(ctx context.Context, tx *sql.Tx, o *Order) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO stock (order_id) VALUES (?)`, o.ID)
				return err
			},
			CompensateTx: func(ctx context.Context, tx *sql.Tx, o *Order) error {
				_, err := tx.ExecContext(ctx, `DELETE FROM stock WHERE order_id = ?`, o.ID)
				return err
			},
		},
		saga.Step[Order]{
			Name: "charge",
			Action: func(ctx context.Context, o *Order) error {
				// A remote call; saga.Key(ctx) makes it idempotent on the payment side.
				o.Payment = "pay-" + saga.Key(ctx)
				return nil
			},
			Compensate: func(ctx context.Context, o *Order) error { return nil }, // refund
			// Charging again with the same key charges once and sets the same Payment,
			// so the charge is recorded with the next checkpoint: one transaction fewer.
			NoCheckpoint: true,
		},
		saga.Step[Order]{
			Name: "ship",
			Action: func(ctx context.Context, o *Order) error {
				if o.Amount > 100 {
					return saga.Permanent(errors.New("too heavy to ship"))
				}
				return nil
			},
		},
	)

	orch, _ := saga.New(ctx, st)
	defer orch.Close(ctx)
	orch.Register(placeOrder)
	orch.Resume(ctx) // sagas left unfinished by a previous run

	for _, o := range []Order{{ID: "o1", Amount: 10}, {ID: "o2", Amount: 500}} {
		id, err := saga.Start(ctx, orch, placeOrder, o, saga.WithID(o.ID))
		if err != nil {
			panic(err)
		}
		s, _ := orch.Wait(ctx, id)
		fmt.Println(id, s.State)
		if s.Error != "" {
			fmt.Println(" ", s.Error)
		}
	}
	var n int
	st.DB().QueryRow(`SELECT COUNT(*) FROM stock`).Scan(&n)
	fmt.Println("reservations:", n)
	// Output:
	// o1 completed
	// o2 compensated
	//   step ship: too heavy to ship
	// reservations: 1
}
