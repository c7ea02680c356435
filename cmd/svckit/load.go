package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/svckit/svckit/internal/loadgen"
	"github.com/svckit/svckit/mtls"
)

// shopItems is the order `svckit load` places on the shop's gateway by default.
const shopItems = `[{"productId":"sku-espresso","quantity":1},{"productId":"sku-filter","quantity":2}]`

// loadUsage is the help text of `svckit load`.
const loadUsage = `usage:
  svckit load -url URL [-X METHOD] [-path PATH] [-body TEXT|@FILE] [-H 'K: V']... [flags]
  svckit load -grpc HOST:PORT -method [pkg.Service/]Method [-body JSON] [flags]
  svckit load -url URL -openapi FILE|URL -op OPERATION [-param name=value]... [flags]
  svckit load [-shop] -url GATEWAY -token TOKEN [flags]      the shop's orders

Sends load to any endpoint and prints throughput, latency p50/p90/p99/max and failures by
status. -c N keeps N calls in flight (closed model); -rate R sends R calls per second on a
fixed schedule (open model: latency counts from each call's intended send time, and sends
that start late are counted). The body, path, -param and -H values are Go templates:
{{.N}} (the call's number), {{.Worker}}, {{randInt 1 100}}, {{randItem "a" "b"}},
{{mod .N 7}}, {{add .N 1}}, {{uuid}}, {{now}}, {{json "text"}}.
Targets must be loopback addresses unless -allow-remote. Services under mTLS (svckit dev
runs them so) need -mtls STATE/certs. See docs/load.md.

With -url set to a bare origin and no -path, -X, -body or -op (or with -shop), it places the
shop's orders (POST /orders with -items) as svckit load always has.

flags:`

// listFlag collects repeated -H and -param values.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ", ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// loadFlags are the settings of one `svckit load`.
type loadFlags struct {
	url, method, path, body, token string
	grpcAddr, grpcMethod           string
	openapi, op                    string
	mtlsDir, mtlsIdentity          string
	cpuProfile                     string
	tls                            *tls.Config // from -mtls
	headers, params                listFlag
	conc                           int
	rate                           float64
	dur, timeout, progress         time.Duration
	n                              int64
	shop, allowRemote              bool
	items                          string
	set                            map[string]bool // the flags given
}

// runLoad is `svckit load`: Ctrl-C stops the run and prints the summary so far.
func runLoad(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	return load(ctx, args, stdout, stderr)
}

