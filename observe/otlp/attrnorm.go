package otlp

import "go.opentelemetry.io/otel/attribute"

// normValue normalizes a nested attribute value as the SDK does: the keys of a MAP are
// deduplicated (of equal keys, which a MAP keeps adjacent, the last wins) and nesting is
// cut at depth levels (a negative depth: no limit), a SLICE, MAP or typed slice at depth
// 0 becoming an empty value. It reports whether v changed. AsSlice and AsMap return
// copies, which it may modify.
func normValue(v attribute.Value, depth int) (attribute.Value, bool) {
	switch v.Type() {
	case attribute.BOOLSLICE, attribute.INT64SLICE, attribute.FLOAT64SLICE, attribute.STRINGSLICE, attribute.BYTESLICE:
		if depth == 0 {
			return attribute.Value{}, true
		}
	case attribute.SLICE:
		if depth == 0 {
			return attribute.Value{}, true
		}
		xs := v.AsSlice()
		changed := false
		for i := range xs {
			if nv, ok := normValue(xs[i], depth-1); ok {
				xs[i], changed = nv, true
			}
		}
		if changed {
			return attribute.SliceValue(xs...), true
		}
	case attribute.MAP:
		if depth == 0 {
			return attribute.Value{}, true
		}
		kvs := v.AsMap()
		out := kvs[:0]
		changed := false
		for i := 0; i < len(kvs); {
			j := i + 1
			for j < len(kvs) && kvs[j].Key == kvs[i].Key {
				j++
			}
			kv := kvs[j-1]
			if j-i > 1 {
				changed = true
			}
			if nv, ok := normValue(kv.Value, depth-1); ok {
				kv.Value, changed = nv, true
			}
			out = append(out, kv)
			i = j
		}
		if changed {
			return attribute.MapValue(out...), true
		}
	}
	return v, false
}

// normAttrs returns kvs with every value normalized by normValue, as the SDK treats the
// attributes of events and links; kvs itself is not modified.
func normAttrs(kvs []attribute.KeyValue, depth int) []attribute.KeyValue {
	var out []attribute.KeyValue
	for i, kv := range kvs {
		if !nested(kv.Value.Type(), depth) {
			continue
		}
		if nv, ok := normValue(kv.Value, depth); ok {
			if out == nil {
				out = append([]attribute.KeyValue(nil), kvs...)
			}
			out[i].Value = nv
		}
	}
	if out == nil {
		return kvs
	}
	return out
}

// nested reports whether normValue may change a value of type t at depth.
func nested(t attribute.Type, depth int) bool {
	switch t {
	case attribute.SLICE, attribute.MAP:
		return true
	case attribute.BOOLSLICE, attribute.INT64SLICE, attribute.FLOAT64SLICE, attribute.STRINGSLICE, attribute.BYTESLICE:
		return depth == 0
	}
	return false
}

// truncateValue cuts the strings and byte slices in v to limit characters (bytes for
// byte slices), nested ones included, as the SDK does. It reports whether v changed.
func truncateValue(limit int, v attribute.Value) (attribute.Value, bool) {
	switch v.Type() {
	case attribute.STRING:
		if s := v.AsString(); len(s) > limit {
			if t := truncateString(limit, s); t != s {
				return attribute.StringValue(t), true
			}
		}
	case attribute.BYTESLICE:
		if s := v.AsString(); len(s) > limit {
			return attribute.ByteSliceValue([]byte(s[:limit])), true
		}
	case attribute.STRINGSLICE:
		xs := v.AsStringSlice()
		changed := false
		for i, x := range xs {
			if len(x) > limit {
				if t := truncateString(limit, x); t != x {
					xs[i], changed = t, true
				}
			}
		}
		if changed {
			return attribute.StringSliceValue(xs), true
		}
	case attribute.SLICE:
		xs := v.AsSlice()
		changed := false
		for i := range xs {
			if nv, ok := truncateValue(limit, xs[i]); ok {
				xs[i], changed = nv, true
			}
		}
		if changed {
			return attribute.SliceValue(xs...), true
		}
	case attribute.MAP:
		kvs := v.AsMap()
		changed := false
		for i := range kvs {
			if nv, ok := truncateValue(limit, kvs[i].Value); ok {
				kvs[i].Value, changed = nv, true
			}
		}
		if changed {
			return attribute.MapValue(kvs...), true
		}
	}
	return v, false
}
