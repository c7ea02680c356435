package http

import (
	"strings"
	"testing"

	"github.com/svckit/svckit/svcerr"
)

// TestUnmarshalInt64Strings checks that 64-bit integers are accepted as JSON numbers and
// as decimal strings (protojson's form), in plain, pointer, slice and map fields and in
// nested structs, strict or not, and that other strings stay precise errors.
func TestUnmarshalInt64Strings(t *testing.T) {
	type item struct {
		Qty int64 `json:"qty"`
	}
	type req struct {
		A   int64            `json:"a"`
		P   *uint64          `json:"p"`
		S   []int64          `json:"s"`
		M   map[string]int32 `json:"m"`
		It  []item           `json:"it"`
		Txt string           `json:"txt"`
	}
	for _, tc := range []struct {
		name, body string
		wantErr    string // substring of the error; "" for none
	}{
		{"numbers", `{"a":9007199254740993,"p":18446744073709551615,"s":[1,-2],"m":{"k":3},"it":[{"qty":4}]}`, ""},
		{"strings", `{"a":"9007199254740993","p":"18446744073709551615","s":["1","-2"],"m":{"k":"3"},"it":[{"qty":"4"}]}`, ""},
		{"mixed with escapes elsewhere", `{"txt":"a\"b","a":"9007199254740993","s":[1,"-2"],"m":{"k":3},"p":18446744073709551615,"it":[{"qty":4}]}`, ""},
		{"not a number", `{"a":"12x"}`, "field a: must be an integer, got string"},
		{"empty string", `{"a":""}`, "field a: must be an integer, got string"},
		{"leading zero", `{"a":"012"}`, "field a: must be an integer, got string"},
		{"float string", `{"a":"1.5"}`, "field a: must be an integer, got string"},
		{"escaped quote", `{"a":"1\"2"}`, "field a: must be an integer, got string"},
		{"overflow", `{"it":[{"qty":"99999999999999999999"}]}`, "qty"},
		{"string field keeps its string", `{"txt":"7"}`, ""},
	} {
		for _, strict := range []bool{false, true} {
			t.Run(tc.name, func(t *testing.T) {
				var r req
				err := unmarshalRequest([]byte(tc.body), &r, strict)
				if tc.wantErr == "" {
					if err != nil {
						t.Fatalf("strict=%v: %v", strict, err)
					}
					if strings.Contains(tc.body, `"a"`) && r.A != 9007199254740993 {
						t.Errorf("a = %d", r.A)
					}
					if strings.Contains(tc.body, `"p"`) && (r.P == nil || *r.P != 18446744073709551615) {
						t.Errorf("p = %v", r.P)
					}
					if strings.Contains(tc.body, `"it"`) && (len(r.It) != 1 || r.It[0].Qty != 4 || len(r.S) != 2 || r.S[1] != -2 || r.M["k"] != 3) {
						t.Errorf("decoded %+v", r)
					}
					return
				}
				if err == nil || svcerr.KindOf(err) != svcerr.InvalidArgument || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("strict=%v: err = %v, want invalid_argument with %q", strict, err, tc.wantErr)
				}
			})
		}
	}
	// Strict decoding still refuses unknown fields after a string was accepted.
	var r req
	if err := unmarshalRequest([]byte(`{"a":"1","zzz":1}`), &r, true); err == nil || !strings.Contains(err.Error(), "unknown field zzz") {
		t.Errorf("strict with an unknown field: %v", err)
	}
}

// TestUnmarshalQuotedIntegersBounded: a body with more integers as strings than
// maxQuotedIntegers is refused after that many decodes, not decoded once per string.
func TestUnmarshalQuotedIntegersBounded(t *testing.T) {
	var v struct {
		S []int64 `json:"s"`
	}
	ok := `{"s":[` + strings.TrimSuffix(strings.Repeat(`"1",`, maxQuotedIntegers), ",") + `]}`
	if err := unmarshalRequest([]byte(ok), &v, true); err != nil || len(v.S) != maxQuotedIntegers {
		t.Fatalf("%d quoted integers: %v (%d decoded)", maxQuotedIntegers, err, len(v.S))
	}
	many := `{"s":[` + strings.TrimSuffix(strings.Repeat(`"1",`, 100_000), ",") + `]}`
	err := unmarshalRequest([]byte(many), &v, true)
	if svcerr.KindOf(err) != svcerr.InvalidArgument || !strings.Contains(err.Error(), "send them as numbers") {
		t.Fatalf("100,000 quoted integers: %v", err)
	}
}
