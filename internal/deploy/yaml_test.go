package deploy

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// TestDiffMerge checks that the patches diff writes, applied by merge (the strategic
// merge rules BuildTree follows), turn the base into the overlay's object.
func TestDiffMerge(t *testing.T) {
	c := func(name, cpu string, env ...any) omap {
		return omap{{"name", name}, {"resources", omap{{"cpu", cpu}}}, {"env", env}}
	}
	e := func(name, v string) omap { return omap{{"name", name}, {"value", v}} }
	tests := []struct {
		name    string
		a, b    omap
		want    string // the patch as YAML; "" for no difference
		wantErr string
	}{
		{name: "equal", a: omap{{"x", 1}}, b: omap{{"x", 1}}},
		{name: "changed scalar", a: omap{{"x", 1}, {"y", 2}}, b: omap{{"x", 1}, {"y", 3}}, want: "y: 3\n"},
		{name: "removed key", a: omap{{"x", 1}, {"y", 2}}, b: omap{{"x", 1}}, want: "y: null\n"},
		{name: "added key", a: omap{{"x", 1}}, b: omap{{"x", 1}, {"z", "new"}}, want: "z: new\n"},
		{name: "nested", a: omap{{"m", omap{{"a", 1}, {"b", 2}}}}, b: omap{{"m", omap{{"a", 1}, {"b", 5}}}}, want: "m:\n  b: 5\n"},
		{
			name: "containers by name",
			a:    omap{{"containers", []any{c("a", "1", e("X", "1")), c("b", "1", e("Y", "1"))}}},
			b:    omap{{"containers", []any{c("a", "1", e("X", "1")), c("b", "2", e("Y", "2"))}}},
			want: "containers:\n  - name: b\n    resources:\n      cpu: \"2\"\n    env:\n      - name: \"Y\"\n        value: \"2\"\n",
		},
		{name: "unnamed list", a: omap{{"args", []any{"a"}}}, b: omap{{"args", []any{"b"}}}, wantErr: "a list differs"},
		{name: "element added", a: omap{{"env", []any{e("A", "1")}}}, b: omap{{"env", []any{e("B", "1"), e("A", "1")}}},
			want: "env:\n  - name: B\n    value: \"1\"\n"},
		{name: "element added last", a: omap{{"env", []any{e("A", "1")}}}, b: omap{{"env", []any{e("A", "1"), e("B", "1")}}}, wantErr: "added after the base's"},
		{name: "element removed", a: omap{{"env", []any{e("A", "1"), e("B", "1")}}}, b: omap{{"env", []any{e("A", "1")}}}, wantErr: "element B removed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := diff("x", tt.a, tt.b)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("diff error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got string
			if len(p) > 0 {
				var b bytes.Buffer
				if err := encodeDocs(&b, "", p); err != nil {
					t.Fatal(err)
				}
				got = b.String()
			}
			if got != tt.want {
				t.Fatalf("patch:\n%s\nwant:\n%s", got, tt.want)
			}
			// Applying the patch to a must give b.
			base, want, patch := decode(t, tt.a), decode(t, tt.b), decode(t, p)
			merge(base, patch)
			if !reflect.DeepEqual(map[string]any(base), map[string]any(want)) {
				t.Errorf("base+patch = %v, want %v", base, want)
			}
		})
	}
}

func decode(t *testing.T, m omap) Object {
	t.Helper()
	var b bytes.Buffer
	if err := encodeDocs(&b, "", m); err != nil {
		t.Fatal(err)
	}
	objs, err := ReadObjects(&b)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) == 0 {
		return Object{}
	}
	return objs[0]
}
