package store_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/svckit/svckit/store"
)

// TestWithSync opens a SQLite store with each synchronous setting and checks the pragma
// on both pools, and that a value SQLite does not know is refused by name.
func TestWithSync(t *testing.T) {
	tests := []struct {
		name    string
		opts    []store.Option
		want    string // PRAGMA synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA
		wantErr string
	}{
		{name: "default", want: "1"},
		{name: "normal", opts: []store.Option{store.WithSync(store.SyncNormal)}, want: "1"},
		{name: "full", opts: []store.Option{store.WithSync(store.SyncFull)}, want: "2"},
		{name: "full lower case", opts: []store.Option{store.WithSync("full")}, want: "2"},
		{name: "extra", opts: []store.Option{store.WithSync(store.SyncExtra)}, want: "3"},
		{name: "off", opts: []store.Option{store.WithSync(store.SyncOff)}, want: "0"},
		{name: "unknown", opts: []store.Option{store.WithSync("always")}, wantErr: `synchronous "always": must be NORMAL, FULL, EXTRA or OFF`},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "s.db"), tc.opts...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Open: %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for _, db := range []*sql.DB{s.DB(), s.ReadDB()} {
				var got string
				if err := db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != tc.want {
					t.Errorf("synchronous = %s, want %s", got, tc.want)
				}
			}
		})
	}
}

// TestParseSync checks the names ParseSync takes.
func TestParseSync(t *testing.T) {
	tests := []struct {
		in   string
		want store.Sync
		ok   bool
	}{
		{"", store.SyncNormal, true},
		{"normal", store.SyncNormal, true},
		{" FULL ", store.SyncFull, true},
		{"Extra", store.SyncExtra, true},
		{"off", store.SyncOff, true},
		{"2", "", false},
		{"always", "", false},
	}
	for _, tc := range tests {
		got, err := store.ParseSync(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSync(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
