//go:build integration

package dashboard_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/svckit/svckit/internal/dashboard"
)

// TestBrowserFaults injects a fault from the Faults page in headless Chromium into a
// running system (relay → addsvc, real processes started by devrun), sees relay's calls
// fail with it, and removes it from the page.
func TestBrowserFaults(t *testing.T) {
	secret := dashboard.NewSecret()
	sys := startSystem(t, dashboard.WithSecret(secret))
	ctx := browser(t)
	navigate(t, ctx, dashboard.SecretURL(sys.URL, secret))
	add := func() int {
		resp, err := http.Post(sys.PublicURL()+"/add", "application/json", strings.NewReader(`{"a":1,"b":2}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := add(); code != 200 {
		t.Fatalf("relay /add before any fault: %d", code)
	}

	navigate(t, ctx, sys.URL+"/#/faults")
	poll(t, ctx, "the Faults page with no faults and the services in its form",
		`document.querySelector('#faults-none') && document.querySelector('#fault-service option[value="addsvc"]')`)
	if err := chromedp.Do(ctx,
		chromedp.SetValue(`#fault-service`, "addsvc"),
		chromedp.SetValue(`#fault-method`, "addsvc.Sum"),
		chromedp.SetValue(`#fault-abort`, "unavailable"),
		chromedp.Click(`#fault-inject`),
	); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the rule listed for addsvc", `document.querySelectorAll('tr.fault-rule[data-service="addsvc"][data-method="addsvc.Sum"]').length === 1`)
	if code := add(); code < 500 {
		t.Fatalf("relay /add with 100%% unavailable on addsvc.Sum: %d, want a 5xx", code)
	}
	text := eval[string](t, ctx, `document.querySelector('tr.fault-rule').textContent`)
	if !strings.Contains(text, "abort unavailable 100%") || !strings.Contains(text, "in ") {
		t.Fatalf("the rule's row: %q", text)
	}

	if err := chromedp.Do(ctx, chromedp.Click(`tr.fault-rule button.danger`)); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "no faults after remove", `document.querySelector('#faults-none')`)
	if code := add(); code != 200 {
		t.Fatalf("relay /add after the fault was removed: %d", code)
	}
}
