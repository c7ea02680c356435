// Package secrets reads secret values — passwords, API keys, signing keys — from where a
// platform keeps them: environment variables, files (Kubernetes mounts a Secret as a
// directory of files and updates them in place), or HashiCorp Vault's KV version 2 engine.
// Values come back as config.Secret, which shows "******" in fmt, log/slog and JSON, so a
// secret cannot leak into a log line or an error by accident.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/svckit/svckit/config"
)

// ErrNotFound is returned when a store has no secret of the given name.
var ErrNotFound = errors.New("secret not found")

// Store reads secrets by name.
type Store interface {
	// Get returns the secret called name, or an error wrapping ErrNotFound.
	Get(ctx context.Context, name string) (config.Secret, error)
}

// Env reads secrets from environment variables: the name "db-password" is read from
// PREFIX_DB_PASSWORD (DB_PASSWORD without a prefix).
type Env struct {
	// Prefix is prepended, with an underscore, to every variable name.
	Prefix string
	// Lookup reads a variable; default os.LookupEnv.
	Lookup func(string) (string, bool)
}

// Get returns the variable's value.
func (e Env) Get(_ context.Context, name string) (config.Secret, error) {
	key := strings.ToUpper(strings.NewReplacer("-", "_", ".", "_", "/", "_").Replace(name))
	if e.Prefix != "" {
		key = strings.ToUpper(e.Prefix) + "_" + key
	}
	lookup := e.Lookup
	if lookup == nil {
		lookup = os.LookupEnv
	}
	v, ok := lookup(key)
	if !ok || v == "" {
		return "", fmt.Errorf("secrets: %s (environment variable %s): %w", name, key, ErrNotFound)
	}
	return config.Secret(v), nil
}

// Dir reads secrets from files in a directory, one file per secret named after it, as
// Kubernetes mounts a Secret. Values are cached and re-read when the file changes (a
// mounted Secret is replaced through a symlink swap, which changes the modification time
// seen through the link), checked at most once per CheckEvery.
type Dir struct {
	path       string
	checkEvery time.Duration

	mu    sync.Mutex
	cache map[string]fileEntry
	now   func() time.Time
}

type fileEntry struct {
	value   config.Secret
	modTime time.Time
	size    int64
	checked time.Time
}

// NewDir returns a store over the directory path. checkEvery bounds how often a file is
// looked at again (default 1 s).
func NewDir(path string, checkEvery time.Duration) *Dir {
	if checkEvery <= 0 {
		checkEvery = time.Second
	}
	return &Dir{path: path, checkEvery: checkEvery, cache: map[string]fileEntry{}, now: time.Now}
}

// Get returns the content of the file called name, without a trailing newline.
func (d *Dir) Get(_ context.Context, name string) (config.Secret, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return "", fmt.Errorf("secrets: %q is not a valid secret name", name)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	if e, ok := d.cache[name]; ok && now.Sub(e.checked) < d.checkEvery {
		return e.value, nil
	}
	file := filepath.Join(d.path, name)
	st, err := os.Stat(file) // follows the symlink Kubernetes swaps
	if errors.Is(err, os.ErrNotExist) {
		delete(d.cache, name)
		return "", fmt.Errorf("secrets: %s (file %s): %w", name, file, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("secrets: %s: %w", name, err)
	}
	if e, ok := d.cache[name]; ok && e.modTime.Equal(st.ModTime()) && e.size == st.Size() {
		e.checked = now
		d.cache[name] = e
		return e.value, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("secrets: %s: %w", name, err)
	}
	v := config.Secret(strings.TrimRight(string(b), "\r\n"))
	d.cache[name] = fileEntry{value: v, modTime: st.ModTime(), size: st.Size(), checked: now}
	return v, nil
}

// Chain tries stores in order and returns the first secret found.
type Chain []Store

// Get returns the secret from the first store that has it.
func (c Chain) Get(ctx context.Context, name string) (config.Secret, error) {
	var errs []error
	for _, s := range c {
		v, err := s.Get(ctx, name)
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return "", err
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("secrets: %s: %w", name, errors.Join(append([]error{ErrNotFound}, errs...)...))
}
