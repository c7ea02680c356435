package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// node is a configuration file's content, the same for YAML and JSON.
type node struct {
	kind  nodeKind
	value string // nodeScalar
	items []node // nodeList
	keys  []string
	vals  []node // nodeMap, in file order (JSON: sorted by key)
	line  int    // 0 if unknown
}

type nodeKind uint8

const (
	nodeNull nodeKind = iota
	nodeScalar
	nodeList
	nodeMap
)

// readFile reads a YAML or JSON configuration file; its top level must be a mapping.
func readFile(path string) (node, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return node{}, fmt.Errorf("config: reading configuration file: %w", err)
	}
	var n node
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".yaml", ".yml":
		n, err = parseYAML(data)
	case ".json":
		n, err = parseJSON(data)
	default:
		return node{}, fmt.Errorf("config: file %s: unknown format %q; want .yaml, .yml or .json", path, ext)
	}
	if err != nil {
		return node{}, fmt.Errorf("config: file %s: %w", path, err)
	}
	switch n.kind {
	case nodeNull:
		return node{kind: nodeMap}, nil
	case nodeMap:
		return n, nil
	}
	return node{}, fmt.Errorf("config: file %s: the top level must be a mapping of setting names to values", path)
}

func parseYAML(data []byte) (node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return node{}, err
	}
	if len(doc.Content) == 0 {
		return node{}, nil
	}
	return fromYAML(doc.Content[0], 0)
}

func fromYAML(y *yaml.Node, depth int) (node, error) {
	if depth > 100 {
		return node{}, errors.New("nested too deeply")
	}
	for y.Kind == yaml.AliasNode && y.Alias != nil {
		y = y.Alias
	}
	n := node{line: y.Line}
	switch y.Kind {
	case yaml.ScalarNode:
		if y.Tag == "!!null" {
			return n, nil
		}
		n.kind, n.value = nodeScalar, y.Value
	case yaml.SequenceNode:
		n.kind = nodeList
		for _, c := range y.Content {
			cn, err := fromYAML(c, depth+1)
			if err != nil {
				return node{}, err
			}
			n.items = append(n.items, cn)
		}
	case yaml.MappingNode:
		n.kind = nodeMap
		for i := 0; i+1 < len(y.Content); i += 2 {
			k, v := y.Content[i], y.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return node{}, fmt.Errorf("line %d: a key must be a name", k.Line)
			}
			vn, err := fromYAML(v, depth+1)
			if err != nil {
				return node{}, err
			}
			vn.line = k.Line
			n.keys = append(n.keys, k.Value)
			n.vals = append(n.vals, vn)
		}
	default:
		return node{}, fmt.Errorf("line %d: unsupported YAML node", y.Line)
	}
	return n, nil
}

func parseJSON(data []byte) (node, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return node{}, nil
		}
		return node{}, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return node{}, errors.New("data after the top-level value")
	}
	return fromJSON(v), nil
}

func fromJSON(v any) node {
	switch v := v.(type) {
	case nil:
		return node{}
	case string:
		return node{kind: nodeScalar, value: v}
	case json.Number:
		return node{kind: nodeScalar, value: v.String()}
	case bool:
		return node{kind: nodeScalar, value: fmt.Sprint(v)}
	case []any:
		n := node{kind: nodeList}
		for _, it := range v {
			n.items = append(n.items, fromJSON(it))
		}
		return n
	case map[string]any:
		n := node{kind: nodeMap}
		for _, k := range slices.Sorted(maps.Keys(v)) {
			n.keys = append(n.keys, k)
			n.vals = append(n.vals, fromJSON(v[k]))
		}
		return n
	}
	return node{kind: nodeScalar, value: fmt.Sprint(v)}
}

// applyFile sets the settings named in the mapping n, whose keys are prefixed with prefix.
// seen catches a setting given twice, say as "log-level" and as "log: {level: …}".
func (sc *schema) applyFile(root reflect.Value, n node, prefix, path string, seen map[string]bool) error {
	for i, key := range n.keys {
		name := prefix + strings.ReplaceAll(key, "_", "-")
		v := n.vals[i]
		s := sc.byName[name]
		isGroup := v.kind == nodeMap && sc.hasPrefix(name+"-")
		if s != nil && (!isGroup || s.shape == mapping) {
			if seen[name] {
				return fmt.Errorf("config: file %s%s: setting %q is given twice", path, lineOf(v), name)
			}
			seen[name] = true
			if v.kind == nodeNull {
				continue
			}
			r, err := v.raw()
			if err != nil {
				return fmt.Errorf("config: %s from file %s%s: %w", s.label(), path, lineOf(v), err)
			}
			if err := s.set(root, r, SourceFile, path+lineOf(v)); err != nil {
				return err
			}
			continue
		}
		if isGroup {
			if err := sc.applyFile(root, v, name+"-", path, seen); err != nil {
				return err
			}
			continue
		}
		return fmt.Errorf("config: file %s%s: unknown setting %q (see -help)", path, lineOf(v), name)
	}
	return nil
}

func (sc *schema) hasPrefix(p string) bool {
	for _, s := range sc.settings {
		if strings.HasPrefix(s.name, p) {
			return true
		}
	}
	return false
}

func lineOf(n node) string {
	if n.line == 0 {
		return ""
	}
	return fmt.Sprintf(" line %d", n.line)
}

// raw converts a file value to a raw value; lists and mappings must hold single values.
func (n node) raw() (raw, error) {
	switch n.kind {
	case nodeList:
		r := raw{form: rawItems, items: []string{}}
		for _, it := range n.items {
			if it.kind != nodeScalar {
				return raw{}, errors.New("a list item must be a single value")
			}
			r.items = append(r.items, it.value)
		}
		return r, nil
	case nodeMap:
		r := raw{form: rawPairs, pairs: [][2]string{}}
		for i, k := range n.keys {
			if n.vals[i].kind != nodeScalar {
				return raw{}, fmt.Errorf("the value of %q must be a single value", k)
			}
			r.pairs = append(r.pairs, [2]string{k, n.vals[i].value})
		}
		return r, nil
	}
	return raw{str: n.value}, nil
}
