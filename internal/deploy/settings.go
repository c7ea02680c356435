package deploy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
)

// Setting is one configuration setting of a service, as its -help lists it: every svckit
// service prints its settings with their environment variables, types and defaults (see
// package config). The renderer sets environment variables only from this list, so a
// manifest cannot name a setting the service does not have.
type Setting struct {
	Name     string // the flag name without a dash: "http-addr"
	Env      string // the environment variable: "HTTP_ADDR"
	Type     string // the type as -help shows it: "string", "duration", "[]string" …
	Default  string // the default value, unquoted; "" if none
	Help     string // the help text, without the default and attributes
	Required bool   // the setting must be set
	Secret   bool   // the value is never shown
}

// ParseUsage reads the -help output of a svckit service (the format of package config's
// usage text) and returns its settings in order, without the -config setting.
func ParseUsage(r io.Reader) ([]Setting, error) {
	var out []Setting
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	header := false
	for sc.Scan() {
		line := sc.Text()
		if !header {
			f := strings.Fields(line)
			header = len(f) == 3 && f[0] == "FLAG" && f[1] == "ENVIRONMENT" && f[2] == "DESCRIPTION"
			continue
		}
		rest, ok := strings.CutPrefix(strings.TrimLeft(line, " "), "-")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 3 {
			return nil, fmt.Errorf("deploy: usage line %q: want -flag type ENV description", line)
		}
		s := Setting{Name: f[0], Type: f[1], Env: f[2]}
		if s.Name == "config" {
			continue
		}
		// The description is whatever follows the environment column.
		i := strings.Index(rest, " "+s.Env+" ")
		desc := ""
		if i >= 0 {
			desc = strings.TrimSpace(rest[i+len(s.Env)+2:])
		}
		s.Help, s.Default, s.Required, s.Secret = parseAttrs(desc)
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("deploy: reading usage: %w", err)
	}
	if !header {
		return nil, fmt.Errorf("deploy: no settings table (FLAG ENVIRONMENT DESCRIPTION) in the usage text")
	}
	return out, nil
}

// parseAttrs splits the trailing "(default X; required; secret)" off a description.
func parseAttrs(desc string) (help, def string, required, secret bool) {
	if !strings.HasSuffix(desc, ")") {
		return desc, "", false, false
	}
	inner := desc[:len(desc)-1]
	for i := strings.LastIndex(inner, "("); i >= 0; i = strings.LastIndex(inner[:i], "(") {
		if d, r, s, ok := attrs(inner[i+1:]); ok {
			return strings.TrimSpace(inner[:i]), d, r, s
		}
	}
	return desc, "", false, false
}

func attrs(s string) (def string, required, secret, ok bool) {
	if rest, isDef := strings.CutPrefix(s, "default "); isDef {
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return "", false, false, false
			}
			def, _ = strconv.Unquote(q)
			s = rest[len(q):]
		} else {
			def, s, _ = strings.Cut(rest, "; ")
			if s != "" {
				s = "; " + s
			}
		}
	} else {
		s = "; " + s
	}
	for s != "" {
		switch {
		case strings.HasPrefix(s, "; required"):
			required, s = true, s[len("; required"):]
		case strings.HasPrefix(s, "; secret"):
			secret, s = true, s[len("; secret"):]
		default:
			return "", false, false, false
		}
	}
	return def, required, secret, true
}

// Inspect runs the service binary bin with -help and an empty environment and returns its
// settings.
func Inspect(ctx context.Context, bin string) ([]Setting, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "-help")
	cmd.Env = []string{}
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("deploy: %s -help: %w: %s", bin, err, strings.TrimSpace(out.String()))
	}
	s, err := ParseUsage(&out)
	if err != nil {
		return nil, fmt.Errorf("deploy: %s -help: %w", bin, err)
	}
	return s, nil
}