// load runs `svckit load` until ctx ends.
func load(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f loadFlags
	fs := flag.NewFlagSet("svckit load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.url, "url", "", "HTTP target: a base URL (with -path or -op) or a full URL; the gateway for the shop's orders")
	fs.StringVar(&f.method, "X", "", "HTTP method (default GET, or POST with -body)")
	fs.StringVar(&f.path, "path", "", "path (and query) appended to -url, a template")
	fs.StringVar(&f.body, "body", "", "request body, a template; @FILE reads it from FILE (at most 1 MiB). JSON for gRPC")
	fs.Var(&f.headers, "H", "header 'Name: value', a template (repeatable); gRPC metadata for -grpc")
	fs.StringVar(&f.token, "token", os.Getenv("SVCKIT_TOKEN"), "bearer token sent as Authorization (or $SVCKIT_TOKEN); svckit dev prints one")
	fs.StringVar(&f.grpcAddr, "grpc", "", "gRPC target HOST:PORT (plaintext, or mTLS with -mtls); the method is found by server reflection")
	fs.StringVar(&f.grpcMethod, "method", "", "gRPC method: pkg.Service/Method, Service/Method or Method")
	fs.StringVar(&f.openapi, "openapi", "", "OpenAPI document (a file such as gateway/gateway.openapi.json, or a URL) for -op")
	fs.StringVar(&f.op, "op", "", "operation to call, by operationId (PlaceOrder finds GatewayPlaceOrder)")
	fs.Var(&f.params, "param", "path parameter name=value for -op, a template (repeatable)")
	fs.IntVar(&f.conc, "c", 16, fmt.Sprintf("concurrent calls: workers (closed model), or the most in flight at a -rate (1 to %d)", loadgen.MaxConcurrency))
	fs.Float64Var(&f.rate, "rate", 0, "calls per second on a fixed schedule (open model); 0: as fast as -c workers go")
	fs.DurationVar(&f.dur, "d", 30*time.Second, "duration: no call starts after it (at most 24h)")
	fs.Int64Var(&f.n, "n", 0, "stop after this many calls (0: no limit but -d)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "timeout of each call")
	fs.BoolVar(&f.shop, "shop", false, "place the shop's orders on the gateway at -url (the default for a bare -url)")
	fs.StringVar(&f.items, "items", shopItems, "the shop order's items, JSON (with -shop)")
	fs.BoolVar(&f.allowRemote, "allow-remote", false, "allow a target that is not a loopback address")
	fs.StringVar(&f.mtlsDir, "mtls", "", "call services under mTLS with the certificates in DIR (ca.crt and the -mtls-identity's), such as svckit dev's STATE/certs")
	fs.StringVar(&f.mtlsIdentity, "mtls-identity", "svckit-dev", "the certificate in -mtls DIR to present: NAME.crt and NAME.key")
	fs.DurationVar(&f.progress, "progress", time.Second, "interval of the progress line on stderr (0: none)")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write svckit load's own CPU profile (the load generator's, not the target's) to this file")
	fs.Usage = func() {
		fmt.Fprintln(stderr, loadUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "svckit load: unexpected argument %q (the target is -url or -grpc)\n", fs.Arg(0))
		return 2
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })

	plan, err := f.plan(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "svckit load:", err)
		return 2
	}
	defer plan.close()
	if f.cpuProfile != "" {
		stopProfile, err := startCPUProfile(f.cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "svckit load:", err)
			return 2
		}
		defer func() {
			if err := stopProfile(); err != nil {
				fmt.Fprintln(stderr, "svckit load:", err)
			}
		}()
	}

	model := fmt.Sprintf("%d concurrent", f.conc)
	if f.rate > 0 {
		model = fmt.Sprintf("%g/s (at most %d in flight)", f.rate, f.conc)
	}
	limit := "for " + f.dur.String()
	if f.n > 0 {
		limit = fmt.Sprintf("%d calls, at most %s", f.n, f.dur)
	}
	fmt.Fprintf(stdout, "%s, %s, %s…\n", plan.describe, model, limit)

	opts := loadgen.Options{Concurrency: f.conc, Rate: f.rate, Duration: f.dur, Requests: f.n,
		Drain: f.timeout, Call: plan.call, OK: plan.ok}
	if f.progress > 0 {
		opts.Progress, opts.ProgressEvery = progressPrinter(stderr, plan.noun), f.progress
	}
	res, err := loadgen.Run(ctx, opts)
	if opts.Progress != nil && isTerminal(stderr) {
		fmt.Fprintln(stderr)
	}
	if err != nil {
		fmt.Fprintln(stderr, "svckit load:", err)
		return 1
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stdout, "interrupted")
	}
	printSummary(stdout, res, plan, f.rate)
	return 0
}

// loadPlan is a resolved target: how to make one call and how to report it.
type loadPlan struct {
	describe  string // "POST http://…/orders"
	noun      string // "requests", "calls", "orders"
	okWord    string // "ok", "confirmed"
	call      loadgen.CallFunc
	ok        func(status int, body []byte) bool
	status    func(code int) string // a status for the summary
	close     func()
	shopOrder bool
}

