package loadgen_test

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/svckit/svckit/internal/loadgen"
)

func TestTemplate(t *testing.T) {
	uuidRE := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	for _, tc := range []struct {
		name, text string
		n          int64
		worker     int
		check      func(string) bool
	}{
		{"static", `{"a":1}`, 5, 0, func(s string) bool { return s == `{"a":1}` }},
		{"counter", `{"n":{{.N}},"w":{{.Worker}}}`, 41, 3, func(s string) bool { return s == `{"n":41,"w":3}` }},
		{"mod and add", `{{mod .N 7}} {{add .N 1}} {{mod (add .N 1) 2}}`, 15, 0, func(s string) bool { return s == "1 16 0" }},
		{"randInt", `{{randInt 1 3}}`, 0, 0, func(s string) bool { v, err := strconv.Atoi(s); return err == nil && v >= 1 && v <= 3 }},
		{"randItem", `{{randItem "a" "b"}}`, 0, 0, func(s string) bool { return s == "a" || s == "b" }},
		{"uuid", `{{uuid}}`, 0, 0, uuidRE.MatchString},
		{"json", `{"s":{{json "a\"b\u0001"}}}`, 0, 0, func(s string) bool {
			var v struct{ S string }
			return json.Unmarshal([]byte(s), &v) == nil && v.S == "a\"b\u0001"
		}},
		{"now", `{{now}}`, 0, 0, func(s string) bool { return strings.Contains(s, "T") && strings.HasSuffix(s, "Z") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp, err := loadgen.ParseTemplate("body", tc.text)
			if err != nil {
				t.Fatal(err)
			}
			for range 20 {
				b, err := tp.Render(tc.n, tc.worker)
				if err != nil {
					t.Fatal(err)
				}
				if !tc.check(string(b)) {
					t.Fatalf("rendered %q", b)
				}
			}
			if tp.Static() != !strings.Contains(tc.text, "{{") {
				t.Fatalf("Static() = %v", tp.Static())
			}
		})
	}
}

func TestTemplateErrors(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"syntax", `{{.N`, "unclosed action"},
		{"unknown field", `{{.Nope}}`, "Nope"},
		{"unknown function", `{{nope}}`, `"nope" not defined`},
		{"randInt bounds", `{{randInt 5 1}}`, "upper bound is below"},
		{"mod zero", `{{mod .N 0}}`, "mod by zero"},
		{"too large text", strings.Repeat("x", loadgen.MaxBodyBytes+1), "more than the limit"},
		{"too large when rendered", strings.Repeat("z", loadgen.MaxBodyBytes-20) + `{{printf "%30s" ""}}`, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadgen.ParseTemplate("body", tc.text)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	// A template whose text grows with the call fails on the call that makes it too large.
	tp, err := loadgen.ParseTemplate("body", `{{range .N}}xx{{end}}`)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := tp.Render(100, 0); err != nil || len(b) != 200 {
		t.Fatalf("call 100: %d bytes, %v", len(b), err)
	}
	if _, err := tp.Render(loadgen.MaxBodyBytes, 0); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("a body of 2×MaxBodyBytes: %v", err)
	}
}
