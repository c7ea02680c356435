package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// TestLoad runs `svckit load` against a server that answers POST /orders as the shop's
// gateway does: it requires the bearer token, confirms most orders, cancels every
// seventh and refuses every thirteenth with 503. The command prints orders/s, p50, p99
// and the failures by status, counting only confirmed orders as successes.
func TestLoad(t *testing.T) {
	var n, confirmed atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/orders" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		var body struct {
			Items []struct {
				ProductID string
				Quantity  int64
			}
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Items) == 0 {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		i := n.Add(1)
		switch {
		case i%13 == 0:
			http.Error(w, `{"title":"overloaded"}`, http.StatusServiceUnavailable)
		case i%7 == 0:
			fmt.Fprintf(w, `{"id":"ord_%d","status":"cancelled","reason":"payment declined"}`, i)
		default:
			confirmed.Add(1)
			fmt.Fprintf(w, `{"id":"ord_%d","status":"confirmed"}`, i)
		}
	}))
	defer srv.Close()

	var out, errb bytes.Buffer
	if code := run([]string{"load", "-url", srv.URL + "/", "-token", "tok", "-c", "4", "-d", "1m", "-n", "910"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errb.String())
	}
	got := out.String()
	if n.Load() != 910 {
		t.Fatalf("server saw %d orders, want 910 (-n)\n%s", n.Load(), got)
	}
	// 910 orders: 70 refused (13, 26, …), 120 cancelled (7, 14, … but not 91, 182, …).
	failures := int64(70 + 120)
	for _, want := range []string{
		"orders: 910 in ",
		"orders/s: ",
		"p50: ", "p99: ",
		fmt.Sprintf("failures: %d\n", failures),
		"status 200, not confirmed: 120\n", "status 503: 70\n",
		"last failure: status ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if confirmed.Load() != 910-failures {
		t.Fatalf("server confirmed %d, want %d", confirmed.Load(), 910-failures)
	}
	m := regexp.MustCompile(`orders/s: (\d+) confirmed`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("no orders/s figure:\n%s", got)
	}
	if rate, _ := strconv.Atoi(m[1]); rate <= 0 {
		t.Errorf("orders/s = %d, want > 0", rate)
	}

	// Without -url or -token it says what is missing.
	errb.Reset()
	if code := run([]string{"load", "-token", "tok"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "-url and -token are required") {
		t.Errorf("no -url: exit %d, %q", code, errb.String())
	}
}
