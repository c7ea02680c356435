package compat_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/svckit/svckit/internal/compat"
	"github.com/svckit/svckit/internal/gen"
)

// relTo makes positions relative to dir, with forward slashes.
func relTo(t *testing.T, dir string) func(string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return func(p string) string {
		if r, err := filepath.Rel(abs, p); err == nil && !strings.HasPrefix(r, "..") {
			return filepath.ToSlash(r)
		}
		return p
	}
}

func load(t *testing.T, dir string) *compat.Contract {
	t.Helper()
	pkg, err := gen.Load(dir, gen.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return compat.FromPackage(pkg, relTo(t, "testdata"))
}

func strs(fs []compat.Finding, brk bool) []string {
	var out []string
	for _, f := range fs {
		if f.Break == brk {
			out = append(out, f.String())
		}
	}
	return out
}

// TestCompare compares testdata/base, the old side, with each of testdata/cases: the
// same package with one change, and the findings it must give, breaking and compatible.
func TestCompare(t *testing.T) {
	t.Parallel()
	base := load(t, "testdata/base")
	for _, tc := range []struct {
		name       string
		breaking   []string
		compatible []string
	}{
		{name: "same"},
		{name: "removed_method", breaking: []string{
			"base/svc.go:18: method shop.Service.Put removed",
		}},
		{name: "renamed_method", breaking: []string{
			"cases/renamed_method/svc.go:19: method shop.Service.Count renamed to Tally: callers of Count get Unimplemented (gRPC) or 404 (HTTP)",
		}},
		{name: "added_method", compatible: []string{
			"cases/added_method/svc.go:22: method shop.Service.Delete added",
		}},
		{name: "removed_field", breaking: []string{
			"base/svc.go:28: Item (shop.Service.Get response): field name (number 2) removed",
			"cases/removed_field/svc.go:27: Item (shop.Service.Get response): field price: number changed from 3 to 2 (add fields at the end)",
			"cases/removed_field/svc.go:28: Item (shop.Service.Get response): field tags: number changed from 4 to 3 (add fields at the end)",
			"cases/removed_field/svc.go:29: Item (shop.Service.Get response): field note: number changed from 5 to 4 (add fields at the end)",
		}},
		{name: "renamed_field", breaking: []string{
			`cases/renamed_field/svc.go:27: Item (shop.Service.Get response): field name renamed to title (JSON "title", was "name")`,
		}},
		{name: "field_type", breaking: []string{
			"cases/field_type/svc.go:28: Item (shop.Service.Get response): field price: type changed from int64 to string",
		}},
		{name: "field_number", breaking: []string{
			"cases/field_number/svc.go:28: Item (shop.Service.Get response): field name: number changed from 2 to 3 (add fields at the end)",
			"cases/field_number/svc.go:27: Item (shop.Service.Get response): field price: number changed from 3 to 2 (add fields at the end)",
		}},
		{name: "required", breaking: []string{
			"cases/required/svc.go:19: CountRequest (shop.Service.Count request): field limit became required: it was optional (optional int64), now int64, so a caller that leaves it out sends the zero value",
		}},
		{name: "added_field", compatible: []string{
			"cases/added_field/svc.go:31: Item (shop.Service.Get response): field stock (number 6) added",
		}},
		{name: "response_optional", compatible: []string{
			"cases/response_optional/svc.go:38: Receipt (shop.Service.Put response): field total (number 3) added",
		}},
		{name: "response_nullable", breaking: []string{
			"cases/response_nullable/svc.go:35: Receipt (shop.Service.Put response): field id became optional (optional string): callers may now get no value",
		}},
		{name: "note_required", breaking: []string{
			"cases/note_required/svc.go:30: Item (shop.Service.Put request): field note became required: it was optional (optional string), now string, so a caller that leaves it out sends the zero value",
		}, compatible: []string{
			"cases/note_required/svc.go:30: Item (shop.Service.Get response): field note: optional string is now string",
		}},
		{name: "route", breaking: []string{
			"cases/route/svc.go:14: method shop.Service.Get: HTTP route changed from GET /items/{id} to GET /v2/items/{id}",
		}},
		{name: "route_method", breaking: []string{
			"cases/route_method/svc.go:17: method shop.Service.Put: HTTP route changed from PUT /items/{id} to POST /items/{id}",
		}},
		{name: "no_http", breaking: []string{
			"cases/no_http/svc.go:14: method shop.Service.Get is no longer served over HTTP (was GET /items/{id})",
		}},
		{name: "grpc_name", breaking: []string{
			"cases/grpc_name/svc.go:13: gRPC service shop.Service renamed to shop.v2.Service: callers of shop.Service get Unimplemented",
			// The default NATS subjects follow the gRPC name.
			"cases/grpc_name/svc.go:16: method shop.v2.Service.Get: NATS subject changed from svc.shop.Service.Get to svc.shop.v2.Service.Get",
			"cases/grpc_name/svc.go:19: method shop.v2.Service.Put: NATS subject changed from svc.shop.Service.Put to svc.shop.v2.Service.Put",
			"cases/grpc_name/svc.go:21: method shop.v2.Service.Count: NATS subject changed from svc.shop.Service.Count to svc.shop.v2.Service.Count",
		}},
		{name: "nats", breaking: []string{
			"cases/nats/svc.go:15: method shop.Service.Get: NATS subject changed from svc.shop.Service.Get to shop.items.get",
		}},
		{name: "stream", breaking: []string{
			"cases/stream/svc.go:19: method shop.Service.Count now streams its response; callers expect one message",
			// The stream's items are a message of one field, value, and streams are
			// not served over HTTP.
			`cases/stream/svc.go:19: CountResponse (shop.Service.Count response): field result renamed to value (JSON "value", was "result")`,
			"cases/stream/svc.go:19: method shop.Service.Count is no longer served over NATS (was svc.shop.Service.Count)",
			"cases/stream/svc.go:19: method shop.Service.Count is no longer served over HTTP (was POST /count)",
		}},
		{name: "auth", breaking: []string{
			"cases/auth/svc.go:15: method shop.Service.Get: callers must now present bearer admin (was public)",
		}},
		{name: "added_param", compatible: []string{
			"cases/added_param/svc.go:19: CountRequest (shop.Service.Count request): field tag (number 3) added",
		}},
		{name: "int_to_int64"}, // int and int64 are both int64 on the wire
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := compat.Compare(base, load(t, filepath.Join("testdata/cases", tc.name)))
			if b := strs(got, true); !slices.Equal(b, tc.breaking) {
				t.Errorf("breaking:\n got %q\nwant %q", b, tc.breaking)
			}
			if c := strs(got, false); !slices.Equal(c, tc.compatible) {
				t.Errorf("compatible:\n got %q\nwant %q", c, tc.compatible)
			}
		})
	}
}
