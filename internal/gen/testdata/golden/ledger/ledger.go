// Package ledger exercises the NATS transport: default subjects and one set by
// //svckit:nats, a method left off NATS, idempotent methods, a stream, and a package-level
// name that the generated code's import of natsrpc must not shadow.
package ledger

import (
	"context"
	"iter"
)

// natsrpc is declared here so that the generated code imports transport/natsrpc under
// another name.
const natsrpc = "ledger"

// Entry is a change to an account.
type Entry struct {
	Account string `json:"account"`
	Amount  int64  `json:"amount"`
	Note    string `json:"note,omitempty"`
}

// Account is an account and its balance.
type Account struct {
	ID      string `json:"id"`
	Balance int64  `json:"balance"`
}

// Ledger keeps balances.
//
//svckit:gen
type Ledger interface {
	// Balance returns an account's balance: a GET route, so idempotent over NATS too.
	//
	//svckit:http GET /ledger/balance/{account}
	Balance(ctx context.Context, account string) (balance int64, err error)
	// Credit adds an entry to its account, on a subject of its own.
	//
	//svckit:nats ledger.credit
	//svckit:idempotent
	Credit(ctx context.Context, e Entry) (*Account, error)
	// Audit is served over HTTP and gRPC but not over NATS.
	//
	//svckit:nats -
	Audit(ctx context.Context, account string) error
	// Watch streams an account's entries: gRPC only.
	Watch(ctx context.Context, account string) (iter.Seq2[Entry, error], error)
	// Reset has neither parameters nor results.
	Reset(ctx context.Context) error
}
