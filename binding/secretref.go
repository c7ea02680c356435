package binding

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/svckit/svckit/config"
	"github.com/svckit/svckit/secrets"
)

// secretSource returns the current value of a secret.
type secretSource func(ctx context.Context) (config.Secret, error)

// secretCacheTTL is how long a secret read from Deps.Secrets is reused.
const secretCacheTTL = time.Minute

// resolveSecret returns a source for the secret reference ref, after reading it once:
//
//	env:VAR       the environment variable VAR (read once)
//	file:PATH     the file PATH, re-read when it changes (a mounted Kubernetes Secret)
//	secret:NAME   NAME from Deps.Secrets (Vault, a chain, …), cached for a minute
//	NAME          the same as secret:NAME
//
// Errors name the reference, never the value.
func resolveSecret(ctx context.Context, ref string, d *Deps) (secretSource, error) {
	scheme, name, ok := strings.Cut(ref, ":")
	if !ok {
		scheme, name = "secret", ref
	}
	var src secretSource
	switch scheme {
	case "env":
		v, err := secrets.Env{Lookup: d.Env}.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		src = func(context.Context) (config.Secret, error) { return v, nil }
	case "file":
		if !filepath.IsAbs(name) {
			return nil, fmt.Errorf("file:%s: want an absolute path", name)
		}
		dir := secrets.NewDir(filepath.Dir(name), 0)
		base := filepath.Base(name)
		src = func(ctx context.Context) (config.Secret, error) { return dir.Get(ctx, base) }
	case "secret":
		if d.Secrets == nil {
			return nil, fmt.Errorf("%s: Deps.Secrets is not set", ref)
		}
		src = cachedSecret(d.Secrets, name, d.now)
	default:
		return nil, fmt.Errorf("%q: unknown scheme %q; want env:, file: or secret:", ref, scheme)
	}
	v, err := src(ctx)
	if err != nil {
		return nil, err
	}
	if v == "" {
		return nil, errors.New(ref + ": the secret is empty")
	}
	return src, nil
}

// cachedSecret reads name from st at most once per secretCacheTTL; when a read fails
// the last value is kept.
func cachedSecret(st secrets.Store, name string, now func() time.Time) secretSource {
	var mu sync.Mutex
	var val config.Secret
	var at time.Time
	return func(ctx context.Context) (config.Secret, error) {
		mu.Lock()
		defer mu.Unlock()
		if val != "" && now().Sub(at) < secretCacheTTL {
			return val, nil
		}
		v, err := st.Get(ctx, name)
		if err != nil {
			if val != "" {
				return val, nil
			}
			return "", err
		}
		val, at = v, now()
		return val, nil
	}
}

// isSecretRef reports whether s is a secret reference with a scheme.
func isSecretRef(s string) bool {
	for _, p := range []string{"env:", "file:", "secret:"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
