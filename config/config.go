// Package config loads a service's configuration into a plain Go struct, 12-factor style:
// from defaults, an optional YAML or JSON file, the environment and command-line flags.
//
// Each exported field of the struct is a setting. A setting has a name, which is its
// command-line flag and its key in a configuration file, and an environment variable. [Load]
// fills the struct from, in increasing precedence:
//
//  1. the field's default tag, or else the value the field held before Load;
//  2. the configuration file, if one is given with [WithFile], the -config flag or the
//     PREFIX_CONFIG environment variable (CONFIG_FILE without a prefix);
//  3. the setting's environment variable (an empty variable counts as unset);
//  4. the setting's flag.
//
// Then it checks that required settings are set and calls the Validate methods of the
// struct and its groups. Every error is one line that names the setting by flag and
// environment variable and says where the bad value came from:
//
//	config: -http-port (ADDSVC_HTTP_PORT) from environment: invalid value "eighty" for int: invalid syntax
//	config: -db-dsn (ADDSVC_DB_DSN) is required
//
// -help (or -h) prints every setting with its environment variable, type, default and help
// text, and Load returns [ErrHelp]. Secret settings are never shown: -help, errors and
// [Loader.Settings] and [Describe] output show "******" instead of their value.
//
// Field tags:
//
//	flag:"http-addr"  the setting's name within its group. Default: the field name in
//	                  kebab-case (HTTPAddr → http-addr).
//	env:"PORT"        the environment variable, used exactly as written (no prefix), for
//	                  variables a platform defines. Default: the prefix from [WithEnvPrefix],
//	                  an underscore and the full name in upper snake case (ADDSVC_HTTP_ADDR).
//	default:":8080"   the default value, written as on the command line.
//	help:"..."        one line of help for -help.
//	secret:"true"     never show the value. Fields of type [Secret] are secret anyway.
//	required:"true"   the setting must not end up as its type's zero value.
//	config:"-"        the field is not a setting.
//
// A field of struct type (other than a type that implements encoding.TextUnmarshaler, such
// as time.Time or netip.Addr) is a group: its settings are named with the group's prefix, so
// field Log with inner field Level is the setting log-level, environment variable LOG_LEVEL.
// The prefix is the field name in kebab-case, or the tag prefix:"..."; prefix:"" and
// embedded structs add no prefix.
//
// Setting types: string, bool, every int and uint size, float32, float64, time.Duration,
// every type that implements encoding.TextUnmarshaler (through a pointer receiver), named
// types of those kinds, slices of them (comma-separated: "a,b"; a list in a file; a
// repeated flag adds to the list) and maps from a string type to them ("k=v,k2=v2"; a
// mapping in a file). Any other field type is an error from Load.
//
// In a configuration file, keys are setting names; nested mappings join their keys with
// "-", so "log: {level: debug}" is "log-level: debug", and "_" may be written for "-". A key
// that names no setting is an error, which catches misspellings. A null value leaves the
// setting as it is.
//
// Load uses reflection once, at start-up; nothing here is meant for a request path.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
)

// ErrHelp is returned by Load when the command line asks for -help or -h. Load has printed
// the usage then, and the program should exit with status 0. It is [flag.ErrHelp].
var ErrHelp = flag.ErrHelp

// Source says where a setting's value came from.
type Source string

// The sources of a value, in increasing precedence. The zero Source means unknown, as in
// the output of [Describe].
const (
	SourceDefault Source = "default"     // the default tag or the value before Load
	SourceFile    Source = "file"        // the configuration file
	SourceEnv     Source = "environment" // the setting's environment variable
	SourceFlag    Source = "flag"        // the setting's command-line flag
)

// Setting describes one setting and its value. Secret settings show "******" as Value and
// Default unless those are empty.
type Setting struct {
	Name     string // the flag name without a dash, also the key in a file: "http-addr"
	Env      string // the environment variable: "ADDSVC_HTTP_ADDR"
	Type     string // the type as shown by -help: "string", "int", "duration", "[]string" …
	Default  string // the default value, as text
	Help     string // the help text
	Secret   bool   // the value is never shown
	Required bool   // the value must not be the zero value
	Value    string // the current value, as text
	Source   Source // where the value came from; empty if unknown
}

// FieldError is an error a Validate method returns to blame one field of its struct. Load
// reports it as an error of that field's setting, with flag and environment names and the
// source of the value:
//
//	func (c *Config) Validate() error {
//		if c.MaxConns < c.MinConns {
//			return &config.FieldError{Field: "MaxConns", Err: errors.New("must not be below -min-conns")}
//		}
//		return nil
//	}
type FieldError struct {
	// Field is the Go name of the field in the struct whose Validate method returned the
	// error; fields of groups are written with dots: "TLS.CertFile".
	Field string
	// Err says what is wrong with the value.
	Err error
}

