package binding

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/svckit/svckit/config"
	"github.com/svckit/svckit/secrets"
)

// countingStore is a secrets.Store that counts reads.
type countingStore struct {
	n   int
	val config.Secret
}

func (c *countingStore) Get(_ context.Context, name string) (config.Secret, error) {
	c.n++
	if name != "hook" {
		return "", secrets.ErrNotFound
	}
	return c.val, nil
}

func TestResolveSecret(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "hook")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vault := &countingStore{val: "from-store"}
	now := time.Unix(0, 0)
	d := &Deps{Secrets: vault, Now: func() time.Time { return now },
		Env: func(k string) (string, bool) {
			return map[string]string{"HOOK": "from-env", "EMPTY": ""}[k], k == "HOOK"
		}}
	tests := []struct {
		ref, want, wantErr string
	}{
		{"env:HOOK", "from-env", ""},
		{"file:" + file, "from-file", ""},
		{"secret:hook", "from-store", ""},
		{"hook", "from-store", ""},
		{"env:MISSING", "", "secret not found"},
		{"file:relative/path", "", "want an absolute path"},
		{"secret:other", "", "secret not found"},
		{"vault:hook", "", `unknown scheme "vault"`},
	}
	for _, tt := range tests {
		src, err := resolveSecret(context.Background(), tt.ref, d)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err %v, want %q", tt.ref, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.ref, err)
			continue
		}
		if v, err := src(context.Background()); err != nil || v.Reveal() != tt.want {
			t.Errorf("%s: %q, %v; want %q", tt.ref, v.Reveal(), err, tt.want)
		}
	}

	// A secret from Deps.Secrets is read once a minute at most.
	vault.n = 0
	src, _ := resolveSecret(context.Background(), "hook", d)
	for range 5 {
		src(context.Background())
	}
	now = now.Add(secretCacheTTL)
	src(context.Background())
	if vault.n != 2 {
		t.Errorf("%d reads, want 2", vault.n)
	}
	if _, err := resolveSecret(context.Background(), "hook", &Deps{}); err == nil || !strings.Contains(err.Error(), "Deps.Secrets is not set") {
		t.Errorf("without Deps.Secrets: %v", err)
	}
}
