package resilience

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

func TestLazyDeadlineContext(t *testing.T) {
	t.Run("deadline without Done", func(t *testing.T) {
		ctx, release := withLazyDeadline(context.Background(), time.Now().Add(20*time.Millisecond))
		defer release()
		if dl, ok := ctx.Deadline(); !ok || dl.IsZero() {
			t.Fatal("no deadline")
		}
		if ctx.Err() != nil {
			t.Fatal("expired early")
		}
		time.Sleep(30 * time.Millisecond)
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("Err = %v, want DeadlineExceeded", ctx.Err())
		}
		select {
		case <-ctx.Done():
		default:
			t.Fatal("Done not closed after the deadline")
		}
	})
	t.Run("Done fires at the deadline", func(t *testing.T) {
		ctx, release := withLazyDeadline(context.Background(), time.Now().Add(10*time.Millisecond))
		defer release()
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("Done never closed")
		}
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("Err = %v", ctx.Err())
		}
	})
	t.Run("parent cancel propagates", func(t *testing.T) {
		parent, cancel := context.WithCancel(context.Background())
		ctx, release := withLazyDeadline(parent, time.Now().Add(time.Hour))
		defer release()
		done := ctx.Done()
		if ctx.Err() != nil {
			t.Fatal("Err before Done closed")
		}
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("parent cancel did not propagate")
		}
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Fatalf("Err = %v, want Canceled", ctx.Err())
		}
	})
	t.Run("parent canceled before Done", func(t *testing.T) {
		parent, cancel := context.WithCancel(context.Background())
		ctx, release := withLazyDeadline(parent, time.Now().Add(time.Hour))
		defer release()
		cancel()
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Fatalf("Err = %v", ctx.Err())
		}
		<-ctx.Done()
	})
	t.Run("release wakes waiters and children", func(t *testing.T) {
		ctx, release := withLazyDeadline(context.Background(), time.Now().Add(time.Hour))
		child, cancelChild := context.WithCancel(ctx)
		defer cancelChild()
		release()
		select {
		case <-child.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("child not canceled by release")
		}
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Fatalf("Err = %v", ctx.Err())
		}
	})
	t.Run("derived contexts need no goroutine", func(t *testing.T) {
		// grpc-go derives a cancelable context from the caller's for every call; the
		// context package starts a goroutine per derived context of a parent it cannot
		// see through, unless the parent's values lead to a context it knows.
		outer, releaseOuter := withLazyDeadline(context.Background(), time.Now().Add(time.Hour))
		defer releaseOuter()
		ctx, release := withLazyDeadline(context.WithValue(outer, struct{}{}, 1), time.Now().Add(time.Minute))
		before := runtime.NumGoroutine()
		var children []context.Context
		for range 100 {
			child, cancel := context.WithCancel(context.WithValue(ctx, struct{}{}, 2))
			defer cancel()
			children = append(children, child)
		}
		if n := runtime.NumGoroutine() - before; n > 10 {
			t.Errorf("%d goroutines started for 100 derived contexts", n)
		}
		release()
		for _, child := range children {
			<-child.Done()
		}
		if !errors.Is(ctx.Err(), context.Canceled) || outer.Err() != nil {
			t.Errorf("Err = %v, outer %v", ctx.Err(), outer.Err())
		}
		if dl, _ := children[0].Deadline(); !dl.Equal(ctx.deadline) {
			t.Errorf("child's deadline %v, want %v", dl, ctx.deadline)
		}
	})
	t.Run("values come from the parent", func(t *testing.T) {
		type key struct{}
		ctx, release := withLazyDeadline(context.WithValue(context.Background(), key{}, "v"), time.Now().Add(time.Hour))
		defer release()
		if ctx.Value(key{}) != "v" {
			t.Fatal("value lost")
		}
	})
}

func BenchmarkDeadline(b *testing.B) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.Run("context.WithTimeout", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, c := context.WithTimeout(parent, time.Second)
			_ = ctx.Err()
			c()
		}
	})
	b.Run("lazy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, c := withLazyDeadline(parent, time.Now().Add(time.Second))
			_ = ctx.Err()
			c()
		}
	})
}
