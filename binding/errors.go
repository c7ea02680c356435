package binding

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ConfigError is a broken setting: the binding (or pipeline), the field and what is
// wrong, in one line such as
//
//	binding "github": field "secret" (line 7): env:GH_SECRET: secret not found
type ConfigError struct {
	// Binding names the binding, or "pipeline N" (from 1) for a pipeline, or "" for the
	// document.
	Binding string
	// Field is the setting's key, dotted for nested settings ("signature.header").
	Field string
	// Line is the line in the configuration file, 0 if unknown.
	Line int
	// Err says what is wrong.
	Err error
}

// Error returns the one-line description.
func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("binding")
	if e.Binding != "" {
		if strings.HasPrefix(e.Binding, "pipeline ") {
			b.Reset()
			b.WriteString(e.Binding)
		} else {
			b.WriteString(" " + strconv.Quote(e.Binding))
		}
	} else {
		b.WriteString(" config")
	}
	if e.Field != "" {
		b.WriteString(": field " + strconv.Quote(e.Field))
	}
	if e.Line > 0 {
		b.WriteString(" (line " + strconv.Itoa(e.Line) + ")")
	}
	if e.Err != nil {
		b.WriteString(": " + oneLine(e.Err.Error()))
	}
	return b.String()
}

// Unwrap returns Err.
func (e *ConfigError) Unwrap() error { return e.Err }

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// fieldErr returns a ConfigError for field without a binding.
func fieldErr(field string, err error) error {
	return &ConfigError{Field: field, Err: err}
}

// inBinding sets the binding (and line, if unknown) of a ConfigError in err, or wraps
// err in one.
func inBinding(name string, line int, err error) error {
	if err == nil {
		return nil
	}
	var ce *ConfigError
	if errors.As(err, &ce) {
		c := *ce
		if c.Binding == "" {
			c.Binding = name
		}
		if c.Line == 0 {
			c.Line = line
		}
		return &c
	}
	return &ConfigError{Binding: name, Line: line, Err: err}
}

// nested prefixes the field of a ConfigError in err with parent.
func nested(parent string, err error) error {
	var ce *ConfigError
	if err == nil || !errors.As(err, &ce) {
		return err
	}
	c := *ce
	c.Field = parent + "." + c.Field
	return &c
}

// required returns an error for a missing setting.
func required(field string) error { return fieldErr(field, errors.New("required")) }

// invalid returns a formatted error for field.
func invalid(field, format string, args ...any) error {
	return fieldErr(field, fmt.Errorf(format, args...))
}
