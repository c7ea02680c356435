package config

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

var (
	durationType        = reflect.TypeFor[time.Duration]()
	secretType          = reflect.TypeFor[Secret]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
)

// shape is the form of a setting's value.
type shape uint8

const (
	scalar  shape = iota
	list          // a slice of scalars
	mapping       // a map from a string type to scalars
)

func isText(t reflect.Type) bool { return reflect.PointerTo(t).Implements(textUnmarshalerType) }

func isGroup(t reflect.Type) bool { return t.Kind() == reflect.Struct && !isText(t) }

func isScalar(t reflect.Type) bool {
	if t == durationType || isText(t) {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// classify returns the shape of a setting of type t and its scalar type; ok is false if t
// is not a supported type.
func classify(t reflect.Type) (sh shape, elem reflect.Type, ok bool) {
	switch {
	case isScalar(t):
		return scalar, t, true
	case t.Kind() == reflect.Slice && isScalar(t.Elem()):
		return list, t.Elem(), true
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String && isScalar(t.Elem()):
		return mapping, t.Elem(), true
	}
	return 0, nil, false
}

// typeName names t for -help: string, bool, int, uint, float, duration, the lower-case
// name of a TextUnmarshaler type, []T, map[string]T.
func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration"
	case isText(t):
		if t.Name() == "" {
			return "value"
		}
		return strings.ToLower(t.Name())
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "int"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "uint"
	case reflect.Float32, reflect.Float64:
		return "float"
	case reflect.Slice:
		return "[]" + typeName(t.Elem())
	case reflect.Map:
		return "map[string]" + typeName(t.Elem())
	}
	return t.Kind().String()
}

// raw is a value before decoding: text from a default tag, the environment, flags or a
// file scalar, or a list or mapping from a file.
type raw struct {
	str   string
	form  rawForm
	items []string    // form == rawItems
	pairs [][2]string // form == rawPairs
}

type rawForm uint8

const (
	rawString rawForm = iota
	rawItems
	rawPairs
)

// valueError says why a raw value does not decode.
type valueError struct {
	value string // the offending text
	typ   string // the type it should have had
	msg   string // a message instead of value and typ
	cause error
}

// text describes the error; for a secret it shows neither the value nor a cause that may
// quote it.
func (e *valueError) text(secret bool) string {
	if e.msg != "" {
		return e.msg
	}
	reason := ""
	if e.cause != nil {
		reason = ": " + e.cause.Error()
		if ne, ok := errors.AsType[*strconv.NumError](e.cause); ok {
			reason = ": " + ne.Err.Error()
		} else if secret {
			reason = ""
		}
	}
	if secret {
		return "invalid value for " + e.typ + reason
	}
	return fmt.Sprintf("invalid value %q for %s%s", e.value, e.typ, reason)
}

// decode turns r into a value of the setting's type.
func decode(s *setting, r raw) (reflect.Value, *valueError) {
	switch s.shape {
	case scalar:
		if r.form != rawString {
			return reflect.Value{}, &valueError{msg: "want a single value, got a " + r.formName()}
		}
		return parseScalar(s.typ, r.str)
	case list:
		items := r.items
		switch r.form {
		case rawString:
			items = splitList(r.str)
		case rawPairs:
			return reflect.Value{}, &valueError{msg: "want a list, got a mapping"}
		}
		v := reflect.MakeSlice(s.typ, 0, len(items))
		if len(items) == 0 {
			return reflect.Zero(s.typ), nil
		}
		for _, it := range items {
			e, err := parseScalar(s.elem, it)
			if err != nil {
				return reflect.Value{}, err
			}
			v = reflect.Append(v, e)
		}
		return v, nil
	default: // mapping
		pairs := r.pairs
		switch r.form {
		case rawString:
			for _, it := range splitList(r.str) {
				k, v, ok := strings.Cut(it, "=")
				if !ok {
					return reflect.Value{}, &valueError{value: it, typ: s.typeName, cause: errors.New("want key=value")}
				}
				pairs = append(pairs, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
			}
		case rawItems:
			return reflect.Value{}, &valueError{msg: "want a mapping, got a list"}
		}
		if len(pairs) == 0 {
			return reflect.Zero(s.typ), nil
		}
		m := reflect.MakeMapWithSize(s.typ, len(pairs))
		for _, p := range pairs {
			e, err := parseScalar(s.elem, p[1])
			if err != nil {
				return reflect.Value{}, err
			}
			m.SetMapIndex(reflect.ValueOf(p[0]).Convert(s.typ.Key()), e)
		}
		return m, nil
	}
}

func (r raw) formName() string {
	switch r.form {
	case rawItems:
		return "list"
	case rawPairs:
		return "mapping"
	}
	return "single value"
}

// splitList splits comma-separated text, trimming spaces and dropping empty items.
func splitList(s string) []string {
	var out []string
	for it := range strings.SplitSeq(s, ",") {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out
}

// parseScalar parses s as a value of the scalar type t.
func parseScalar(t reflect.Type, s string) (reflect.Value, *valueError) {
	v := reflect.New(t).Elem()
	var err error
	switch {
	case t == durationType:
		var d time.Duration
		d, err = time.ParseDuration(s)
		v.SetInt(int64(d))
	case isText(t):
		err = v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s))
	default:
		switch t.Kind() {
		case reflect.String:
			v.SetString(s)
		case reflect.Bool:
			var b bool
			b, err = strconv.ParseBool(s)
			v.SetBool(b)
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			var n int64
			n, err = strconv.ParseInt(s, 0, t.Bits())
			v.SetInt(n)
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			var n uint64
			n, err = strconv.ParseUint(s, 0, t.Bits())
			v.SetUint(n)
		case reflect.Float32, reflect.Float64:
			var f float64
			f, err = strconv.ParseFloat(s, t.Bits())
			v.SetFloat(f)
		}
	}
	if err != nil {
		return reflect.Value{}, &valueError{value: s, typ: typeName(t), cause: err}
	}
	return v, nil
}

// format returns v as text that parses back to v: lists and maps comma-separated, maps
// sorted by key.
func format(v reflect.Value) string {
	t := v.Type()
	switch {
	case t == durationType:
		return time.Duration(v.Int()).String()
	case t.Implements(textMarshalerType):
		return marshalText(v.Interface().(encoding.TextMarshaler))
	case v.CanAddr() && reflect.PointerTo(t).Implements(textMarshalerType):
		return marshalText(v.Addr().Interface().(encoding.TextMarshaler))
	}
	switch t.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, t.Bits())
	case reflect.Slice:
		items := make([]string, v.Len())
		for i := range items {
			items[i] = format(v.Index(i))
		}
		return strings.Join(items, ",")
	case reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		items := make([]string, len(keys))
		for i, k := range keys {
			items[i] = k.String() + "=" + format(v.MapIndex(k))
		}
		return strings.Join(items, ",")
	}
	return fmt.Sprint(v.Interface())
}

func marshalText(m encoding.TextMarshaler) string {
	b, err := m.MarshalText()
	if err != nil {
		return "!" + err.Error()
	}
	return string(b)
}
