package observe_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svckit/svckit/observe"
)

type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuffer) snapshot() (string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String(), l.writes
}

func TestBufferedWriter(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		lines  int
		flush  bool
		writes int // exact number of underlying writes before any timer fires
	}{
		{"batched until flush", 1 << 10, 10, true, 1},
		{"fills and spills", 64, 10, true, 2}, // 10-byte lines: 6 fill the 64-byte buffer, the 7th spills them, Flush writes 4
		{"nothing written without flush", 1 << 10, 5, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var dst lockedBuffer
			w := observe.NewBufferedWriter(&dst, tc.size, time.Hour)
			for i := 0; i < tc.lines; i++ {
				if _, err := w.Write([]byte("line 0123\n")); err != nil {
					t.Fatal(err)
				}
			}
			if tc.flush {
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			got, writes := dst.snapshot()
			if writes != tc.writes {
				t.Fatalf("underlying writes = %d, want %d", writes, tc.writes)
			}
			if tc.flush && strings.Count(got, "\n") != tc.lines {
				t.Fatalf("got %d lines, want %d", strings.Count(got, "\n"), tc.lines)
			}
		})
	}
}

func TestBufferedWriterFlushesAfterInterval(t *testing.T) {
	var dst lockedBuffer
	w := observe.NewBufferedWriter(&dst, 1<<10, 10*time.Millisecond)
	_, _ = w.Write([]byte("a\n"))
	for i := 0; i < 500; i++ {
		if got, _ := dst.snapshot(); got == "a\n" {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("line never flushed by the interval timer")
}

func TestBufferedWriterClose(t *testing.T) {
	var dst lockedBuffer
	w := observe.NewBufferedWriter(&dst, 1<<10, time.Hour)
	_, _ = w.Write([]byte("a\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte("b\n"))
	if got, _ := dst.snapshot(); got != "a\nb\n" {
		t.Fatalf("got %q", got)
	}
}

func TestFlushOnLevel(t *testing.T) {
	var dst lockedBuffer
	w := observe.NewBufferedWriter(&dst, 1<<10, time.Hour)
	h := observe.FlushOnLevel(slog.NewJSONHandler(w, nil), w, slog.LevelError)
	log := slog.New(h).With("k", "v")
	log.InfoContext(context.Background(), "buffered")
	if got, _ := dst.snapshot(); got != "" {
		t.Fatalf("info line written at once: %q", got)
	}
	log.ErrorContext(context.Background(), "urgent")
	got, _ := dst.snapshot()
	if !strings.Contains(got, "buffered") || !strings.Contains(got, "urgent") || !strings.Contains(got, `"k":"v"`) {
		t.Fatalf("error did not flush both lines: %q", got)
	}
}
