package kustomizecheck

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"
)

// The modules whose files the JSON schemas are made from, each at a fixed version with
// the hash the Go checksum database has for it: the Kubernetes API's OpenAPI v3
// documents (api/openapi-spec/v3, the release of k8s.io/api this module uses), and the
// CustomResourceDefinitions of cert-manager (Certificate, Issuer) and External Secrets
// (ExternalSecret), the controllers the prod overlay relies on.
var schemaModules = map[string]struct{ version, sum string }{
	"k8s.io/kubernetes":                            {"v1.37.2", "h1:A2VDEiObzkYqFTKhSsn0ZEb0RlLEXpHWj93gi2HqEwE="},
	"github.com/cert-manager/cert-manager":         {"v1.21.2", "h1:UWgoYM+KLNtRlqmoWOKjKBOBUPVHeepQ6/ac3ERJW68="},
	"github.com/external-secrets/external-secrets": {"v0.16.2", "h1:iNY+gIgSyL5higXTfnz+hdPCaiB/43UiHLqE7HBpj68="},
}

// The CRD files of those modules.
var crdFiles = map[string][]string{
	"github.com/cert-manager/cert-manager": {
		"deploy/crds/cert-manager.io_certificates.yaml",
		"deploy/crds/cert-manager.io_issuers.yaml",
		"deploy/crds/cert-manager.io_clusterissuers.yaml",
	},
	"github.com/external-secrets/external-secrets": {
		"config/crds/bases/external-secrets.io_externalsecrets.yaml",
		"config/crds/bases/external-secrets.io_secretstores.yaml",
		"config/crds/bases/external-secrets.io_clustersecretstores.yaml",
	},
}