// Error returns "Field: Err".
func (e *FieldError) Error() string {
	if e.Err == nil {
		return e.Field + ": invalid"
	}
	return e.Field + ": " + e.Err.Error()
}

// Unwrap returns e.Err.
func (e *FieldError) Unwrap() error { return e.Err }

// Option configures a [Loader] (and [Load] and [Describe]).
type Option func(*options)

type options struct {
	args      []string
	argsSet   bool
	lookupEnv func(string) (string, bool)
	envPrefix string
	file      string
	program   string
	usage     io.Writer
}

// WithArgs sets the command-line arguments to parse, without the program name. The default
// is os.Args[1:]. Positional arguments are an error.
func WithArgs(args []string) Option {
	return func(o *options) { o.args, o.argsSet = args, true }
}

// WithEnv sets the function that looks up environment variables. The default is
// os.LookupEnv; nil means an empty environment.
func WithEnv(lookup func(name string) (value string, ok bool)) Option {
	return func(o *options) { o.lookupEnv = lookup }
}

// WithEnvPrefix sets the prefix of the default environment variable names: with prefix
// "ADDSVC" the setting http-addr is read from ADDSVC_HTTP_ADDR and the configuration file is
// named by ADDSVC_CONFIG. Without a prefix they are HTTP_ADDR and CONFIG_FILE.
func WithEnvPrefix(prefix string) Option {
	return func(o *options) { o.envPrefix = strings.TrimSuffix(prefix, "_") }
}

// WithFile names a configuration file to read: .yaml or .yml for YAML, .json for JSON. The
// -config flag and the PREFIX_CONFIG environment variable override it. A file that is named
// but missing is an error.
func WithFile(path string) Option {
	return func(o *options) { o.file = path }
}

// WithProgramName sets the program name shown by -help. The default is the base name of
// os.Args[0].
func WithProgramName(name string) Option {
	return func(o *options) { o.program = name }
}

// WithUsageOutput sets where -help prints. The default is os.Stderr.
func WithUsageOutput(w io.Writer) Option {
	return func(o *options) { o.usage = w }
}

func newOptions(opts []Option) options {
	o := options{lookupEnv: os.LookupEnv, usage: os.Stderr}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if !o.argsSet && len(os.Args) > 1 {
		o.args = os.Args[1:]
	}
	if o.lookupEnv == nil {
		o.lookupEnv = func(string) (string, bool) { return "", false }
	}
	if o.program == "" && len(os.Args) > 0 {
		o.program = filepath.Base(os.Args[0])
	}
	if o.usage == nil {
		o.usage = io.Discard
	}
	return o
}

// Load fills the struct dst points to from defaults, a configuration file, the environment
// and the command line, and validates it. It is NewLoader(opts...).Load(dst).
func Load(dst any, opts ...Option) error {
	return NewLoader(opts...).Load(dst)
}

// Loader loads configuration and remembers where each value came from. A Loader is not
// safe for concurrent use.
type Loader struct {
	o        options
	settings []Setting
}

// NewLoader returns a Loader with the given options.
func NewLoader(opts ...Option) *Loader {
	return &Loader{o: newOptions(opts)}
}

// Settings returns the settings of the last successful Load, in field order, with their
// values and sources; secret values are masked. Log it at start-up to record the effective
// configuration.
func (l *Loader) Settings() []Setting {
	return slices.Clone(l.settings)
}

// Load fills the struct dst points to, as described in the package documentation. It
// returns ErrHelp after printing the usage if the arguments ask for help; any other error
// is a single line naming the setting at fault and never contains a secret value.
func (l *Loader) Load(dst any) error {
	l.settings = nil
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: Load needs a non-nil pointer to a struct, not %T", dst)
	}
	root := rv.Elem()
	sc, err := newSchema(root.Type(), l.o.envPrefix)
	if err != nil {
		return err
	}
	if err := l.load(sc, root); err != nil {
		if errors.Is(err, ErrHelp) {
			return err
		}
		return clean(err, sc.secretValues(root))
	}
	for _, s := range sc.settings {
		l.settings = append(l.settings, s.describe(root.FieldByIndex(s.index), s.defText, s.src))
	}
	return nil
}

