package config_test

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/svckit/svckit/config"
)

// DBConfig is a group of settings: its fields become db-dsn and db-max-conns.
type DBConfig struct {
	DSN      config.Secret `required:"true" help:"database connection string"`
	MaxConns int           `default:"10" help:"maximum open connections"`
}

// ServiceConfig is a typical service's configuration.
type ServiceConfig struct {
	HTTPAddr string        `default:":8080" help:"HTTP listen address"`
	Timeout  time.Duration `default:"5s" help:"request timeout"`
	Peers    []string      `help:"addresses of peer services"`
	Log      struct {
		Level slog.Level `default:"info" help:"minimum log level"`
	}
	DB DBConfig
}

// Validate is called by Load after every source is read.
func (c *ServiceConfig) Validate() error {
	if c.Timeout <= 0 {
		return &config.FieldError{Field: "Timeout", Err: errors.New("must be positive")}
	}
	return nil
}

// mapEnv stands in for the process environment.
type mapEnv map[string]string

func (m mapEnv) lookup(k string) (string, bool) { v, ok := m[k]; return v, ok }

func ExampleLoader() {
	var cfg ServiceConfig
	l := config.NewLoader(
		config.WithEnvPrefix("ADDSVC"),
		// A real main leaves out WithArgs and WithEnv: os.Args and os.LookupEnv are the defaults.
		config.WithArgs([]string{"-timeout=2s", "-log-level=debug"}),
		config.WithEnv(mapEnv{
			"ADDSVC_DB_DSN": "postgres://app:hunter2@db/app",
			"ADDSVC_PEERS":  "users:8080,billing:8080",
		}.lookup),
	)
	err := l.Load(&cfg)
	if errors.Is(err, config.ErrHelp) {
		os.Exit(0) // -help printed the settings
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println(cfg.Timeout, cfg.Peers, cfg.Log.Level, cfg.DB.MaxConns)
	// Log the effective configuration; the DSN is masked.
	for _, s := range l.Settings() {
		fmt.Printf("%s=%s (%s)\n", s.Name, s.Value, s.Source)
	}
	// Output:
	// 2s [users:8080 billing:8080] DEBUG 10
	// http-addr=:8080 (default)
	// timeout=2s (flag)
	// peers=users:8080,billing:8080 (environment)
	// log-level=DEBUG (flag)
	// db-dsn=****** (environment)
	// db-max-conns=10 (default)
}

func ExampleLoad_help() {
	var cfg ServiceConfig
	err := config.Load(&cfg,
		config.WithEnvPrefix("ADDSVC"),
		config.WithProgramName("addsvc"),
		config.WithArgs([]string{"-help"}),
		config.WithUsageOutput(os.Stdout),
	)
	fmt.Println(err == config.ErrHelp)
	// Output:
	// Usage of addsvc:
	// Each setting is taken from, in increasing precedence: its default, the configuration file, its environment variable, its flag.
	//
	//   FLAG               ENVIRONMENT          DESCRIPTION
	//   -config file       ADDSVC_CONFIG        configuration file (.yaml, .yml or .json)
	//   -http-addr string  ADDSVC_HTTP_ADDR     HTTP listen address (default ":8080")
	//   -timeout duration  ADDSVC_TIMEOUT       request timeout (default 5s)
	//   -peers []string    ADDSVC_PEERS         addresses of peer services
	//   -log-level level   ADDSVC_LOG_LEVEL     minimum log level (default info)
	//   -db-dsn string     ADDSVC_DB_DSN        database connection string (required; secret)
	//   -db-max-conns int  ADDSVC_DB_MAX_CONNS  maximum open connections (default 10)
	// true
}

func ExampleLoad_error() {
	var cfg ServiceConfig
	err := config.Load(&cfg,
		config.WithEnvPrefix("ADDSVC"),
		config.WithArgs([]string{"-timeout=0s"}),
		config.WithEnv(mapEnv{"ADDSVC_DB_DSN": "postgres://app:hunter2@db/app"}.lookup),
	)
	fmt.Println(err)
	var empty ServiceConfig
	err = config.Load(&empty, config.WithEnvPrefix("ADDSVC"), config.WithArgs(nil), config.WithEnv(nil))
	fmt.Println(err)
	// Output:
	// config: -timeout (ADDSVC_TIMEOUT) from flag: invalid value "0s": must be positive
	// config: -db-dsn (ADDSVC_DB_DSN) is required
}

func ExampleSecret() {
	password := config.Secret("hunter2")
	fmt.Println(password, password.Reveal())
	slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})).Info("connecting", "password", password)
	// Output:
	// ****** hunter2
	// level=INFO msg=connecting password=******
}
