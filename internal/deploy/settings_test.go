package deploy

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/svckit/svckit/config"
)

type usageGroup struct {
	Level string `default:"info" help:"a level (default-looking text) inside"`
}

type usageConfig struct {
	HTTPAddr string        `flag:"http-addr" default:":8080" help:"address (empty: none)"`
	DSN      string        `env:"STORE_DSN" required:"true" help:"the store"`
	Password config.Secret `help:"a password"`
	Token    string        `secret:"true" default:"abc" help:"a token"`
	Wait     time.Duration `default:"1m30s" help:"how long"`
	Odd      string        `default:"a; (b) \"c\"" help:"tricky; (parens)"`
	Tags     []string      `default:"x,y" help:"a list"`
	NoHelp   int
	Group    usageGroup
}

// TestParseUsage checks the parser against package config itself: the usage text config
// prints must parse back into the settings config.Describe reports.
func TestParseUsage(t *testing.T) {
	for _, prefix := range []string{"", "APP"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			var buf bytes.Buffer
			err := config.Load(&usageConfig{}, config.WithArgs([]string{"-help"}), config.WithEnv(nil),
				config.WithEnvPrefix(prefix), config.WithUsageOutput(&buf), config.WithProgramName("x"))
			if !errors.Is(err, config.ErrHelp) {
				t.Fatalf("Load -help: %v", err)
			}
			got, err := ParseUsage(&buf)
			if err != nil {
				t.Fatal(err)
			}
			want, err := config.Describe(&usageConfig{}, config.WithEnvPrefix(prefix))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("parsed %d settings, config describes %d:\n%s", len(got), len(want), buf.String())
			}
			for i, w := range want {
				g := got[i]
				def := w.Default
				if w.Secret && def != "" {
					def = "******"
				}
				if g.Name != w.Name || g.Env != w.Env || g.Type != w.Type || g.Default != def ||
					g.Required != w.Required || g.Secret != w.Secret || g.Help != w.Help {
					t.Errorf("setting %d: parsed %+v, config has %+v", i, g, w)
				}
			}
		})
	}
}

func TestParseUsageErrors(t *testing.T) {
	for name, text := range map[string]string{
		"no table":   "Usage of x:\n  -a string  A  help\n",
		"short line": "  FLAG  ENVIRONMENT  DESCRIPTION\n  -a string\n",
	} {
		t.Run(name, func(t *testing.T) {
			if s, err := ParseUsage(strings.NewReader(text)); err == nil {
				t.Errorf("ParseUsage = %+v, want an error", s)
			}
		})
	}
}
