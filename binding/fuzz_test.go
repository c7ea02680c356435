package binding

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/svckit/svckit/config"
	"github.com/svckit/svckit/store"
)

// FuzzParseNamed checks that every :name outside quotes and comments becomes one
// placeholder, that nothing else changes, and that parsing never panics.
func FuzzParseNamed(f *testing.F) {
	for _, s := range []string{
		"INSERT INTO t (a, b) VALUES (:a, :b)",
		"SELECT ':x', \"y:z\", a::text FROM t WHERE b = :b -- :c\n AND d = :d /* :e */",
		"SELECT $tag$ :x $tag$, $1, :y",
		"SELECT 'it''s :x' WHERE :y",
		"?", ":", "::", ":_a1", "'", "/*", "$$ :a",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
			st, err := parseNamed(q, d)
			if err != nil {
				continue
			}
			for _, n := range st.names {
				if n == "" || !identStart(n[0]) {
					t.Fatalf("%q: parameter %q", q, n)
				}
			}
			// Putting the :names back must give the query again.
			back := st.sql
			if d == store.SQLite && !strings.Contains(q, "?") { // a ? survives only inside quotes or comments
				var b strings.Builder
				i := 0
				for _, c := range []byte(back) {
					if c == '?' {
						b.WriteString(":" + st.names[i])
						i++
						continue
					}
					b.WriteByte(c)
				}
				if i != len(st.names) {
					t.Fatalf("%q: %d placeholders for %d names", q, i, len(st.names))
				}
				if b.String() != q {
					t.Fatalf("%q became %q", q, st.sql)
				}
			}
		}
	})
}

// FuzzSignature checks that a signed body verifies, that any change to the body or the
// signature does not, and that no input panics Verify.
func FuzzSignature(f *testing.F) {
	f.Add([]byte(`{"a":1}`), "sha256=00", byte(0), false)
	f.Add([]byte{}, "", byte(3), true)
	f.Add([]byte("x"), "sha256=zz", byte(255), true)
	secret := config.Secret("k")
	now := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, body []byte, header string, flip byte, stamped bool) {
		s := Signature{Header: "X-Sig", Prefix: "sha256="}
		if stamped {
			s.TimestampHeader = "X-Ts"
		}
		h := http.Header{}
		h.Set("X-Sig", header)
		h.Set("X-Ts", "1700000000")
		_ = s.Verify(secret, h, body, now) // must not panic

		h = http.Header{}
		s.Sign(secret, h, body, now)
		if err := s.Verify(secret, h, body, now); err != nil {
			t.Fatalf("own signature: %v", err)
		}
		changed := append([]byte{flip}, body...)
		if err := s.Verify(secret, h, changed, now); err == nil {
			t.Fatal("a changed body verified")
		}
		if err := s.Verify("other", h, body, now); err == nil {
			t.Fatal("another secret verified")
		}
	})
}

func TestParseNamed(t *testing.T) {
	tests := []struct {
		q       string
		d       store.Dialect
		want    string
		names   string
		wantErr string
	}{
		{"INSERT INTO t VALUES (:a, :b, :a)", store.SQLite, "INSERT INTO t VALUES (?, ?, ?)", "a b a", ""},
		{"INSERT INTO t VALUES (:a, :b, :a)", store.Postgres, "INSERT INTO t VALUES ($1, $2, $3)", "a b a", ""},
		{"SELECT x::text, ':a', \"b:c\" FROM t WHERE y = :y", store.Postgres, "SELECT x::text, ':a', \"b:c\" FROM t WHERE y = $1", "y", ""},
		{"SELECT 1 -- :a ?\n, :b /* :c ? */", store.SQLite, "SELECT 1 -- :a ?\n, ? /* :c ? */", "b", ""},
		{"SELECT $body$ :a ' $body$, :b", store.Postgres, "SELECT $body$ :a ' $body$, $1", "b", ""},
		{"SELECT 'it''s :a', :b", store.SQLite, "SELECT 'it''s :a', ?", "b", ""},
		{"SELECT :1, : a", store.SQLite, "SELECT :1, : a", "", ""},
		{"SELECT ?", store.SQLite, "", "", "positional ? at byte 7; use named parameters such as :id"},
		{"SELECT 'a", store.SQLite, "", "", "unterminated ' quote at byte 7"},
		{"SELECT /* a", store.SQLite, "", "", "unterminated comment at byte 7"},
		{"SELECT $x$ a", store.Postgres, "", "", "unterminated $x$ string at byte 7"},
	}
	for _, tt := range tests {
		st, err := parseNamed(tt.q, tt.d)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("%q: err %v, want %s", tt.q, err, tt.wantErr)
			}
			continue
		}
		if err != nil || st.sql != tt.want || strings.Join(st.names, " ") != tt.names {
			t.Errorf("%q (%s): %q %q %v, want %q %q", tt.q, tt.d, st.sql, st.names, err, tt.want, tt.names)
		}
	}
}
