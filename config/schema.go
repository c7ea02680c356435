package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

const configFlag = "config"

// schema is what Load learns from a struct type: its settings and its groups.
type schema struct {
	settings  []*setting
	byName    map[string]*setting
	groups    []group // groups with a Validate to call: named group fields, inner first, then the root
	configEnv string  // the variable that names the configuration file
}

// setting is one leaf field of the struct.
type setting struct {
	field    string // Go path, "Log.Level"
	name     string // "log-level"
	env      string // "ADDSVC_LOG_LEVEL"
	def      string // default tag
	hasDef   bool
	help     string
	secret   bool
	required bool
	index    []int
	typ      reflect.Type
	shape    shape
	elem     reflect.Type // the scalar type: typ, or its element type for a list or map
	typeName string

	// state of one Load
	defText string // the default as shown: the tag, or the value before Load
	src     Source
	file    string
}

type group struct {
	name  string // the group's name prefix without the trailing "-"; "" for the root
	index []int
	typ   reflect.Type
}

func newSchema(t reflect.Type, envPrefix string) (*schema, error) {
	sc := &schema{byName: map[string]*setting{}, configEnv: "CONFIG_FILE"}
	if envPrefix != "" {
		sc.configEnv = envName(envPrefix, configFlag)
	}
	envs := map[string]string{sc.configEnv: "the configuration file"}
	if err := sc.walk(t, nil, "", "", envPrefix, envs); err != nil {
		return nil, err
	}
	sc.groups = append(sc.groups, group{typ: t})
	return sc, nil
}

// hasValidate reports whether a pointer to a value of type t has a Validate method.
func hasValidate(t reflect.Type) bool {
	_, ok := reflect.PointerTo(t).MethodByName("Validate")
	return ok
}

func (sc *schema) walk(t reflect.Type, index []int, namePrefix, pathPrefix, envPrefix string, envs map[string]string) error {
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Tag.Get("config") == "-" || (!sf.IsExported() && !sf.Anonymous) {
			continue
		}
		idx := append(slices.Clone(index), i)
		path := pathPrefix + sf.Name
		if isGroup(sf.Type) {
			for _, k := range []string{"flag", "env", "default", "secret", "required"} {
				if _, ok := sf.Tag.Lookup(k); ok {
					return fmt.Errorf(`config: field %s: a struct field is a group of settings and takes no %s tag; use prefix:"..." to name it`, path, k)
				}
			}
			prefix, ok := sf.Tag.Lookup("prefix")
			if !ok && !sf.Anonymous {
				prefix = kebab(sf.Name)
			}
			np := namePrefix
			if prefix != "" {
				np += prefix + "-"
			}
			if err := sc.walk(sf.Type, idx, np, path+".", envPrefix, envs); err != nil {
				return err
			}
			// An embedded struct's Validate is promoted to its parent, as in Go, and runs
			// as the parent's. When two embedded structs have one, the selector is
			// ambiguous and the parent has none: then each runs as a group of its own,
			// rather than none of them.
			if !sf.Anonymous || !hasValidate(t) {
				sc.groups = append(sc.groups, group{name: strings.TrimSuffix(np, "-"), index: idx, typ: sf.Type})
			}
			continue
		}
		if !sf.IsExported() {
			continue
		}
		s, err := newSetting(sf, idx, path, namePrefix, envPrefix)
		if err != nil {
			return err
		}
		if prev, ok := sc.byName[s.name]; ok {
			return fmt.Errorf("config: fields %s and %s have the same setting name %q", prev.field, s.field, s.name)
		}
		if prev, ok := envs[s.env]; ok {
			return fmt.Errorf("config: field %s: environment variable %s is also used by %s", s.field, s.env, prev)
		}
		sc.byName[s.name] = s
		envs[s.env] = "field " + s.field
		sc.settings = append(sc.settings, s)
	}
	return nil
}

func newSetting(sf reflect.StructField, idx []int, path, namePrefix, envPrefix string) (*setting, error) {
	s := &setting{field: path, index: idx, typ: sf.Type, help: sf.Tag.Get("help")}
	var ok bool
	if s.shape, s.elem, ok = classify(sf.Type); !ok {
		return nil, fmt.Errorf(`config: field %s: unsupported type %s (tag it config:"-" if it is not a setting)`, path, sf.Type)
	}
	s.typeName = typeName(sf.Type)

	name := sf.Tag.Get("flag")
	if name == "" {
		name = kebab(sf.Name)
	}
	s.name = namePrefix + name
	if err := checkName(s.name); err != nil {
		return nil, fmt.Errorf("config: field %s: setting name %q %w", path, s.name, err)
	}
	s.env = sf.Tag.Get("env")
	if s.env == "" {
		s.env = envName(envPrefix, s.name)
	} else if strings.ContainsAny(s.env, "= \t\n\x00") {
		return nil, fmt.Errorf("config: field %s: invalid environment variable name %q", path, s.env)
	}
	s.def, s.hasDef = sf.Tag.Lookup("default")

	for _, b := range []struct {
		tag string
		dst *bool
	}{{"secret", &s.secret}, {"required", &s.required}} {
		if v, ok := sf.Tag.Lookup(b.tag); ok {
			x, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("config: field %s: invalid %s tag %q", path, b.tag, v)
			}
			*b.dst = x
		}
	}
	if s.elem == secretType {
		s.secret = true
	}
	return s, nil
}

