package devrun

import (
	"encoding/json"
	"testing"
)

var logLines = []string{
	`{"time":"2026-12-06T12:00:00.123456789Z","level":"INFO","msg":"request","service":"orders","http.method":"POST","status":200,"dur_ms":1.25,"ok":true,"n":null,"trace_id":"0af7651916cd43dd8448eb211c80319c"}`,
	`{"time":"2026-12-06T12:00:00Z","level":"ERROR","msg":"saga: store error; retrying","err":"database is locked","nested":{"a":[1,2,{"b":"}"}],"c":"\"]"}}`,
	`{"msg":"quoted \"word\" and tab\t","level":"WARN"}`,
	`{"MSG":"folded key","Level":"DEBUG","TRACE_ID":"abc"}`,
	`{"msg":"first","msg":"last"}`,
	`{"msg":null,"level":"INFO"}`,
	`{"msg":5,"level":"INFO"}`,
	`{"msg":"héllo ✓","level":"INFO"}`,
	"{\"msg\":\"bad \xff utf-8\"}",
	`{}`, ` { "msg" : "spaces" , "level" : "INFO" } `,
	`{"msg":"trailing"} x`, `{"msg":"unterminated`, `{"msg":}`, `{"a":1,}`, `{"a" 1}`, `[1,2]`, `{"a":tru}`,
	`{"msg":"ctl` + "\x01" + `"}`, `{"a":"\u00e9","msg":"after escape"}`, `{"msg":"\u00e9"}`,
}

// TestParseLogFields: the log line scanner reads what json.Unmarshal reads from every
// valid line, and refuses what it refuses.
func TestParseLogFields(t *testing.T) {
	for _, line := range logLines {
		checkLogFields(t, line)
	}
}

func checkLogFields(t *testing.T, line string) {
	t.Helper()
	var want logFields
	wantOK := json.Unmarshal([]byte(line), &want) == nil
	got, ok := parseLogFields(line)
	if !json.Valid([]byte(line)) { // nested values are skipped, not checked
		if _, fast := scanLogFields(line); !fast && ok {
			t.Errorf("%q: not JSON, yet parsed", line)
		}
		return
	}
	if ok != wantOK || got != want {
		t.Errorf("%q: parsed %+v, %v; json.Unmarshal %+v, %v", line, got, ok, want, wantOK)
	}
}

func FuzzParseLogFields(f *testing.F) {
	for _, l := range logLines {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, line string) { checkLogFields(t, line) })
}

func BenchmarkParseLogFields(b *testing.B) {
	line := logLines[0]
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var f logFields
			_ = json.Unmarshal([]byte(line), &f)
		}
	})
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = parseLogFields(line)
		}
	})
}

// TestJSONNumber: the scanner's number check agrees with encoding/json on numbers and on
// what only looks like one.
func TestJSONNumber(t *testing.T) {
	for _, v := range []string{"0", "-0", "1", "-12", "4.331629", "0.5", "1e9", "1E+9", "2.5e-3", "-0.0e0",
		"", "-", "01", "1.", ".5", "1e", "1e+", "+1", "0x10", "1.2.3", "--1", "1-", "Infinity", "NaN", "1 ", "tru"} {
		if got, want := jsonNumber(v), isJSONNumber(v); got != want {
			t.Errorf("jsonNumber(%q) = %v; json.Valid says %v", v, got, want)
		}
	}
}

// isJSONNumber is jsonNumber by encoding/json: a valid JSON value that starts with a
// number's first character and ends with a digit (no blanks around it).
func isJSONNumber(v string) bool {
	return json.Valid([]byte(v)) && v != "" && (v[0] == '-' || v[0] >= '0' && v[0] <= '9') && v[len(v)-1] >= '0' && v[len(v)-1] <= '9'
}

func FuzzJSONNumber(f *testing.F) {
	for _, v := range []string{"0", "-1.5e3", "01", "1."} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if got, want := jsonNumber(v), isJSONNumber(v); got != want {
			t.Errorf("jsonNumber(%q) = %v; json.Valid says %v", v, got, want)
		}
	})
}
