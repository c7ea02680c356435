package svckit

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/svckit/svckit/config"
	"github.com/svckit/svckit/store"
)

// StoreConfig is the setting of a service's own store. Embed it in the service's
// configuration struct to use [App.Store]:
//
//	type config struct {
//		svckit.Config
//		svckit.StoreConfig // STORE_DSN, STORE_SYNC
//	}
type StoreConfig struct {
	StoreDSN string `flag:"store-dsn" env:"STORE_DSN" help:"this service's own store: sqlite:PATH or postgres://… (empty: sqlite:NAME.db in the working directory)"`
	// StoreSync is SQLite's synchronous setting (store.WithSync): NORMAL loses nothing
	// in a process crash but may lose the last commits in an OS crash; FULL syncs every
	// commit. PostgreSQL ignores it (its synchronous_commit decides).
	StoreSync string `flag:"store-sync" env:"STORE_SYNC" default:"NORMAL" help:"SQLite synchronous: NORMAL (survives a process crash), FULL (every commit synced: survives an OS crash), EXTRA or OFF"`
}

// Validate checks STORE_SYNC.
func (c *StoreConfig) Validate() error {
	if _, err := store.ParseSync(c.StoreSync); err != nil {
		return &config.FieldError{Field: "StoreSync", Err: fmt.Errorf("must be NORMAL, FULL, EXTRA or OFF, not %q", c.StoreSync)}
	}
	return nil
}

func (c *StoreConfig) storeConfig() *StoreConfig { return c }

type storeConfig interface{ storeConfig() *StoreConfig }

// Store opens the service's own store from STORE_DSN (see [StoreConfig]; empty means
// sqlite:NAME.db) with SQLite's synchronous setting from STORE_SYNC (before opts, so an
// option given here wins), applies the migrations in migrations, adds the readiness check
// "store" and closes the store at shutdown, after the listeners have drained.
//
// The migrations are the *.sql files of the FS's "migrations" directory if it has one,
// else of its root (see store.Migrate); nil applies none. The database engines are linked
// by importing their packages in the main package, so a service carries only those it
// uses:
//
//	import (
//		_ "github.com/svckit/svckit/store/postgres" // postgres://… DSNs
//		_ "github.com/svckit/svckit/store/sqlite"   // sqlite: DSNs
//	)
func (a *App) Store(ctx context.Context, migrations fs.FS, opts ...store.Option) (*store.Store, error) {
	sc, ok := a.userCfg.(storeConfig)
	if !ok {
		return nil, fmt.Errorf("svckit: App.Store reads STORE_DSN: embed svckit.StoreConfig in the configuration struct %T", a.userCfg)
	}
	dsn := sc.storeConfig().StoreDSN
	if dsn == "" {
		dsn = "sqlite:" + a.name + ".db"
	}
	mode, err := store.ParseSync(sc.storeConfig().StoreSync)
	if err != nil {
		return nil, fmt.Errorf("svckit: store (STORE_SYNC): %w", err)
	}
	st, err := store.Open(ctx, dsn, append([]store.Option{store.WithSync(mode)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("svckit: store (STORE_DSN): %w", err)
	}
	if migrations != nil {
		dir := "."
		if fi, err := fs.Stat(migrations, "migrations"); err == nil && fi.IsDir() {
			dir = "migrations"
		}
		if err := st.Migrate(ctx, migrations, store.WithDir(dir)); err != nil {
			_ = st.Close()
			return nil, fmt.Errorf("svckit: store migrations: %w", err)
		}
	}
	a.OnClose("store", func(context.Context) error { return st.Close() })
	a.health.AddReadiness("store", st.Ping)
	return st, nil
}