// plan checks the flags and resolves the target.
func (f *loadFlags) plan(ctx context.Context) (*loadPlan, error) {
	switch {
	case f.conc < 1 || f.conc > loadgen.MaxConcurrency:
		return nil, fmt.Errorf("-c %d: want 1 to %d", f.conc, loadgen.MaxConcurrency)
	case !(f.rate >= 0 && f.rate <= 1e7): // NaN too
		return nil, fmt.Errorf("-rate %g: want 0 to 10000000 per second", f.rate)
	case f.dur <= 0 || f.dur > 24*time.Hour:
		return nil, fmt.Errorf("-d %s: want more than 0 and at most 24h", f.dur)
	case f.n < 0:
		return nil, fmt.Errorf("-n %d: want 0 (no limit) or more", f.n)
	case f.progress < 0:
		return nil, fmt.Errorf("-progress %s: want 0 (none) or more", f.progress)
	case f.timeout <= 0 || f.timeout > 10*time.Minute:
		return nil, fmt.Errorf("-timeout %s: want more than 0 and at most 10m", f.timeout)
	}
	body, err := f.bodyTemplate()
	if err != nil {
		return nil, err
	}
	if f.mtlsDir != "" {
		src, err := mtls.NewSource(filepath.Join(f.mtlsDir, mtls.CertFile(f.mtlsIdentity)),
			filepath.Join(f.mtlsDir, mtls.KeyFile(f.mtlsIdentity)), filepath.Join(f.mtlsDir, mtls.CACertFile))
		if err != nil {
			return nil, fmt.Errorf("-mtls: %w", err)
		}
		f.tls = src.ClientTLS()
	}
	if f.grpcAddr != "" {
		if f.url != "" || f.op != "" || f.openapi != "" || f.shop {
			return nil, errors.New("-grpc cannot be combined with -url, -openapi, -op or -shop")
		}
		if err := f.checkHost(ctx, f.grpcAddr); err != nil {
			return nil, err
		}
		return f.grpcPlan(ctx, body)
	}
	if f.url == "" {
		return nil, errors.New("no target: -url and -token are required to place the shop's orders (svckit dev prints both); " +
			"or -url URL [-X M -path P -body B] for any HTTP endpoint, -grpc ADDR -method M for a gRPC method, " +
			"-url URL -openapi DOC -op NAME for an OpenAPI operation")
	}
	u, err := url.Parse(f.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("-url %q: want an http:// or https:// URL", f.url)
	}
	if err := f.checkHost(ctx, u.Host); err != nil {
		return nil, err
	}
	if f.tls != nil && u.Scheme != "https" {
		return nil, fmt.Errorf("-mtls: -url %q: want https:// (a service's HTTP listener under mTLS)", f.url)
	}
	bare := (u.Path == "" || u.Path == "/") && u.RawQuery == ""
	if f.shop || (bare && !f.set["path"] && !f.set["X"] && !f.set["body"] && !f.set["op"] && !f.set["openapi"]) {
		if f.set["path"] || f.set["X"] || f.set["body"] || f.set["op"] || f.set["openapi"] {
			return nil, errors.New("-shop places orders: it takes no -path, -X, -body, -op or -openapi")
		}
		if f.token == "" {
			return nil, errors.New("-url and -token are required to place the shop's orders (svckit dev prints both)")
		}
		return f.shopPlan()
	}
	return f.httpPlan(ctx, u, body)
}

// checkHost refuses a target that is not loopback without -allow-remote.
func (f *loadFlags) checkHost(ctx context.Context, hostport string) error {
	if f.allowRemote {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := loadgen.CheckLoopback(ctx, hostport); err != nil {
		return fmt.Errorf("%w; svckit load is a development tool and sends only to this machine unless -allow-remote", err)
	}
	return nil
}

// bodyTemplate reads -body: text, or @FILE.
func (f *loadFlags) bodyTemplate() (*loadgen.Template, error) {
	text := f.body
	if file, ok := strings.CutPrefix(text, "@"); ok {
		fh, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("-body: %w", err)
		}
		defer fh.Close()
		b, err := io.ReadAll(io.LimitReader(fh, loadgen.MaxBodyBytes+1))
		if err != nil {
			return nil, fmt.Errorf("-body: %w", err)
		}
		text = string(b)
	}
	return loadgen.ParseTemplate("-body", text)
}

// headerTemplates parses -H and adds -token as Authorization.
func (f *loadFlags) headerTemplates() ([]string, []*loadgen.Template, error) {
	var names []string
	var values []*loadgen.Template
	for _, h := range f.headers {
		name, value, ok := strings.Cut(h, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t\r\n") {
			return nil, nil, fmt.Errorf("-H %q: want 'Name: value'", h)
		}
		t, err := loadgen.ParseTemplate("-H "+name, strings.TrimSpace(value))
		if err != nil {
			return nil, nil, err
		}
		names, values = append(names, name), append(values, t)
	}
	if f.token != "" {
		names, values = append(names, "Authorization"), append(values, mustStatic("Bearer "+f.token))
	}
	return names, values, nil
}

