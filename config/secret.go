package config

import (
	"encoding/json"
	"log/slog"
	"strconv"
)

// mask is shown instead of a secret value.
const mask = "******"

// Secret is a string that does not show itself: fmt, log/slog, encoding/json and YAML
// encoders see "******" (or "" if the secret is empty). A setting of type Secret is secret
// without a secret tag. Call Reveal where the value is really needed.
type Secret string

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

// String returns "******", or "" if s is empty.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return mask
}

// GoString masks s for the %#v verb.
func (s Secret) GoString() string { return "config.Secret(" + strconv.Quote(s.String()) + ")" }

// LogValue masks s for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON encodes s masked.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalYAML encodes s masked (go.yaml.in/yaml/v3 and compatible encoders).
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }
