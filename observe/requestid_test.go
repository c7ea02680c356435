package observe

import (
	"context"
	"strings"
	"testing"
)

func TestNewRequestID(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		id := NewRequestID()
		if len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" {
			t.Fatalf("NewRequestID() = %q, want 16 lowercase hex digits", id)
		}
		if !ValidRequestID(id) {
			t.Fatalf("ValidRequestID(%q) = false for a generated id", id)
		}
		if seen[id] {
			t.Fatalf("NewRequestID() repeated %q", id)
		}
		seen[id] = true
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
		if got := ValidRequestID(tt.id); got != tt.want {
			t.Errorf("ValidRequestID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

func TestRequestIDContext(t *testing.T) {
	ctx := context.Background()
	if got := RequestIDFrom(ctx); got != "" {
		t.Errorf("RequestIDFrom(empty) = %q, want \"\"", got)
	}
	ctx = WithRequestID(ctx, "abc")
	if got := RequestIDFrom(ctx); got != "abc" {
		t.Errorf("RequestIDFrom = %q, want abc", got)
	}
	ctx = WithRequestID(ctx, "def")
	if got := RequestIDFrom(ctx); got != "def" {
		t.Errorf("RequestIDFrom after override = %q, want def", got)
	}
}
