package cache_test

import (
	"context"
	"fmt"
	"time"

	"github.com/svckit/svckit/cache"
	"github.com/svckit/svckit/svcerr"
)

func Example() {
	ctx := context.Background()
	users := cache.New(cache.NewMemory[int, string](10_000),
		cache.WithTTL(5*time.Minute), cache.WithNegativeTTL(10*time.Second))

	loads := 0
	load := func(ctx context.Context, id int) (string, error) {
		loads++ // a database query
		if id == 404 {
			return "", svcerr.New(svcerr.NotFound, "no such user")
		}
		return fmt.Sprint("user-", id), nil
	}
	a, _ := users.Get(ctx, 1, load)
	b, _ := users.Get(ctx, 1, load) // cached
	_, err1 := users.Get(ctx, 404, load)
	_, err2 := users.Get(ctx, 404, load) // the miss is cached too
	fmt.Println(a, b, loads)
	fmt.Println(err1, "|", err2)
	// Output:
	// user-1 user-1 2
	// not_found: no such user | not_found: not found
}
