package meta_test

import (
	"context"
	"strings"
	"testing"

	"github.com/svckit/svckit/transport/meta"
)

func TestNewRequestID(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		id := meta.NewRequestID()
		if len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" {
			t.Fatalf("NewRequestID() = %q, want 16 lowercase hex digits", id)
		}
		if !meta.ValidRequestID(id) {
			t.Fatalf("ValidRequestID(%q) = false for a generated id", id)
		}
		if seen[id] {
			t.Fatalf("NewRequestID() repeated %q", id)
		}
		seen[id] = true
	}
}

func TestNewRequestIDAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = meta.NewRequestID() }); n > 1 {
		t.Errorf("NewRequestID allocates %v times, want at most 1 (the string)", n)
	}
}

func TestValidRequestID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"", false},
		{"a", true},
		{"0123456789abcdef", true},
		{"550e8400-e29b-41d4-a716-446655440000", true},
		{"Req_1.2:3-x", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"has space", false},
		{"new\nline", false},
		{"quote\"", false},
		{"slash/", false},
		{"ünï", false},
		{"<script>", false},
	}
	for _, tt := range tests {
		if got := meta.ValidRequestID(tt.id); got != tt.want {
			t.Errorf("ValidRequestID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

func TestRequestIDContext(t *testing.T) {
	tests := []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"none", context.Background(), ""},
		{"set", meta.WithRequestID(context.Background(), "abc"), "abc"},
		{"overridden", meta.WithRequestID(meta.WithRequestID(context.Background(), "abc"), "def"), "def"},
		{"a transport's context", &idContext{Context: context.Background(), id: "ghi"}, "ghi"},
		{"a transport's context, overridden", meta.WithRequestID(&idContext{Context: context.Background(), id: "ghi"}, "jkl"), "jkl"},
		{"another type", context.WithValue(context.Background(), meta.RequestIDKey{}, 42), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := meta.RequestID(tt.ctx); got != tt.want {
				t.Errorf("RequestID = %q, want %q", got, tt.want)
			}
		})
	}
	ctx := &idContext{Context: context.Background(), id: "ghi"}
	if n := testing.AllocsPerRun(100, func() { _ = meta.RequestID(ctx) }); n != 0 {
		t.Errorf("RequestID from a transport's context: %v allocations, want 0", n)
	}
}

// idContext answers meta.RequestIDKey with a pointer to its id, as the transports'
// contexts of served calls do.
type idContext struct {
	context.Context
	id string
}

func (c *idContext) Value(key any) any {
	if _, ok := key.(meta.RequestIDKey); ok {
		return &c.id
	}
	return c.Context.Value(key)
}

func BenchmarkNewRequestID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = meta.NewRequestID()
	}
}
