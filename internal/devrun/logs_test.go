package devrun

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestContainsFold compares containsFold with strings.Contains on lower-cased ASCII, on
// fixed cases and on random strings over a small alphabet (so that matches and near
// matches are frequent).
func TestContainsFold(t *testing.T) {
	cases := []struct {
		s, sub string
		want   bool
	}{
		{"", "", true}, {"abc", "", true}, {"", "a", false},
		{`{"msg":"Request"}`, `"msg":"request"`, true},
		{"REQ-12345", "req-12345", true}, {"req-1234", "req-12345", false},
		{"xxRrEq", "req", true}, {"rrrrq", "rq", true}, {"rrrr", "rq", false},
		{"abc", "abcd", false}, {"1-2-3", "2-3", true}, {"ab", "B", true},
	}
	for _, c := range cases {
		if got := containsFold(c.s, c.sub); got != c.want {
			t.Errorf("containsFold(%q, %q) = %v", c.s, c.sub, got)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	word := func(n int) string {
		const alphabet = "aAbB-1"
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
	for range 100_000 {
		s, sub := word(r.IntN(24)), word(1+r.IntN(4))
		if got, want := containsFold(s, sub), strings.Contains(strings.ToLower(s), strings.ToLower(sub)); got != want {
			t.Fatalf("containsFold(%q, %q) = %v, want %v", s, sub, got, want)
		}
	}
}
