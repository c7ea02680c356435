package svckit_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/svckit/svckit"
)

// TestStoreSync checks STORE_SYNC: App.Store opens SQLite with it, and a value SQLite does
// not know is a one-line start-up error naming the setting.
func TestStoreSync(t *testing.T) {
	type storeOnly struct {
		svckit.Config
		svckit.StoreConfig
	}
	tests := []struct {
		name    string
		sync    string // empty: not set
		want    string // PRAGMA synchronous
		wantErr string
	}{
		{name: "default", want: "1"},
		{name: "full", sync: "FULL", want: "2"},
		{name: "lower case", sync: "extra", want: "3"},
		{name: "unknown", sync: "sometimes", wantErr: "-store-sync (STORE_SYNC)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"STORE_DSN": "sqlite:" + filepath.Join(t.TempDir(), "s.db")}
			if tc.sync != "" {
				env["STORE_SYNC"] = tc.sync
			}
			app, err := newApp(t, "ledger", &storeOnly{}, env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("error %v, want one line containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			st, err := app.Store(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			var got string
			if err := st.DB().QueryRow("PRAGMA synchronous").Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("synchronous = %s, want %s", got, tc.want)
			}
		})
	}
}