func (l *Loader) load(sc *schema, root reflect.Value) error {
	for _, s := range sc.settings {
		v := root.FieldByIndex(s.index)
		s.src = SourceDefault
		if s.hasDef {
			s.defText = s.def
		} else if !v.IsZero() {
			s.defText = format(v)
		}
	}

	flags, err := parseArgs(sc, l.o.args)
	if errors.Is(err, ErrHelp) {
		sc.writeUsage(l.o.usage, l.o.program, l.o.file)
		return ErrHelp
	}
	if err != nil {
		return err
	}

	// 1. defaults
	for _, s := range sc.settings {
		if s.hasDef {
			if err := s.set(root, raw{str: s.def}, SourceDefault, ""); err != nil {
				return err
			}
		}
	}

	// 2. the configuration file
	path := l.o.file
	if v, ok := l.o.lookupEnv(sc.configEnv); ok && v != "" {
		path = v
	}
	if v := flags[configFlag]; len(v) > 0 {
		path = v[len(v)-1]
	}
	if path != "" {
		tree, err := readFile(path)
		if err != nil {
			return err
		}
		if err := sc.applyFile(root, tree, "", path, map[string]bool{}); err != nil {
			return err
		}
	}

	// 3. the environment
	for _, s := range sc.settings {
		if v, ok := l.o.lookupEnv(s.env); ok && v != "" {
			if err := s.set(root, raw{str: v}, SourceEnv, ""); err != nil {
				return err
			}
		}
	}

	// 4. flags; a repeated flag adds to a list or map and replaces anything else.
	for _, s := range sc.settings {
		vals := flags[s.name]
		if len(vals) == 0 {
			continue
		}
		r := raw{str: vals[len(vals)-1]}
		if s.shape != scalar {
			r.str = strings.Join(vals, ",")
		}
		if err := s.set(root, r, SourceFlag, ""); err != nil {
			return err
		}
	}

	for _, s := range sc.settings {
		if s.required && root.FieldByIndex(s.index).IsZero() {
			return &settingError{msg: "config: " + s.label() + " is required"}
		}
	}

	for _, g := range sc.groups {
		v := root.FieldByIndex(g.index)
		if !v.Addr().CanInterface() {
			continue // an unexported embedded type: its Validate is not reachable
		}
		vd, ok := v.Addr().Interface().(interface{ Validate() error })
		if !ok {
			continue
		}
		if err := vd.Validate(); err != nil {
			return sc.validateError(root, g, err)
		}
	}
	return nil
}

// Describe lists the settings of the struct cfg (or that cfg points to) with their current
// values; secret values are masked. Default shows default tags only and Source is empty:
// use [Loader.Settings] for the result of a load. Only [WithEnvPrefix] among the options
// matters.
func Describe(cfg any, opts ...Option) ([]Setting, error) {
	o := newOptions(opts)
	rv := reflect.ValueOf(cfg)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return nil, fmt.Errorf("config: Describe needs a struct or a pointer to one, not %T", cfg)
	}
	if !rv.CanAddr() {
		c := reflect.New(rv.Type()).Elem()
		c.Set(rv)
		rv = c
	}
	sc, err := newSchema(rv.Type(), o.envPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]Setting, 0, len(sc.settings))
	for _, s := range sc.settings {
		out = append(out, s.describe(rv.FieldByIndex(s.index), s.def, ""))
	}
	return out, nil
}

func (s *setting) describe(v reflect.Value, def string, src Source) Setting {
	return Setting{
		Name:     s.name,
		Env:      s.env,
		Type:     s.typeName,
		Default:  s.mask(def),
		Help:     s.help,
		Secret:   s.secret,
		Required: s.required,
		Value:    s.mask(format(v)),
		Source:   src,
	}
}

// settingError is an error of Load: a one-line message and, unless that would expose a
// secret, the cause.
type settingError struct {
	msg string
	err error
}

func (e *settingError) Error() string { return e.msg }
func (e *settingError) Unwrap() error { return e.err }

// from says where a value came from, for error messages.
func from(src Source, file string) string {
	switch src {
	case SourceFile:
		return "from file " + file
	case "":
		return ""
	}
	return "from " + string(src)
}

// clean makes err one line and masks every secret value in it. If a secret had to be
// masked, the cause is dropped, because its text holds the secret.
func clean(err error, secrets []string) error {
	msg := err.Error()
	masked := false
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, mask)
			masked = true
		}
	}
	line := oneLine(msg)
	switch {
	case masked:
		return errors.New(line)
	case line != err.Error():
		return &settingError{msg: line, err: err}
	}
	return err
}

func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(slices.DeleteFunc(lines, func(l string) bool { return l == "" }), "; ")
}