func checkName(name string) error {
	switch {
	case name == configFlag || name == "help" || name == "h":
		return errors.New("is reserved")
	case strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-"):
		return errors.New("must not begin or end with -")
	case strings.ContainsFunc(name, func(r rune) bool { return r == '=' || unicode.IsSpace(r) || !unicode.IsPrint(r) }):
		return errors.New("must not contain =, spaces or control characters")
	}
	return nil
}

// kebab turns a Go name into a setting name: HTTPAddr → http-addr, UserID → user-id,
// S3Bucket → s3-bucket.
func kebab(s string) string {
	rs := []rune(s)
	var b strings.Builder
	for i, r := range rs {
		switch {
		case r == '_':
			b.WriteByte('-')
		case unicode.IsUpper(r):
			if i > 0 {
				prev := rs[i-1]
				nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
				if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
					b.WriteByte('-')
				}
			}
			b.WriteRune(unicode.ToLower(r))
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// envName returns the default environment variable of a setting: PREFIX_SETTING_NAME.
func envName(prefix, name string) string {
	n := strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))
	if prefix == "" {
		return n
	}
	return prefix + "_" + n
}

func (s *setting) label() string { return "-" + s.name + " (" + s.env + ")" }

func (s *setting) mask(text string) string {
	if s.secret && text != "" {
		return mask
	}
	return text
}

// set decodes r and stores it in the field; nothing is stored on error.
func (s *setting) set(root reflect.Value, r raw, src Source, file string) error {
	v, err := decode(s, r)
	if err != nil {
		msg := fmt.Sprintf("config: %s %s: %s", s.label(), from(src, file), err.text(s.secret))
		e := &settingError{msg: msg}
		if !s.secret {
			e.err = err.cause
		}
		return e
	}
	root.FieldByIndex(s.index).Set(v)
	s.src, s.file = src, file
	return nil
}

// secretValues returns the current values of secret settings, longest first, to be masked
// in error messages.
func (sc *schema) secretValues(root reflect.Value) []string {
	var out []string
	for _, s := range sc.settings {
		v := root.FieldByIndex(s.index)
		if !s.secret || v.IsZero() {
			continue
		}
		out = append(out, format(v))
		switch s.shape {
		case list:
			for i := range v.Len() {
				out = append(out, format(v.Index(i)))
			}
		case mapping:
			for it := v.MapRange(); it.Next(); {
				out = append(out, format(it.Value()))
			}
		}
	}
	out = slices.DeleteFunc(out, func(s string) bool { return s == "" })
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(out)
}

// validateError turns an error of a group's Validate method into a Load error.
func (sc *schema) validateError(root reflect.Value, g group, err error) error {
	if fe, ok := errors.AsType[*FieldError](err); ok {
		if s := sc.resolve(g, fe.Field); s != nil {
			reason := "invalid"
			if fe.Err != nil {
				reason = fe.Err.Error()
			}
			value := ""
			if !s.secret {
				value = " " + strconv.Quote(format(root.FieldByIndex(s.index)))
			}
			msg := fmt.Sprintf("config: %s %s: invalid value%s: %s", s.label(), from(s.src, s.file), value, reason)
			return &settingError{msg: msg, err: err}
		}
	}
	if g.name == "" {
		return &settingError{msg: "config: " + err.Error(), err: err}
	}
	return &settingError{msg: "config: " + g.name + ": " + err.Error(), err: err}
}

// resolve finds the setting of the field named by the dotted Go path field, relative to
// the group g; promoted fields of embedded structs resolve as in Go.
func (sc *schema) resolve(g group, field string) *setting {
	t, idx := g.typ, slices.Clone(g.index)
	for part := range strings.SplitSeq(field, ".") {
		if t.Kind() != reflect.Struct {
			return nil
		}
		sf, ok := t.FieldByName(part)
		if !ok {
			return nil
		}
		idx = append(idx, sf.Index...)
		t = sf.Type
	}
	for _, s := range sc.settings {
		if slices.Equal(s.index, idx) {
			return s
		}
	}
	return nil
}

// flagValue records the raw values of one flag; they are decoded later, in precedence
// order, so that errors can name their source.
type flagValue struct {
	name   string
	vals   map[string][]string
	isBool bool
}

func (f *flagValue) String() string   { return "" }
func (f *flagValue) IsBoolFlag() bool { return f.isBool }
func (f *flagValue) Set(s string) error {
	f.vals[f.name] = append(f.vals[f.name], s)
	return nil
}

// parseArgs parses the command line into raw values by setting name.
func parseArgs(sc *schema, args []string) (map[string][]string, error) {
	vals := map[string][]string{}
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	for _, s := range sc.settings {
		isBool := s.shape == scalar && s.elem.Kind() == reflect.Bool && !isText(s.elem)
		fs.Var(&flagValue{name: s.name, vals: vals, isBool: isBool}, s.name, "")
	}
	fs.Var(&flagValue{name: configFlag, vals: vals}, configFlag, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, ErrHelp
		}
		return nil, fmt.Errorf("config: %w (see -help)", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("config: unexpected argument %q (see -help)", fs.Arg(0))
	}
	return vals, nil
}
