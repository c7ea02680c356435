package resilience

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

// waitDone waits for ctx to end, at most 5 s.
func waitDone(t *testing.T, ctx context.Context) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the context did not end within 5s")
	}
}

func listLen(w *callDeadlines) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for c := w.head; c != nil; c = c.next {
		n++
	}
	return n
}

func TestCallDeadlines(t *testing.T) {
	t.Run("expires at the deadline, derived contexts too", func(t *testing.T) {
		w := &callDeadlines{d: 30 * time.Millisecond}
		start := time.Now()
		c := w.start(context.Background())
		defer c.release()
		if dl, ok := c.Deadline(); !ok || dl.Before(start.Add(w.d)) || dl.After(time.Now().Add(w.d)) {
			t.Fatalf("Deadline = %v, %v; want %v from the start", dl, ok, w.d)
		}
		if c.Err() != nil {
			t.Fatal("expired early")
		}
		child, cancel := context.WithCancel(c) // as grpc-go derives one per call
		defer cancel()
		waitDone(t, child)
		if waited := time.Since(start); waited < w.d {
			t.Errorf("ended after %v, before the deadline", waited)
		}
		if !errors.Is(c.Err(), context.DeadlineExceeded) || !errors.Is(child.Err(), context.DeadlineExceeded) {
			t.Fatalf("Err = %v, child %v; want DeadlineExceeded for both", c.Err(), child.Err())
		}
		select {
		case <-c.Done():
		default:
			t.Fatal("Done not closed")
		}
		if n := listLen(w); n != 0 {
			t.Errorf("%d calls left in the list", n)
		}
	})
	t.Run("release cancels and leaves the list", func(t *testing.T) {
		w := &callDeadlines{d: time.Hour}
		c := w.start(context.Background())
		child, cancel := context.WithCancel(c)
		defer cancel()
		var fired sync.WaitGroup
		fired.Add(1)
		context.AfterFunc(c, fired.Done)
		if n := listLen(w); n != 1 {
			t.Fatalf("%d calls in the list, want 1", n)
		}
		c.release()
		waitDone(t, child)
		fired.Wait()
		if c.Err() != context.Canceled || child.Err() != context.Canceled {
			t.Fatalf("Err = %v, child %v; want Canceled", c.Err(), child.Err())
		}
		if n := listLen(w); n != 0 {
			t.Errorf("%d calls left in the list", n)
		}
		c.release() // a second release is harmless
	})
	t.Run("parent canceled", func(t *testing.T) {
		for _, viaDone := range []bool{true, false} {
			w := &callDeadlines{d: time.Hour}
			parent, cancelParent := context.WithCancelCause(context.Background())
			c := w.start(parent)
			if viaDone {
				_ = c.Done()
			}
			cause := errors.New("the caller left")
			cancelParent(cause)
			if viaDone {
				waitDone(t, c)
			}
			if c.Err() != context.Canceled {
				t.Errorf("viaDone=%v: Err = %v, want the parent's Canceled", viaDone, c.Err())
			}
			waitDone(t, c)
			if got := context.Cause(c); got != cause {
				t.Errorf("viaDone=%v: Cause = %v, want the parent's cause", viaDone, got)
			}
			c.release()
			if n := listLen(w); n != 0 {
				t.Errorf("%d calls left in the list", n)
			}
		}
	})
	t.Run("parent done before the first Done", func(t *testing.T) {
		w := &callDeadlines{d: time.Hour}
		parent, cancelParent := context.WithCancel(context.Background())
		cancelParent()
		c := w.start(parent)
		defer c.release()
		waitDone(t, c)
		if c.Err() != context.Canceled {
			t.Errorf("Err = %v", c.Err())
		}
	})
	t.Run("AfterFunc stop", func(t *testing.T) {
		w := &callDeadlines{d: time.Hour}
		c := w.start(context.Background())
		called := make(chan struct{}, 3)
		f := func() { called <- struct{}{} }
		stop1 := c.AfterFunc(f) // the inline entry
		stop2 := c.AfterFunc(f) // an allocated one
		stop3 := c.AfterFunc(f)
		if !stop1() || !stop2() {
			t.Fatal("stop before the end = false, want true")
		}
		if stop1() {
			t.Fatal("a second stop = true, want false")
		}
		stop4 := c.AfterFunc(f) // the inline entry is not reused once stopped
		c.release()
		if len(called) != 2 {
			t.Fatalf("%d functions called, want 2 (the third and fourth)", len(called))
		}
		if stop3() || stop4() {
			t.Fatal("stop after the end = true, want false")
		}
		late := c.AfterFunc(f) // after the end: called at once, in a goroutine
		select {
		case <-called:
		case <-time.After(5 * time.Second):
			t.Fatal("a function registered after the end was not called")
		}
		if late() {
			t.Fatal("stop of a function registered after the end = true")
		}
	})
	t.Run("expires in order after earlier calls returned", func(t *testing.T) {
		w := &callDeadlines{d: 40 * time.Millisecond}
		first := w.start(context.Background())
		first.release() // the timer stays armed for first's deadline
		time.Sleep(20 * time.Millisecond)
		second := w.start(context.Background())
		defer second.release()
		third := w.start(context.Background())
		third.release()
		dl, _ := second.Deadline()
		waitDone(t, second)
		if now := time.Now(); now.Before(dl) {
			t.Fatalf("second ended %v before its deadline", dl.Sub(now))
		}
		if !errors.Is(second.Err(), context.DeadlineExceeded) {
			t.Fatalf("Err = %v", second.Err())
		}
	})
	t.Run("no goroutine per derived context", func(t *testing.T) {
		w := &callDeadlines{d: time.Hour}
		parent, cancelParent := context.WithCancel(context.Background())
		defer cancelParent()
		before := runtime.NumGoroutine()
		var calls []*callCtx
		var cancels []context.CancelFunc
		for range 100 {
			c := w.start(parent)
			_, cancel := context.WithCancel(c)
			calls, cancels = append(calls, c), append(cancels, cancel)
		}
		if n := runtime.NumGoroutine() - before; n > 10 {
			t.Errorf("%d goroutines more for 100 derived contexts", n)
		}
		for i, c := range calls {
			cancels[i]()
			c.release()
		}
		if n := listLen(w); n != 0 {
			t.Errorf("%d calls left in the list", n)
		}
	})
	t.Run("concurrent calls", func(t *testing.T) {
		w := &callDeadlines{d: 5 * time.Millisecond}
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				for j := range 200 {
					c := w.start(context.Background())
					child, cancel := context.WithCancel(c)
					if (i+j)%4 == 0 {
						<-child.Done() // some wait for their deadline
						if !errors.Is(child.Err(), context.DeadlineExceeded) {
							t.Errorf("child Err = %v", child.Err())
						}
					}
					cancel()
					c.release()
				}
			})
		}
		wg.Wait()
		if n := listLen(w); n != 0 {
			t.Errorf("%d calls left in the list", n)
		}
	})
}
