//go:build integration

package dashboard_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/svckit/svckit/internal/dashboard"
	"github.com/svckit/svckit/internal/devrun"
)

// attackPage is a web page of another origin that tries what issue 13's attacker did:
// kill an instance and call a service through the dashboard's proxy, by fetch (simple
// requests in no-cors mode, and requests with the page's header, which need a preflight)
// and by form posts into frames, with the browser's cookies. window.attack() runs it and
// resolves to what the page could see of each attempt.
const attackPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>a page of another origin</title></head><body>
<iframe name="sink1"></iframe><iframe name="sink2"></iframe>
<form id="f1" method="POST" action="DASH/api/instances/addsvc-1/kill" target="sink1"></form>
<form id="f2" method="POST" action="DASH/api/call/relay/add" enctype="text/plain" target="sink2"><input name='{"a":31338,"b":1,"x":"' value='"}'></form>
<script>
async function attempt(name, url, opts) {
  try {
    const r = await fetch(url, opts);
    return [name, r.type === 'opaque' ? 'opaque' : 'status ' + r.status];
  } catch (e) { return [name, 'error ' + e.message]; }
}
function submitted(form) {
  return new Promise(resolve => {
    const frame = document.querySelector('iframe[name=' + form.target + ']');
    frame.addEventListener('load', () => resolve(), {once: true});
    setTimeout(resolve, 5000);
    form.submit();
  });
}
window.attack = async function () {
  const D = 'DASH', out = {};
  for (const [name, result] of [
    await attempt('kill, no-cors', D + '/api/instances/addsvc-1/kill', {method: 'POST', mode: 'no-cors', credentials: 'include'}),
    await attempt('kill, page header', D + '/api/instances/addsvc-1/kill', {method: 'POST', credentials: 'include', headers: {'X-Svckit-Dashboard': '1'}}),
    await attempt('call, no-cors', D + '/api/call/relay/add', {method: 'POST', mode: 'no-cors', credentials: 'include', body: '{"a":31337,"b":1}'}),
    await attempt('call, page header', D + '/api/call/relay/add', {method: 'POST', credentials: 'include',
      headers: {'X-Svckit-Dashboard': '1', 'Content-Type': 'application/json'}, body: '{"a":31337,"b":1}'}),
    await attempt('read', D + '/api/services', {credentials: 'include'}),
  ]) out[name] = result;
  await submitted(document.getElementById('f1'));
  await submitted(document.getElementById('f2'));
  return out;
};
</script></body></html>`

// formPage posts a form to the kill endpoint as soon as it loads, in the top-level window.
const formPage = `<!doctype html><html><body>
<form id="f" method="POST" action="DASH/api/instances/addsvc-1/kill"></form>
<script>document.getElementById('f').submit();</script></body></html>`

// rebindPage is served by the "attacker's server" at rebind.test:PORT before the name is
// rebound to 127.0.0.1: afterwards its requests are same-origin for the browser.
const rebindPage = `<!doctype html><html><body><script>
window.attack = async function () {
  const out = {};
  for (const [name, path, opts] of [
    ['read', '/api/services', {}],
    ['kill', '/api/instances/addsvc-1/kill', {method: 'POST', headers: {'X-Svckit-Dashboard': '1'}}],
    ['call', '/api/call/relay/add', {method: 'POST', headers: {'X-Svckit-Dashboard': '1', 'Content-Type': 'application/json'}, body: '{"a":31339,"b":1}'}],
  ]) {
    try { const r = await fetch(path, opts); out[name] = r.status + ' ' + (await r.text()).slice(0, 200); }
    catch (e) { out[name] = 'error ' + e.message; }
  }
  return out;
};
</script></body></html>`

// rebinder stands for DNS rebinding: the browser resolves rebind.test to its address
// (--host-resolver-rules), where it first serves rebindPage like the attacker's server;
// after rebind() it forwards every new connection to the dashboard, as if the name now
// pointed at 127.0.0.1. Each answer closes its connection, so no request after rebind()
// reaches the old "server".
type rebinder struct {
	ln      net.Listener
	target  string
	rebound atomic.Bool
	wg      sync.WaitGroup
}

func (rb *rebinder) serve() {
	for {
		c, err := rb.ln.Accept()
		if err != nil {
			return
		}
		rb.wg.Add(1)
		go func() {
			defer rb.wg.Done()
			defer c.Close()
			br := bufio.NewReader(c)
			if _, err := br.Peek(1); err != nil {
				return
			}
			// Which server answers is decided by when the request comes, not the
			// connection: the browser opens spare connections ahead of time.
			if rb.rebound.Load() {
				d, err := net.Dial("tcp", rb.target)
				if err != nil {
					return
				}
				defer d.Close()
				go func() { _, _ = io.Copy(d, br); d.(*net.TCPConn).CloseWrite() }()
				_, _ = io.Copy(c, d)
				return
			}
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			body, code := rebindPage, 200
			if req.URL.Path != "/" {
				body, code = "not found", 404
			}
			fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
				code, http.StatusText(code), len(body), body)
		}()
	}
}

// attack runs the page's window.attack() and returns what it resolves to.
func attack(t *testing.T, ctx context.Context) map[string]string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](`window.attack()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("window.attack(): %v", err)
	}
	return v
}

