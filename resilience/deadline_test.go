package resilience

import (
	"context"
	"errors"
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
