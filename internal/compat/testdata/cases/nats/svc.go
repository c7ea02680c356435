// Package shop is testdata/base with one change: nats.
package shop

import (
	"context"
	"iter"
	"time"
)

// Service sells things.
type Service interface {
	// Get returns an item.
	//svckit:http GET /items/{id}
	//svckit:nats shop.items.get
	Get(ctx context.Context, id string) (Item, error)
	// Put stores an item.
	//svckit:http PUT /items/{id}
	Put(ctx context.Context, item Item) (*Receipt, error)
	// Count counts the items whose IDs start with prefix, up to limit.
	Count(ctx context.Context, prefix string, limit *int) (int, error)
	// Watch streams the items whose IDs start with prefix.
	Watch(ctx context.Context, prefix string) (iter.Seq2[Item, error], error)
}

// Item is a thing for sale.
type Item struct {
	ID    string   `json:"id"`
	Name  string   `json:"name"`
	Price int64    `json:"price"`
	Tags  []string `json:"tags,omitempty"`
	Note  *string  `json:"note,omitempty"`
}

// Receipt acknowledges a Put.
type Receipt struct {
	ID string    `json:"id"`
	At time.Time `json:"at"`
}
