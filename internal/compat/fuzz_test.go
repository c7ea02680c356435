package compat

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzProto feeds arbitrary text to the .proto reader: it returns services or an error,
// never panics, and resolves every message reference it returns.
func FuzzProto(f *testing.F) {
	for _, p := range []string{"testdata/example/v1/greeter.proto", "testdata/example/v2/greeter.proto"} {
		src, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(src))
	}
	matches, _ := filepath.Glob("../../examples/shop/*/pb/*/*.proto")
	for _, p := range matches {
		if src, err := os.ReadFile(p); err == nil {
			f.Add(string(src))
		}
	}
	f.Add("syntax = \"proto3\";\nmessage M { map<string, M> m = 1 [json_name = \"x\"]; optional int64 a = 2; repeated .p.M r = 3; }\nservice S { rpc A(M) returns (stream M) { option idempotency_level = IDEMPOTENT; } }\n")
	f.Add("/* x */ 'a\\'")
	f.Fuzz(func(t *testing.T, src string) {
		svcs, err := parseProto("f.proto", src)
		if err != nil {
			return
		}
		for _, s := range svcs {
			for _, m := range s.Methods {
				if m.Req == nil || m.Resp == nil {
					t.Fatalf("method %s without its messages", m.Name)
				}
			}
		}
	})
}
