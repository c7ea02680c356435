package binding

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ParseConfig reads a configuration in YAML or JSON (which is YAML too):
//
//	bindings:
//	  - name: github
//	    type: webhook
//	    path: /hooks/github
//	    secret: env:GITHUB_WEBHOOK_SECRET
//	    signature: {header: X-Hub-Signature-256, prefix: "sha256="}
//	  - name: github-events
//	    type: nats-publish
//	    subject: events.github
//	    jetstream: true
//	pipelines:
//	  - from: github
//	    to: [github-events]
//
// Each binding has a name, a type and the settings of that type; unknown settings,
// values of the wrong type and missing names are errors (*ConfigError) naming the
// binding, the field and the line.
func ParseConfig(data []byte) (Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Config{}, &ConfigError{Err: cleanYAML(err)}
	}
	var cfg Config
	if len(doc.Content) == 0 {
		return cfg, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return cfg, &ConfigError{Line: root.Line, Err: errors.New("the top level must be a mapping with bindings and pipelines")}
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "bindings":
			if v.Kind != yaml.SequenceNode {
				return cfg, &ConfigError{Field: "bindings", Line: v.Line, Err: errors.New("want a list")}
			}
			for j, item := range v.Content {
				s, err := parseSpec(item, j)
				if err != nil {
					return cfg, err
				}
				cfg.Bindings = append(cfg.Bindings, s)
			}
		case "pipelines":
			if v.Kind != yaml.SequenceNode {
				return cfg, &ConfigError{Field: "pipelines", Line: v.Line, Err: errors.New("want a list")}
			}
			for j, item := range v.Content {
				var p Pipeline
				if err := decodeStruct(item, reflect.ValueOf(&p).Elem(), ""); err != nil {
					return cfg, inBinding(fmt.Sprintf("pipeline %d", j+1), item.Line, err)
				}
				cfg.Pipelines = append(cfg.Pipelines, p)
			}
		default:
			return cfg, &ConfigError{Field: k.Value, Line: k.Line, Err: errors.New("unknown setting; want bindings or pipelines")}
		}
	}
	return cfg, nil
}

// parseSpec reads the j-th binding.
func parseSpec(n *yaml.Node, j int) (Spec, error) {
	s := Spec{Line: n.Line}
	label := fmt.Sprintf("#%d", j+1)
	if n.Kind != yaml.MappingNode {
		return s, &ConfigError{Binding: label, Line: n.Line, Err: errors.New("want a mapping with name, type and settings")}
	}
	rest := &yaml.Node{Kind: yaml.MappingNode, Line: n.Line}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "name", "type":
			if v.Kind != yaml.ScalarNode {
				return s, &ConfigError{Binding: label, Field: k.Value, Line: v.Line, Err: errors.New("want a string")}
			}
			if k.Value == "name" {
				s.Name = v.Value
			} else {
				s.Type = v.Value
			}
		default:
			rest.Content = append(rest.Content, k, v)
		}
	}
	if s.Name != "" {
		label = s.Name
	}
	if s.Name == "" {
		return s, &ConfigError{Binding: label, Field: "name", Line: n.Line, Err: errors.New("required")}
	}
	var set any
	switch s.Type {
	case TypeCron:
		s.Cron = new(CronConfig)
		set = s.Cron
	case TypeWebhook:
		s.Webhook = new(WebhookConfig)
		set = s.Webhook
	case TypeNATSSubscribe:
		s.NATSSubscribe = new(NATSSubscribeConfig)
		set = s.NATSSubscribe
	case TypeHTTPCall:
		s.HTTPCall = new(HTTPCallConfig)
		set = s.HTTPCall
	case TypeNATSPublish:
		s.NATSPublish = new(NATSPublishConfig)
		set = s.NATSPublish
	case TypeSQL:
		s.SQL = new(SQLConfig)
		set = s.SQL
	case "":
		return s, &ConfigError{Binding: label, Field: "type", Line: n.Line, Err: fmt.Errorf("required; want one of %s", typeList)}
	default:
		return s, &ConfigError{Binding: label, Field: "type", Line: n.Line, Err: fmt.Errorf("%q is unknown; want one of %s", s.Type, typeList)}
	}
	if err := decodeStruct(rest, reflect.ValueOf(set).Elem(), ""); err != nil {
		return s, inBinding(label, n.Line, err)
	}
	return s, nil
}

var durationType = reflect.TypeFor[time.Duration]()

// decodeStruct decodes the mapping n into the struct v by yaml tags, rejecting unknown
// and repeated keys, with an error naming the field for each failure.
func decodeStruct(n *yaml.Node, v reflect.Value, prefix string) error {
	if n.Kind != yaml.MappingNode {
		return &ConfigError{Field: strings.TrimSuffix(prefix, "."), Line: n.Line, Err: errors.New("want a mapping")}
	}
	t := v.Type()
	index := make(map[string]int, t.NumField())
	var names []string
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag != "" && tag != "-" {
			index[tag] = i
			names = append(names, tag)
		}
	}
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		field := prefix + k.Value
		fi, ok := index[k.Value]
		if !ok {
			return &ConfigError{Field: field, Line: k.Line, Err: fmt.Errorf("unknown setting; want one of %s", strings.Join(names, ", "))}
		}
		if seen[k.Value] {
			return &ConfigError{Field: field, Line: k.Line, Err: errors.New("set twice")}
		}
		seen[k.Value] = true
		fv := v.Field(fi)
		if fv.Kind() == reflect.Struct && fv.Type() != durationType {
			if err := decodeStruct(val, fv, field+"."); err != nil {
				return err
			}
			continue
		}
		if err := decodeValue(val, fv); err != nil {
			return &ConfigError{Field: field, Line: val.Line, Err: err}
		}
	}
	return nil
}

// decodeValue decodes a scalar, list or map node into fv, accepting a plain number of
// seconds only where no duration is expected.
func decodeValue(n *yaml.Node, fv reflect.Value) error {
	if fv.Type() == durationType && n.Kind == yaml.ScalarNode {
		d, err := time.ParseDuration(n.Value)
		if err != nil {
			return fmt.Errorf("%q is not a duration such as 500ms or 10s", n.Value)
		}
		fv.SetInt(int64(d))
		return nil
	}
	if fv.Kind() == reflect.Slice && fv.Type().Elem() == durationType && n.Kind == yaml.SequenceNode {
		out := make([]time.Duration, 0, len(n.Content))
		for _, c := range n.Content {
			d, err := time.ParseDuration(c.Value)
			if err != nil || c.Kind != yaml.ScalarNode {
				return fmt.Errorf("%q is not a duration such as 500ms or 10s", c.Value)
			}
			out = append(out, d)
		}
		fv.Set(reflect.ValueOf(out))
		return nil
	}
	p := reflect.New(fv.Type())
	if err := n.Decode(p.Interface()); err != nil {
		return cleanYAML(err)
	}
	fv.Set(p.Elem())
	return nil
}

var yamlLine = regexp.MustCompile(`^line \d+: `)

// cleanYAML turns a yaml error into one line without the "yaml: unmarshal errors" frame.
func cleanYAML(err error) error {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	s = strings.TrimPrefix(s, "unmarshal errors:\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = yamlLine.ReplaceAllString(strings.TrimSpace(l), "")
	}
	lines = slices.DeleteFunc(lines, func(l string) bool { return l == "" })
	return errors.New(strings.Join(lines, "; "))
}