func mustStatic(s string) *loadgen.Template {
	t, _ := loadgen.ParseTemplate("", strings.ReplaceAll(s, "{{", "")) // a token has no template
	return t
}

// httpClient is the client for HTTP targets: enough idle connections for -c, the -timeout,
// and no redirects (a redirect could lead away from loopback).
func (f *loadFlags) httpClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = f.conc
	t.MaxIdleConnsPerHost = f.conc
	if f.tls != nil {
		t.TLSClientConfig = f.tls
	}
	return &http.Client{Transport: t, Timeout: f.timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func httpStatus(code int) string {
	if code == 0 {
		return "no answer"
	}
	return fmt.Sprintf("status %d", code)
}

// shopPlan places the shop's orders: POST /orders with the token, a success being a
// confirmed order.
//
// The orders go out through loadgen.FixedHTTP: one keep-alive connection per worker, the
// answer read on the worker's goroutine, so that the load generator's own CPU per order,
// which counts in bench/shop.sh's figures, stays small.
func (f *loadFlags) shopPlan() (*loadPlan, error) {
	target := strings.TrimSuffix(f.url, "/") + "/orders"
	body := []byte(`{"items":` + f.items + `}`)
	hdr := http.Header{"Authorization": {"Bearer " + f.token}, "Content-Type": {"application/json"}}
	fixed, err := loadgen.NewFixedHTTP(loadgen.Request{Method: http.MethodPost, URL: target, Body: body, Header: hdr},
		f.conc, f.tls, f.timeout)
	if err != nil {
		return nil, err
	}
	return &loadPlan{
		describe: "placing orders on " + f.url, noun: "orders", okWord: "confirmed", shopOrder: true,
		call: fixed.Call,
		ok: func(status int, b []byte) bool {
			return status == http.StatusOK && bytes.Contains(b, []byte(`"status":"confirmed"`))
		},
		status: httpStatus,
		close:  fixed.Close,
	}, nil
}

var pathParamRE = regexp.MustCompile(`\{([^{}/]+)\}`)

// httpPlan calls any HTTP endpoint: -url plus -path, or the operation -op of -openapi.
func (f *loadFlags) httpPlan(ctx context.Context, u *url.URL, body *loadgen.Template) (*loadPlan, error) {
	c := f.httpClient()
	base := strings.TrimSuffix(f.url, "/")
	method := strings.ToUpper(f.method)
	// pieces of the URL after base: literal text, or a path parameter to render and escape.
	type piece struct {
		lit   string
		param *loadgen.Template
		t     *loadgen.Template // a templated literal (-path)
	}
	var pieces []piece
	sendBody := f.body != ""
	switch {
	case f.op != "" || f.openapi != "":
		if f.op == "" || f.openapi == "" {
			return nil, errors.New("-op and -openapi go together")
		}
		if f.set["path"] {
			return nil, errors.New("-op gives the path: drop -path")
		}
		if strings.HasPrefix(f.openapi, "http://") || strings.HasPrefix(f.openapi, "https://") {
			du, err := url.Parse(f.openapi)
			if err != nil {
				return nil, fmt.Errorf("-openapi: %w", err)
			}
			if err := f.checkHost(ctx, du.Host); err != nil {
				return nil, err
			}
		}
		rctx, cancel := context.WithTimeout(ctx, f.timeout)
		doc, err := loadgen.ReadOpenAPI(rctx, c, f.openapi)
		cancel()
		if err != nil {
			return nil, err
		}
		op, err := loadgen.FindOperation(doc, f.op)
		if err != nil {
			return nil, err
		}
		if method != "" && method != op.Method {
			return nil, fmt.Errorf("-X %s: operation %s is %s %s", method, op.ID, op.Method, op.Path)
		}
		method = op.Method
		params := map[string]*loadgen.Template{}
		for _, p := range f.params {
			name, value, ok := strings.Cut(p, "=")
			if !ok || name == "" {
				return nil, fmt.Errorf("-param %q: want name=value", p)
			}
			t, err := loadgen.ParseTemplate("-param "+name, value)
			if err != nil {
				return nil, err
			}
			params[name] = t
		}
		for name := range params {
			if !strings.Contains(op.Path, "{"+name+"}") {
				return nil, fmt.Errorf("-param %s: %s %s has no such parameter", name, op.Method, op.Path)
			}
		}
		prev := 0
		for _, m := range pathParamRE.FindAllStringSubmatchIndex(op.Path, -1) {
			name := op.Path[m[2]:m[3]]
			t := params[name]
			if t == nil {
				return nil, fmt.Errorf("%s %s needs -param %s=VALUE", op.Method, op.Path, name)
			}
			pieces = append(pieces, piece{lit: op.Path[prev:m[0]]}, piece{param: t})
			prev = m[1]
		}
		pieces = append(pieces, piece{lit: op.Path[prev:]})
		if f.body == "" && op.Body {
			body = mustStatic("{}") // an operation with a body: an empty object by default
		}
		sendBody = op.Body || f.body != ""
	case len(f.params) > 0:
		return nil, errors.New("-param goes with -op")
	default:
		if f.path != "" {
			if !strings.HasPrefix(f.path, "/") {
				return nil, fmt.Errorf("-path %q: want a path starting with /", f.path)
			}
			t, err := loadgen.ParseTemplate("-path", f.path)
			if err != nil {
				return nil, err
			}
			pieces = append(pieces, piece{t: t})
		} else if u.Path == "" || u.Path == "/" {
			base = f.url // a bare origin: GET / as given
		}
	}
	if method == "" {
		method = http.MethodGet
		if sendBody {
			method = http.MethodPost
		}
	}
	names, values, err := f.headerTemplates()
	if err != nil {
		return nil, err
	}
	// A request built per call; static parts are rendered once.
	build := func(worker int, seq int64) (loadgen.Request, error) {
		var sb strings.Builder
		sb.WriteString(base)
		for _, p := range pieces {
			switch {
			case p.param != nil:
				b, err := p.param.Render(seq, worker)
				if err != nil {
					return loadgen.Request{}, err
				}
				sb.WriteString(url.PathEscape(string(b)))
			case p.t != nil:
				b, err := p.t.Render(seq, worker)
				if err != nil {
					return loadgen.Request{}, err
				}
				sb.Write(b)
			default:
				sb.WriteString(p.lit)
			}
		}
		r := loadgen.Request{Method: method, URL: sb.String(), Header: make(http.Header, len(names)+1)}
		for i, n := range names {
			v, err := values[i].Render(seq, worker)
			if err != nil {
				return loadgen.Request{}, err
			}
			r.Header.Add(n, string(v))
		}
		if sendBody {
			b, err := body.Render(seq, worker)
			if err != nil {
				return loadgen.Request{}, err
			}
			r.Body = b
		}
		return r, nil
	}
	first, err := build(0, 0)
	if err != nil {
		return nil, err
	}
	if _, err := http.NewRequest(first.Method, first.URL, nil); err != nil {
		return nil, fmt.Errorf("the first request: %w", err)
	}
	return &loadPlan{
		describe: method + " " + first.URL, noun: "requests", okWord: "ok",
		call: func(ctx context.Context, worker int, seq int64) (int, []byte, error) {
			r, err := build(worker, seq)
			if err != nil {
				return 0, nil, fmt.Errorf("request %d: %w", seq, err)
			}
			return loadgen.SendHTTP(ctx, c, r)
		},
		ok:     func(status int, _ []byte) bool { return status >= 200 && status < 300 },
		status: httpStatus,
		close:  c.CloseIdleConnections,
	}, nil
}

func mustRender(t *loadgen.Template) []byte {
	b, _ := t.Render(0, 0)
	return b
}

// grpcPlan calls a unary gRPC method found by reflection.
func (f *loadFlags) grpcPlan(ctx context.Context, body *loadgen.Template) (*loadPlan, error) {
	if f.grpcMethod == "" {
		return nil, errors.New("-grpc needs -method, such as -method addsvc.Add/Sum")
	}
	if f.set["X"] || f.set["path"] || len(f.params) > 0 {
		return nil, errors.New("-X, -path and -param are for HTTP targets")
	}
	creds := insecure.NewCredentials()
	if f.tls != nil {
		creds = credentials.NewTLS(f.tls)
	}
	cc, err := grpc.NewClient(f.grpcAddr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("-grpc %s: %w", f.grpcAddr, err)
	}
	rctx, cancel := context.WithTimeout(ctx, f.timeout)
	m, err := loadgen.ResolveGRPC(rctx, cc, f.grpcMethod)
	cancel()
	if err != nil {
		cc.Close()
		if f.tls == nil && status.Code(errors.Unwrap(err)) == codes.Unavailable {
			return nil, fmt.Errorf("%w (a service under mTLS, as svckit dev runs them, needs -mtls STATE/certs)", err)
		}
		return nil, err
	}
	names, values, err := f.headerTemplates()
	if err != nil {
		cc.Close()
		return nil, err
	}
	md := metadata.MD{}
	for i, n := range names {
		if !values[i].Static() {
			cc.Close()
			return nil, fmt.Errorf("-H %s: gRPC metadata is sent as given, without templates", n)
		}
		md.Append(strings.ToLower(n), string(mustRender(values[i])))
	}
	call, err := loadgen.GRPCCall(cc, m, body, md, f.timeout)
	if err != nil {
		cc.Close()
		return nil, err
	}
	describe := "gRPC " + m.Path + " on " + f.grpcAddr
	if f.tls != nil {
		describe += " (mTLS)"
	}
	return &loadPlan{
		describe: describe, noun: "calls", okWord: "ok",
		call:   call,
		ok:     func(status int, _ []byte) bool { return status == int(codes.OK) },
		status: func(code int) string { return codes.Code(code).String() },
		close:  func() { cc.Close() },
	}, nil
}

// progressPrinter returns a Progress callback that prints one line a second to w: on a
// terminal over the last one, otherwise one line each.
func progressPrinter(w io.Writer, noun string) func(loadgen.Progress) {
	end := "\n"
	if isTerminal(w) {
		end = "\x1b[K\r"
	}
	var last loadgen.Progress
	return func(p loadgen.Progress) {
		rate := float64(p.Done-last.Done) / (p.Elapsed - last.Elapsed).Seconds()
		fmt.Fprintf(w, "%5.1fs  %d %s  %.0f/s  %d failed  %d late  %d in flight%s",
			p.Elapsed.Seconds(), p.Done, noun, rate, p.Failures, p.Late, p.InFlight, end)
		last = p
	}
}

// printSummary prints the result: totals, throughput, latency, failures by status.
func printSummary(w io.Writer, res loadgen.Result, p *loadPlan, rate float64) {
	fmt.Fprintf(w, "%s: %d in %s\n%s/s: %.0f %s\n", p.noun, res.Requests, res.Elapsed.Round(time.Millisecond),
		p.noun, res.Rate, p.okWord)
	fmt.Fprintf(w, "p50: %s  p90: %s  p99: %s  max: %s\n", loadgen.Round(res.P50), loadgen.Round(res.P90),
		loadgen.Round(res.P99), loadgen.Round(res.Max))
	if rate > 0 {
		fmt.Fprintf(w, "late: %d of %d sends started more than %s after their intended time (latency counts from it)\n",
			res.Late, res.Requests+res.CutOff, loadgen.LateAfter)
		if res.Unsent > 0 {
			fmt.Fprintf(w, "unsent: %d sends fell due and never started, every worker busy: the rate was not reached (raise -c)\n",
				res.Unsent)
		}
	}
	if !p.shopOrder {
		codes := sortedKeys(res.ByStatus)
		var parts []string
		for _, c := range codes {
			parts = append(parts, fmt.Sprintf("%s: %d", p.status(c), res.ByStatus[c]))
		}
		fmt.Fprintf(w, "answers: %s\n", strings.Join(parts, ", "))
	}
	fmt.Fprintf(w, "failures: %d\n", res.Failures)
	if res.Failures > 0 {
		for _, c := range sortedKeys(res.FailedByStatus) {
			label := p.status(c)
			if p.shopOrder && c == http.StatusOK {
				label = "status 200, not confirmed"
			}
			fmt.Fprintf(w, "  %s: %d\n", label, res.FailedByStatus[c])
		}
		fmt.Fprintf(w, "  last failure: %s\n", res.LastError)
	}
	if res.CutOff > 0 {
		fmt.Fprintf(w, "cut off: %d calls in flight at the end, not counted\n", res.CutOff)
	}
}

func sortedKeys(m map[int]int64) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}
