package lock_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/svckit/svckit/lock"
	"github.com/svckit/svckit/store"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "lock")
	defer os.RemoveAll(dir)
	st, _ := store.Open(ctx, "sqlite:"+filepath.Join(dir, "svc.db"))
	defer st.Close()
	backend, _ := lock.NewSQL(ctx, st)

	replica1 := lock.New(backend, lock.WithHolder("replica-1"), lock.WithTTL(10*time.Second))
	replica2 := lock.New(backend, lock.WithHolder("replica-2"))
	defer replica1.Close(ctx) // releases on shutdown
	defer replica2.Close(ctx)

	var fence lock.Fence // kept by the resource the lock protects
	lease, _ := replica1.Acquire(ctx, "nightly-report")
	fmt.Println("replica-1 token", lease.Token(), fence.Check("report", lease.Token()))

	_, ok, _ := replica2.TryAcquire(ctx, "nightly-report")
	fmt.Println("replica-2 acquired:", ok)

	lease.Release(ctx)
	lease2, _ := replica2.Acquire(ctx, "nightly-report")
	fmt.Println("replica-2 token", lease2.Token(), fence.Check("report", lease2.Token()))
	fmt.Println("replica-1 writes late:", fence.Check("report", lease.Token()))
	// Output:
	// replica-1 token 1 <nil>
	// replica-2 acquired: false
	// replica-2 token 2 <nil>
	// replica-1 writes late: failed_precondition: lock: stale fencing token: 1 < 2 for report
}
