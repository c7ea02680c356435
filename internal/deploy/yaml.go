package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// omap is a YAML mapping that keeps its keys in the order they were added, so rendered
// manifests read as Kubernetes documents usually do (apiVersion, kind, metadata, spec).
type omap []kv

type kv struct {
	k string
	v any
}

// MarshalYAML encodes the mapping in order; nil values are written as null.
func (m omap) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, e := range m {
		var v yaml.Node
		if e.v == nil {
			v = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
		} else if err := v.Encode(e.v); err != nil {
			return nil, fmt.Errorf("%s: %w", e.k, err)
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: e.k}, &v)
	}
	return n, nil
}

// get returns the value of key k.
func (m omap) get(k string) (any, bool) {
	for _, e := range m {
		if e.k == k {
			return e.v, true
		}
	}
	return nil, false
}

// set replaces the value of key k, or appends it.
func (m omap) set(k string, v any) omap {
	for i := range m {
		if m[i].k == k {
			m[i].v = v
			return m
		}
	}
	return append(m, kv{k, v})
}

// without returns m without key k.
func (m omap) without(k string) omap {
	out := make(omap, 0, len(m))
	for _, e := range m {
		if e.k != k {
			out = append(out, e)
		}
	}
	return out
}

// mergeByName lists the keys whose list values Kubernetes' strategic merge patch merges
// element by element, matching elements by their "name".
var mergeByName = map[string]bool{"containers": true, "initContainers": true, "env": true, "volumes": true, "volumeMounts": true}

// diff returns the strategic merge patch that turns a into b: changed and new keys, null
// for removed keys, lists of named elements merged by name. Other lists must not differ;
// the renderer never changes one between overlays, and a patch could not express it
// without $patch directives.
func diff(path string, a, b omap) (omap, error) {
	var p omap
	for _, e := range b {
		av, ok := a.get(e.k)
		if !ok {
			p = append(p, e)
			continue
		}
		if reflect.DeepEqual(av, e.v) {
			continue
		}
		switch bv := e.v.(type) {
		case omap:
			am, ok := av.(omap)
			if !ok {
				p = append(p, e)
				continue
			}
			d, err := diff(path+"."+e.k, am, bv)
			if err != nil {
				return nil, err
			}
			p = append(p, kv{e.k, d})
		case []any:
			al, ok := av.([]any)
			if !ok || !mergeByName[e.k] {
				return nil, fmt.Errorf("deploy: %s.%s: a list differs between base and overlay", path, e.k)
			}
			d, err := diffNamed(path+"."+e.k, al, bv)
			if err != nil {
				return nil, err
			}
			p = append(p, kv{e.k, d})
		default:
			p = append(p, e)
		}
	}
	for _, e := range a {
		if _, ok := b.get(e.k); !ok {
			p = append(p, kv{e.k, nil})
		}
	}
	return p, nil
}

func diffNamed(path string, a, b []any) ([]any, error) {
	named := func(l []any) (map[string]omap, error) {
		m := map[string]omap{}
		for _, x := range l {
			o, ok := x.(omap)
			n, _ := o.get("name")
			if s, isStr := n.(string); ok && isStr {
				m[s] = o
				continue
			}
			return nil, fmt.Errorf("deploy: %s: an element has no name", path)
		}
		return m, nil
	}
	am, err := named(a)
	if err != nil {
		return nil, err
	}
	bm, err := named(b)
	if err != nil {
		return nil, err
	}
	for name := range am {
		if _, ok := bm[name]; !ok {
			return nil, fmt.Errorf("deploy: %s: element %s removed between base and overlay", path, name)
		}
	}
	// Elements the base lacks are added: kustomize's strategic merge puts them before
	// the base's, in the patch's order, so they must come first.
	var out []any
	base := false
	for _, x := range b {
		o := x.(omap)
		name, _ := o.get("name")
		old, ok := am[name.(string)]
		if !ok {
			if base {
				return nil, fmt.Errorf("deploy: %s: element %v is added after the base's; a patch would put it first", path, name)
			}
			out = append(out, o)
			continue
		}
		base = true
		if reflect.DeepEqual(old, o) {
			continue
		}
		d, err := diff(fmt.Sprintf("%s[%v]", path, name), old, o)
		if err != nil {
			return nil, err
		}
		out = append(out, append(omap{{"name", name}}, d...))
	}
	return out, nil
}

// encodeDocs writes objects as one YAML stream, documents separated by "---".
func encodeDocs(w io.Writer, header string, docs ...omap) error {
	if header != "" {
		if _, err := io.WriteString(w, header); err != nil {
			return err
		}
	}
	for i, d := range docs {
		if i > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		var b bytes.Buffer
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		if err := enc.Encode(d); err != nil {
			return fmt.Errorf("deploy: encoding %s: %w", describeObj(d), err)
		}
		if err := enc.Close(); err != nil {
			return err
		}
		if _, err := w.Write(b.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

func describeObj(d omap) string {
	kind, _ := d.get("kind")
	meta, _ := d.get("metadata")
	m, _ := meta.(omap)
	name, _ := m.get("name")
	return fmt.Sprintf("%v/%v", kind, name)
}

// Object is a decoded Kubernetes object, as read from a manifest: YAML mappings are
// map[string]any and sequences []any.
type Object map[string]any

// Kind returns the object's kind.
func (o Object) Kind() string { s, _ := o["kind"].(string); return s }

// Name returns metadata.name.
func (o Object) Name() string { return o.str("metadata", "name") }

// ID returns "Kind/name".
func (o Object) ID() string { return o.Kind() + "/" + o.Name() }

// Get returns the value at the path of mapping keys, or nil.
func (o Object) Get(path ...string) any {
	var cur any = map[string]any(o)
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func (o Object) str(path ...string) string { s, _ := o.Get(path...).(string); return s }

// ReadObjects decodes a YAML stream of Kubernetes objects, skipping empty documents.
func ReadObjects(r io.Reader) ([]Object, error) {
	dec := yaml.NewDecoder(r)
	var out []Object
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("deploy: decoding manifests: %w", err)
		}
		if len(m) > 0 {
			out = append(out, Object(m))
		}
	}
}

// header is the first line of every rendered file.
const header = "# Code generated by svckit deploy render; DO NOT EDIT.\n"

// generated reports whether a file's content starts with the rendered-file header.
func generated(b []byte) bool { return strings.HasPrefix(string(b), header) }