// moduleDir downloads a module of schemaModules through the go command (the module
// cache, else the module proxy, checked against the checksum database) and returns
// its directory, after checking its hash.
func moduleDir(path string) (string, error) {
	m := schemaModules[path]
	tmp, err := os.MkdirTemp("", "moddownload-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("go", "mod", "download", "-json", path+"@"+m.version)
	cmd.Dir = tmp // outside any module: nothing here changes go.mod or go.sum
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	var info struct{ Dir, Sum, Error string }
	if jerr := json.Unmarshal(out, &info); jerr != nil || err != nil || info.Error != "" {
		return "", fmt.Errorf("go mod download %s@%s: %v %v %s", path, m.version, err, jerr, info.Error)
	}
	if info.Sum != m.sum {
		return "", fmt.Errorf("%s@%s: hash %s, want %s", path, m.version, info.Sum, m.sum)
	}
	return info.Dir, nil
}

// schemaDir is a directory of strict JSON schemas, one per kind, named as kubeconform's
// schema location template DIR/{{ .ResourceKind }}{{ .KindSuffix }}.json expects:
// deployment-apps-v1.json, service-v1.json, certificate-cert-manager-v1.json.
type schemaDir struct {
	dir   string
	kinds []string // group/version/kind of every schema written
}

var (
	schemasOnce sync.Once
	schemas     schemaDir
	schemasErr  error
)

// TestMain removes the schema directory when the tests are done.
func TestMain(m *testing.M) {
	code := m.Run()
	if schemas.dir != "" {
		os.RemoveAll(schemas.dir)
	}
	os.Exit(code)
}

// kubeSchemas makes the schema directory once per test binary.
func kubeSchemas(t *testing.T) schemaDir {
	t.Helper()
	schemasOnce.Do(func() {
		dirs := map[string]string{}
		for p := range schemaModules {
			if dirs[p], schemasErr = moduleDir(p); schemasErr != nil {
				return
			}
		}
		schemas, schemasErr = makeSchemas(dirs)
	})
	if schemasErr != nil {
		t.Fatal(schemasErr)
	}
	return schemas
}

// schemaFile is the file name kubeconform's KindSuffix gives a kind: the first label
// of the group and the version, lower-case.
func schemaFile(group, version, kind string) string {
	suffix := ""
	if group != "" {
		suffix = "-" + strings.ToLower(strings.SplitN(group, ".", 2)[0])
	}
	return strings.ToLower(kind) + suffix + "-" + strings.ToLower(version) + ".json"
}

func makeSchemas(dirs map[string]string) (schemaDir, error) {
	out, err := os.MkdirTemp("", "kubeschemas-")
	if err != nil {
		return schemaDir{}, err
	}
	sd := schemaDir{dir: out}
	write := func(group, version, kind string, doc map[string]any) error {
		b, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		sd.kinds = append(sd.kinds, strings.TrimPrefix(group+"/"+version+"/"+kind, "/"))
		return os.WriteFile(filepath.Join(out, schemaFile(group, version, kind)), b, 0o644)
	}

	// The Kubernetes API: every component schema of every group-version document,
	// and one file per kind that holds the kind's schema and, under definitions,
	// those it refers to.
	specs, err := filepath.Glob(filepath.Join(dirs["k8s.io/kubernetes"], "api", "openapi-spec", "v3", "*.json"))
	if err != nil || len(specs) == 0 {
		return sd, fmt.Errorf("no OpenAPI v3 documents in k8s.io/kubernetes: %v", err)
	}
	all := map[string]any{}
	for _, f := range specs {
		b, err := os.ReadFile(f)
		if err != nil {
			return sd, err
		}
		var doc struct {
			Components struct {
				Schemas map[string]any `json:"schemas"`
			} `json:"components"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return sd, fmt.Errorf("%s: %w", f, err)
		}
		for name, s := range doc.Components.Schemas {
			all[name] = s
		}
	}
	for _, name := range sortedKeys(all) {
		s := asMap(all[name])
		for _, g := range asList(s["x-kubernetes-group-version-kind"]) {
			gvk := asMap(g)
			group, _ := gvk["group"].(string)
			version, _ := gvk["version"].(string)
			kind, _ := gvk["kind"].(string)
			defs := map[string]any{}
			refs(s, all, defs)
			doc := strictSchema(s).(map[string]any)
			for n, d := range defs {
				defs[n] = strictSchema(d)
			}
			doc["definitions"] = defs
			if err := write(group, version, kind, doc); err != nil {
				return sd, err
			}
		}
	}

	// Custom resources: the openAPIV3Schema of each served version of each CRD.
	for mod, files := range crdFiles {
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(dirs[mod], filepath.FromSlash(f)))
			if err != nil {
				return sd, err
			}
			var crd map[string]any
			if err := yaml.Unmarshal(b, &crd); err != nil {
				return sd, fmt.Errorf("%s: %w", f, err)
			}
			spec := asMap(crd["spec"])
			group, _ := spec["group"].(string)
			kind, _ := asMap(spec["names"])["kind"].(string)
			for _, v := range asList(spec["versions"]) {
				ver := asMap(v)
				if ver["served"] != true {
					continue
				}
				s := asMap(asMap(ver["schema"])["openAPIV3Schema"])
				if s == nil {
					return sd, fmt.Errorf("%s: version %v has no schema", f, ver["name"])
				}
				if err := write(group, fmt.Sprint(ver["name"]), kind, strictSchema(s).(map[string]any)); err != nil {
					return sd, err
				}
			}
		}
	}
	sort.Strings(sd.kinds)
	return sd, nil
}

const refPrefix = "#/components/schemas/"

// refs adds to defs every component schema that s refers to, directly or not.
func refs(s any, all, defs map[string]any) {
	v := asMap(s)
	if r, ok := v["$ref"].(string); ok && strings.HasPrefix(r, refPrefix) {
		name := strings.TrimPrefix(r, refPrefix)
		if _, seen := defs[name]; !seen {
			defs[name] = all[name]
			refs(all[name], all, defs)
		}
	}
	for k, x := range v {
		switch k {
		case "properties", "patternProperties", "definitions":
			for _, sub := range asMap(x) {
				refs(sub, all, defs)
			}
		case "items", "additionalProperties", "not", "additionalItems":
			refs(x, all, defs)
		case "allOf", "anyOf", "oneOf":
			for _, sub := range asList(x) {
				refs(sub, all, defs)
			}
		}
	}
}

// strictSchema converts an OpenAPI v3 schema of the Kubernetes API or of a CRD into a
// JSON schema (draft 4, as kubeconform compiles them) that refuses what the API server
// would not store:
//
//   - an object schema with properties and no additionalProperties gets
//     additionalProperties false, unless x-kubernetes-preserve-unknown-fields keeps
//     unknown fields — as kubeconform's strict schemas (openapi2jsonschema -strict) do;
//   - x-kubernetes-int-or-string becomes a choice of integer and string;
//   - nullable adds null to the type;
//   - references move from #/components/schemas/ to #/definitions/.
func strictSchema(s any) any {
	v, ok := s.(map[string]any)
	if !ok {
		return s // true or false, where a schema may be a boolean
	}
	out := map[string]any{}
	for k, x := range v {
		switch k {
		case "properties", "patternProperties", "definitions":
			m := map[string]any{}
			for name, sub := range asMap(x) {
				m[name] = strictSchema(sub)
			}
			out[k] = m
		case "items", "additionalProperties", "not", "additionalItems":
			if l, ok := x.([]any); ok {
				out[k] = strictSchemas(l)
			} else {
				out[k] = strictSchema(x)
			}
		case "allOf", "anyOf", "oneOf":
			out[k] = strictSchemas(asList(x))
		default:
			out[k] = x
		}
	}
	if r, ok := out["$ref"].(string); ok {
		out["$ref"] = "#/definitions/" + strings.TrimPrefix(r, refPrefix)
	}
	if out["x-kubernetes-int-or-string"] == true {
		delete(out, "type")
		out["oneOf"] = []any{map[string]any{"type": "integer"}, map[string]any{"type": "string"}}
	}
	if out["nullable"] == true {
		if t, ok := out["type"].(string); ok {
			out["type"] = []any{t, "null"}
		}
	}
	if _, has := out["properties"]; has && out["additionalProperties"] == nil && out["x-kubernetes-preserve-unknown-fields"] != true {
		out["additionalProperties"] = false
	}
	return out
}

func strictSchemas(l []any) []any {
	out := make([]any, len(l))
	for i, x := range l {
		out[i] = strictSchema(x)
	}
	return out
}

func asMap(x any) map[string]any { m, _ := x.(map[string]any); return m }

func asList(x any) []any { l, _ := x.([]any); return l }

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
