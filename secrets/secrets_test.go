package secrets_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/svckit/svckit/config"
	"github.com/svckit/svckit/secrets"
)

const secretValue = "s3cr3t-hunter2"

func TestEnv(t *testing.T) {
	env := map[string]string{"APP_DB_PASSWORD": secretValue, "APP_EMPTY": ""}
	s := secrets.Env{Prefix: "app", Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	tests := []struct {
		name, want string
		notFound   bool
	}{
		{"db-password", secretValue, false},
		{"db.password", secretValue, false},
		{"empty", "", true},
		{"missing", "", true},
	}
	for _, tc := range tests {
		v, err := s.Get(context.Background(), tc.name)
		if tc.notFound != errors.Is(err, secrets.ErrNotFound) || v.Reveal() != tc.want {
			t.Errorf("Get(%q) = %q, %v", tc.name, v.Reveal(), err)
		}
	}
}

// TestDirReloads follows a Kubernetes-style Secret mount: files behind a symlink that is
// swapped atomically to a new directory when the Secret changes.
func TestDirReloads(t *testing.T) {
	root := t.TempDir()
	write := func(dir, value string) {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, dir, "token"), []byte(value+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(root, "..data_tmp")
		_ = os.Remove(tmp)
		if err := os.Symlink(dir, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(root, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	write("v1", "first")
	mount := filepath.Join(root, "mount")
	if err := os.MkdirAll(mount, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..", "..data", "token"), filepath.Join(mount, "token")); err != nil {
		t.Fatal(err)
	}
	d := secrets.NewDir(mount, time.Millisecond)
	get := func() string {
		v, err := d.Get(context.Background(), "token")
		if err != nil {
			t.Fatal(err)
		}
		return v.Reveal()
	}
	if got := get(); got != "first" {
		t.Fatalf("got %q", got)
	}
	time.Sleep(10 * time.Millisecond) // a different modification time for the new file
	write("v2", "second-value")
	time.Sleep(5 * time.Millisecond)
	if got := get(); got != "second-value" {
		t.Fatalf("after the swap got %q, want second-value", got)
	}
	for _, bad := range []string{"", "../etc/passwd", "a/b", ".."} {
		if _, err := d.Get(context.Background(), bad); err == nil {
			t.Errorf("Get(%q) accepted", bad)
		}
	}
	if _, err := d.Get(context.Background(), "absent"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("absent: %v", err)
	}
}

// vaultServer answers GET /v1/{mount}/data/{path} as Vault's KV v2 engine documents it.
func vaultServer(t *testing.T, token string, data map[string]map[string]any) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		if r.Header.Get("X-Vault-Token") != token {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"errors":["permission denied"]}`)
			return
		}
		path, ok := strings.CutPrefix(r.URL.Path, "/v1/secret/data/")
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errors":[]}`)
			return
		}
		kv, ok := data[path]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errors":[]}`)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"request_id": "r", "lease_duration": 0, "renewable": false,
			"data": map[string]any{"data": kv, "metadata": map[string]any{
				"created_time": "2026-11-27T00:00:00Z", "deletion_time": "", "destroyed": false, "version": 3}},
		})
	}))
}

func TestVaultKV2(t *testing.T) {
	srv := vaultServer(t, "root-token", map[string]map[string]any{
		"shop/db":  {"password": secretValue, "port": 5432},
		"shop/api": {"value": "api-key"},
	})
	defer srv.Close()
	v := &secrets.Vault{Addr: srv.URL, Token: "root-token"}
	tests := []struct {
		name, want string
		notFound   bool
	}{
		{"shop/db#password", secretValue, false},
		{"shop/db#port", "5432", false},
		{"shop/api", "api-key", false},
		{"shop/db#missing", "", true},
		{"shop/none#x", "", true},
	}
	for _, tc := range tests {
		got, err := v.Get(context.Background(), tc.name)
		if tc.notFound != errors.Is(err, secrets.ErrNotFound) || got.Reveal() != tc.want {
			t.Errorf("Get(%q) = %q, %v", tc.name, got.Reveal(), err)
		}
	}
	bad := &secrets.Vault{Addr: srv.URL, Token: "wrong"}
	if _, err := bad.Get(context.Background(), "shop/db#password"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("wrong token: %v", err)
	}
	chain := secrets.Chain{secrets.Env{Lookup: func(string) (string, bool) { return "", false }}, v}
	if got, err := chain.Get(context.Background(), "shop/api"); err != nil || got.Reveal() != "api-key" {
		t.Fatalf("chain: %q %v", got.Reveal(), err)
	}
}

// TestSecretNeverPrinted scans what logging, fmt and JSON make of a secret.
func TestSecretNeverPrinted(t *testing.T) {
	s, err := secrets.Env{Lookup: func(string) (string, bool) { return secretValue, true }}.Get(context.Background(), "x")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	logger.Info("loaded", "secret", s, "struct", struct{ S config.Secret }{s})
	b, _ := json.Marshal(map[string]any{"s": s})
	out := buf.String() + fmt.Sprint(s) + fmt.Sprintf("%v %+v %#v %s", s, s, s, s) + string(b) +
		fmt.Errorf("wrapped: %v", s).Error()
	if strings.Contains(out, secretValue) {
		t.Fatalf("the secret leaked: %s", out)
	}
	if s.Reveal() != secretValue {
		t.Fatal("Reveal lost the value")
	}
}
