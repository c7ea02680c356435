package gen

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/svckit/svckit/internal/gen/testdata/golden/shapes"
	"github.com/svckit/svckit/internal/gen/testdata/shared"
)

func loadOpenAPI(t *testing.T, path string) *openapi3.T {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return doc
}

// TestOpenAPIValid validates every generated OpenAPI document — the golden corpus, the
// 50-method interface and the examples — with kin-openapi, which checks OpenAPI 3.1
// documents with a JSON Schema 2020-12 validator.
func TestOpenAPIValid(t *testing.T) {
	var paths []string
	for _, pattern := range []string{"testdata/golden/*/*.openapi.json", "testdata/golden/twins/*/*/*.openapi.json", "testdata/bench50/*.openapi.json", "../../examples/*/*/*.openapi.json"} {
		found, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, found...)
	}
	if !slices.Contains(paths, "../../examples/addsvc/addsvc/addsvc.openapi.json") || len(paths) < 10 {
		t.Fatalf("found only %v", paths)
	}
	for _, p := range paths {
		doc := loadOpenAPI(t, p)
		if !doc.IsOpenAPI31OrLater() {
			t.Errorf("%s: version %s, want 3.1", p, doc.OpenAPI)
		}
		if err := doc.Validate(context.Background()); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// TestOpenAPISchemasMatchJSON checks that what encoding/json writes for the Go types
// validates against their generated schemas, nil slices and pointers included.
func TestOpenAPISchemasMatchJSON(t *testing.T) {
	doc := loadOpenAPI(t, "testdata/golden/shapes/shapes.openapi.json")
	nick, age, ratio := "bo", 42, 0.5
	until := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	full := shapes.Profile{
		Base: shapes.Base{ID: "p1", Created: time.Now()},
		Name: "Bo", Nick: &nick, Age: &age, Tags: []string{"a"}, Labels: map[string]string{"k": "v"},
		Scores: map[shapes.Color]int64{shapes.Red: 1}, Color: shapes.Green, Level: shared.LevelHigh,
		Home: shared.Address{Street: "s", City: "c", Geo: &shared.Point{Lat: 1, Lng: 2}},
		Work: &shared.Address{}, Others: []shared.Address{{}}, Friends: []*shapes.Profile{{Name: "f"}},
		ByName: map[string]*shared.Point{"x": {Lat: 1}}, Avatar: []byte{1, 2}, Seen: time.Now(), Until: &until,
		TTL: time.Second, Timeouts: []time.Duration{time.Millisecond}, Colors: []shapes.Color{shapes.Red},
		Ratio: &ratio, NoTag: "n",
	}
	for name, v := range map[string]any{
		"Profile":     full,
		"Profile ":    shapes.Profile{},
		"Address":     shared.Address{},
		"PageProfile": shared.Page[shapes.Profile]{Items: []shapes.Profile{full}},
	} {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var value any
		if err := json.Unmarshal(data, &value); err != nil {
			t.Fatal(err)
		}
		ref := doc.Components.Schemas[trimSpace(name)]
		if ref == nil {
			t.Fatalf("no schema %s", name)
		}
		if err := ref.Value.VisitJSON(value, openapi3.EnableJSONSchema2020()); err != nil {
			t.Errorf("%s: %s does not validate: %v", name, data, err)
		}
	}
	// And a value that is not a Profile fails.
	bad := map[string]any{"name": 3, "color": "purple"}
	if err := doc.Components.Schemas["Profile"].Value.VisitJSON(bad, openapi3.EnableJSONSchema2020()); err == nil {
		t.Error("an invalid profile validates")
	}
}

func trimSpace(s string) string {
	for len(s) > 0 && s[len(s)-1] == ' ' {
		s = s[:len(s)-1]
	}
	return s
}

// TestOpenAPIContract checks what the documents declare beyond their shapes: the auth of
// each operation from //svckit:auth (the shop gateway's PlaceOrder needs a bearer JWT,
// ListProducts is public), its 4xx responses, a server, only the schemas an HTTP operation
// uses (addsvc's gRPC-only RangeRequest is not one), and schema names that do not collide
// with the <operationId>Response types oapi-codegen declares (addsvc's ConcatResponse).
func TestOpenAPIContract(t *testing.T) {
	gw := loadOpenAPI(t, "../../examples/shop/gateway/gateway.openapi.json")
	add := loadOpenAPI(t, "../../examples/addsvc/addsvc/addsvc.openapi.json")
	op := func(doc *openapi3.T, path, method string) *openapi3.Operation {
		t.Helper()
		item := doc.Paths.Value(path)
		if item == nil || item.GetOperation(method) == nil {
			t.Fatalf("no operation %s %s", method, path)
		}
		return item.GetOperation(method)
	}
	for _, tc := range []struct {
		name     string
		op       *openapi3.Operation
		security []string // nil: public (an empty requirement list)
		statuses []string
	}{
		{"PlaceOrder", op(gw, "/orders", "POST"), []string{"bearer"}, []string{"200", "400", "401", "403", "default"}},
		{"GetOrder", op(gw, "/orders/{id}", "GET"), []string{"bearer"}, []string{"200", "400", "401", "403", "default"}},
		{"ListProducts", op(gw, "/products", "GET"), nil, []string{"200", "400", "default"}},
		{"Concat", op(add, "/concat", "POST"), nil, []string{"200", "400", "default"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.op.Security == nil {
				t.Fatal("no security: every operation declares its auth")
			}
			var got []string
			for _, req := range *tc.op.Security {
				for name := range req {
					got = append(got, name)
				}
			}
			if !slices.Equal(got, tc.security) {
				t.Errorf("security %v, want %v", got, tc.security)
			}
			var statuses []string
			for code := range tc.op.Responses.Map() {
				statuses = append(statuses, code)
			}
			slices.Sort(statuses)
			if !slices.Equal(statuses, tc.statuses) {
				t.Errorf("responses %v, want %v", statuses, tc.statuses)
			}
		})
	}
	if s := gw.Components.SecuritySchemes["bearer"]; s == nil || s.Value.Type != "http" || s.Value.Scheme != "bearer" || s.Value.BearerFormat != "JWT" {
		t.Errorf("gateway securitySchemes: %+v", gw.Components.SecuritySchemes)
	}
	if len(add.Components.SecuritySchemes) != 0 {
		t.Errorf("addsvc declares security schemes it does not use: %v", add.Components.SecuritySchemes)
	}
	for _, doc := range []*openapi3.T{gw, add} {
		if len(doc.Servers) == 0 {
			t.Errorf("%s: no servers", doc.Info.Title)
		}
	}
	for name, want := range map[string]bool{"RangeRequest": false, "ConcatResponse": false, "ConcatResponseBody": true, "ConcatRequest": true, "Problem": true} {
		if got := add.Components.Schemas[name] != nil; got != want {
			t.Errorf("addsvc schema %s present = %v, want %v", name, got, want)
		}
	}
}
