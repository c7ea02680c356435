package fault_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/svckit/svckit/fault"
	"github.com/svckit/svckit/svcerr"
)

func TestHandlerWithClient(t *testing.T) {
	const token = "t0ken"
	inj := fault.New()
	srv := httptest.NewServer(inj.Handler(token))
	defer srv.Close()
	ctx := context.Background()
	c := &fault.Client{URL: srv.URL + "/faults", Token: token, HTTP: srv.Client()}

	rules, err := c.Add(ctx, fault.Rule{Method: "catalog.Reserve", AbortPercent: 20, Kind: svcerr.Unavailable, For: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 1 || rules[0].AbortPercent != 20 || rules[0].Kind != svcerr.Unavailable || rules[0].Until.IsZero() {
		t.Fatalf("after Add: %+v", rules)
	}
	if rules, err = c.Add(ctx, fault.Rule{Method: "payments.Charge", Delay: 500 * time.Millisecond}); err != nil || len(rules) != 2 {
		t.Fatalf("second Add: %+v, %v", rules, err)
	}
	if got := inj.Rules(); len(got) != 2 || got[1].Delay != 500*time.Millisecond || got[1].DelayPercent != 100 {
		t.Fatalf("the injector holds %+v", got)
	}
	if rules, err = c.List(ctx); err != nil || len(rules) != 2 {
		t.Fatalf("List: %+v, %v", rules, err)
	}
	if rules, err = c.Remove(ctx, "catalog.Reserve", fault.Both); err != nil || len(rules) != 1 || rules[0].Method != "payments.Charge" {
		t.Fatalf("Remove: %+v, %v", rules, err)
	}
	var se *fault.StatusError
	if _, err = c.Remove(ctx, "catalog.Reserve", fault.Both); !errors.As(err, &se) || se.Status != 404 {
		t.Fatalf("Remove of a missing rule: %v", err)
	}
	if rules, err = c.Set(ctx, fault.Rule{Method: "*", AbortPercent: 1}, fault.Rule{Method: "a.B", Delay: time.Second, DelayPercent: 5}); err != nil || len(rules) != 2 {
		t.Fatalf("Set: %+v, %v", rules, err)
	}
	if _, err = c.Add(ctx, fault.Rule{Method: "a.B", Delay: time.Hour}); !errors.As(err, &se) || se.Status != 400 || !strings.Contains(se.Detail, "delay 1h0m0s") {
		t.Fatalf("Add of an invalid rule: %v", err)
	}
	if err = c.Clear(ctx); err != nil || len(inj.Rules()) != 0 {
		t.Fatalf("Clear: %v, %+v", err, inj.Rules())
	}
	wrong := &fault.Client{URL: c.URL, Token: "guess", HTTP: srv.Client()}
	if _, err = wrong.List(ctx); !errors.As(err, &se) || se.Status != 401 {
		t.Fatalf("a wrong token: %v", err)
	}
}

func TestHandlerRefusals(t *testing.T) {
	const token = "t0ken"
	srv := httptest.NewServer(fault.New().Handler(token))
	defer srv.Close()
	off := httptest.NewServer(fault.New().Handler(""))
	defer off.Close()
	auth := "Bearer " + token
	for _, tc := range []struct {
		name, url, method, auth, body string
		want                          int
		wantBody                      string
	}{
		{"no token", srv.URL, "GET", "", "", 401, "bearer token"},
		{"basic auth", srv.URL, "GET", "Basic dDBrZW4=", "", 401, "bearer token"},
		{"token prefix", srv.URL, "GET", "Bearer t0k", "", 401, "bearer token"},
		{"off", off.URL, "GET", auth, "", 404, "no FAULT_TOKEN"},
		{"off with any token", off.URL, "PUT", "Bearer ", `{"rules":[]}`, 404, "off"},
		{"method", srv.URL, "PATCH", auth, "", 405, "allowed: GET, HEAD, PUT, POST, DELETE"},
		{"not json", srv.URL, "POST", auth, "abort", 400, "not a fault rule in JSON"},
		{"unknown field", srv.URL, "POST", auth, `{"method":"a.B","abort":"unavailable","colour":1}`, 400, "unknown field"},
		{"two values", srv.URL, "POST", auth, `{"method":"a.B","abort":"unavailable"} {}`, 400, "more than one"},
		{"bad kind", srv.URL, "POST", auth, `{"method":"a.B","abort":"sometimes"}`, 400, `sometimes\" is not an error kind`},
		{"bad duration", srv.URL, "POST", auth, `{"method":"a.B","delay":"long"}`, 400, "delay"},
		{"too large", srv.URL, "PUT", auth, `{"rules":[` + strings.Repeat(`{"method":"a.B","abort":"unavailable"},`, 2000) + `{}]}`, 413, "larger than"},
		{"too many", srv.URL, "PUT", auth, `{"rules":[` + strings.Repeat(`{"method":"a.B","abort":"unavailable"},`, 64) + `{"method":"a.B","abort":"unavailable"}]}`, 400, "more than 64"},
		{"bad side", srv.URL + "?method=a.B&side=up", "DELETE", auth, "", 400, "not server or client"},
		{"ok", srv.URL, "POST", auth, `{"method":"a.B","abort":"unavailable","abort_percent":5,"for":"1m"}`, 200, `"abort_percent":5`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := http.NewRequest(tc.method, tc.url, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			resp, err := srv.Client().Do(r)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want || !strings.Contains(string(b), tc.wantBody) {
				t.Fatalf("%d %s, want %d with %q", resp.StatusCode, b, tc.want, tc.wantBody)
			}
			if ct := resp.Header.Get("Content-Type"); tc.want != 200 && ct != "application/problem+json" {
				t.Fatalf("Content-Type %q", ct)
			}
		})
	}
}