// TestBrowserCrossOrigin proves in headless Chromium that the dashboard is no back door:
// with the developer's session cookie in the browser, a page of another origin (another
// port of 127.0.0.1, which is the same site, so SameSite=Strict cookies go along) cannot
// kill an instance or call a service through the proxy, by fetch or by form post, and a
// DNS-rebinding page (its name rebound to 127.0.0.1) gets refusals even for reads; the
// instance keeps running and the service never sees the calls. The dashboard's own page,
// opened with the secret URL, still kills and calls; without the cookie it only reads.
func TestBrowserCrossOrigin(t *testing.T) {
	secret := dashboard.NewSecret()
	sys := startSystem(t, dashboard.WithDevToken("dev-token"), dashboard.WithSecret(secret))
	_, dashPort, _ := net.SplitHostPort(strings.TrimPrefix(sys.URL, "http://"))
	relayAdd(t, sys, 1, 2) // relay's endpoint in the API explorer comes from its traces

	// The rebinding "attacker's server" listens on 127.0.0.2 with the dashboard's port, so
	// that rebind.test:PORT is one origin before and after the rebinding.
	rln, err := net.Listen("tcp", "127.0.0.2:"+dashPort)
	if err != nil {
		t.Skipf("no second loopback address for the rebinding server: %v", err)
	}
	rb := &rebinder{ln: rln, target: strings.TrimPrefix(sys.URL, "http://")}
	go rb.serve()
	t.Cleanup(func() { rln.Close(); rb.wg.Wait() })

	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch r.URL.Path {
		case "/attack":
			io.WriteString(w, strings.ReplaceAll(attackPage, "DASH", sys.URL))
		case "/form":
			io.WriteString(w, strings.ReplaceAll(formPage, "DASH", sys.URL))
		default:
			http.NotFound(w, r)
		}
	}))
	defer evil.Close()

	var mu sync.Mutex
	answers := map[string][]int64{} // the dashboard's answers to kill and call, by path
	ctx := browserWith(t, []string{"rebind.test"}, func(ev any) {
		if e, ok := ev.(*network.EventResponseReceived); ok && strings.HasPrefix(e.Response.URL, sys.URL+"/api/") {
			p := strings.TrimPrefix(e.Response.URL, sys.URL)
			if strings.Contains(p, "/kill") || strings.Contains(p, "/api/call/") {
				mu.Lock()
				answers[p] = append(answers[p], e.Response.Status)
				mu.Unlock()
			}
		}
	}, chromedp.Flag("host-resolver-rules", "MAP rebind.test 127.0.0.2"))

	// The developer opens the printed URL: the browser now holds the session cookie.
	navigate(t, ctx, dashboard.SecretURL(sys.URL, secret)+"#/services")
	poll(t, ctx, "the page at / with the session", `location.pathname === '/' && location.search === '' && document.body.dataset.authorized === '1'`)
	if n := eval[int](t, ctx, `document.cookie.length`); n != 0 {
		t.Fatalf("the session cookie is readable by scripts (document.cookie has %d characters)", n)
	}
	addsvc := sys.Instance("addsvc-1")
	before := addsvc.Status()

	unchanged := func(t *testing.T, what string) {
		t.Helper()
		time.Sleep(time.Second) // a kill or call that got through would show by now
		if st := addsvc.Status(); st.State != devrun.StateRunning || st.PID != before.PID || st.Restarts != before.Restarts {
			t.Fatalf("after %s: addsvc-1 %+v, before %+v", what, st, before)
		}
		for _, n := range []string{"31337", "31338", "31339"} {
			if lines := sys.Logs.Query(devrun.LogFilter{Service: "relay", Text: n}); len(lines) != 0 {
				t.Fatalf("after %s: relay was called: %s", what, lines[0].Raw)
			}
		}
	}

	t.Run("a page of another origin", func(t *testing.T) {
		navigate(t, ctx, evil.URL+"/attack")
		got := attack(t, ctx)
		t.Logf("what the page saw: %v", got)
		want := map[string]string{"kill, no-cors": "opaque", "kill, page header": "error", "call, no-cors": "opaque",
			"call, page header": "error", "read": "error"}
		for k, w := range want {
			if !strings.HasPrefix(got[k], w) {
				t.Errorf("%s: %q, want %s", k, got[k], w)
			}
		}
		unchanged(t, "the cross-origin page")
	})

	t.Run("a form posted by another origin", func(t *testing.T) {
		navigate(t, ctx, evil.URL+"/form")
		poll(t, ctx, "the dashboard's refusal in the window", `location.href.startsWith(`+fmt.Sprintf("%q", sys.URL)+`) && document.body && document.body.innerText.includes('cross-origin')`)
		unchanged(t, "the form post")
	})

	mu.Lock()
	for p, codes := range answers {
		for _, c := range codes {
			if c != http.StatusForbidden {
				t.Errorf("the dashboard answered %s with %d", p, c)
			}
		}
	}
	if len(answers["/api/instances/addsvc-1/kill"]) < 2 || len(answers["/api/call/relay/add"]) < 2 {
		t.Errorf("the cross-origin requests did not all reach the dashboard to be refused: %v", answers)
	}
	mu.Unlock()

	t.Run("a DNS-rebinding page", func(t *testing.T) {
		rebindURL := "http://rebind.test:" + dashPort + "/"
		navigate(t, ctx, rebindURL)
		poll(t, ctx, "the attacker's page", `typeof window.attack === 'function'`)
		rb.rebound.Store(true)
		got := attack(t, ctx)
		t.Logf("what the page saw: %v", got)
		for _, k := range []string{"read", "kill", "call"} {
			if !strings.HasPrefix(got[k], "403 ") || !strings.Contains(got[k], "foreign Host") {
				t.Errorf("%s: %q, want 403 foreign Host", k, got[k])
			}
		}
		unchanged(t, "the rebinding page")
	})

	t.Run("the dashboard's own page kills", func(t *testing.T) {
		navigate(t, ctx, sys.URL+"/#/services")
		poll(t, ctx, "the kill button", `document.querySelector('button.kill[data-id="addsvc-1"]') && document.body.dataset.authorized === '1'`)
		if err := chromedp.Do(ctx, chromedp.Click(`button.kill[data-id="addsvc-1"]`)); err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, "the notice", `!document.querySelector('#notice').hidden && document.querySelector('#notice').textContent.includes('killed addsvc-1')`)
		eventually(t, "addsvc-1 restarted", func() bool {
			st := addsvc.Status()
			return st.State == devrun.StateRunning && st.PID != before.PID && st.Restarts == before.Restarts+1
		})
	})

	t.Run("the dashboard's own API explorer calls", func(t *testing.T) {
		navigate(t, ctx, sys.URL+"/#/api")
		poll(t, ctx, "relay's endpoint and addsvc's", `document.querySelector('#endpoints div[data-service="relay"][data-path="/add"]') &&
			document.querySelector('#endpoints div[data-service="addsvc"][data-path="/sum"]')`)
		// addsvc is internal: its POST endpoint is shown read-only, and cannot be sent.
		if err := chromedp.Do(ctx, chromedp.Click(`#endpoints div[data-service="addsvc"][data-path="/sum"]`)); err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, "the read-only note", `document.querySelector('#call-form button[type=submit]').disabled &&
			document.querySelector('#read-only-note').textContent.includes('through the public service, relay')`)
		if err := chromedp.Do(ctx, chromedp.Click(`#endpoints div[data-service="relay"][data-path="/add"]`)); err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, "the call form", `document.querySelector('#call-form textarea') && !document.querySelector('#call-form button[type=submit]').disabled`)
		if err := chromedp.Do(ctx,
			chromedp.SetValue(`#call-form textarea`, `{"a":40,"b":2}`),
			chromedp.Click(`#call-form button[type=submit]`)); err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, "the answer", `document.querySelector('#call-status') && document.querySelector('#call-body').textContent.includes('42')`)
		if s := eval[string](t, ctx, `document.querySelector('#call-status').textContent`); !strings.HasPrefix(s, "200") {
			t.Fatalf("status %q", s)
		}
	})

	t.Run("without the session the page only reads", func(t *testing.T) {
		if _, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
			t.Fatal(err)
		}
		navigate(t, ctx, "about:blank") // a new page load, not a hash change
		navigate(t, ctx, sys.URL+"/#/services")
		poll(t, ctx, "the read-only banner and the instances", `!document.querySelector('#session').hidden &&
			document.querySelector('tr.instance[data-id="addsvc-1"][data-state="running"]')`)
		now := addsvc.Status()
		if err := chromedp.Do(ctx, chromedp.Click(`button.kill[data-id="addsvc-1"]`)); err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, "the refusal", `document.querySelector('#notice').dataset.error === '1' && document.querySelector('#notice').textContent.includes('secret')`)
		time.Sleep(time.Second)
		if st := addsvc.Status(); st.PID != now.PID || st.State != devrun.StateRunning {
			t.Fatalf("killed without the session: %+v", st)
		}
	})
}
