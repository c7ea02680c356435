package http

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
	"github.com/svckit/svckit/transport/meta"
)

// Client calls a service's endpoints over HTTP. Its endpoints run client-side middleware
// (retries, breakers, tracing, metrics) like any other endpoint.
type Client struct {
	base    *url.URL
	service string
	hc      *http.Client
	mws     []endpoint.Middleware
	prop    propagation.TextMapPropagator
	maxBody int64
	tls     *tls.Config
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithHTTPClient sets the *http.Client used for calls (default: a client with a tuned
// transport that keeps up to 64 idle connections per host).
func WithHTTPClient(hc *http.Client) ClientOption { return func(c *Client) { c.hc = hc } }

// WithClientMiddleware appends middleware that wraps every endpoint the client makes.
func WithClientMiddleware(mws ...endpoint.Middleware) ClientOption {
	return func(c *Client) { c.mws = append(c.mws, mws...) }
}

// WithClientPropagator sets how trace context is written to request headers. The default
// writes W3C traceparent, tracestate and baggage.
func WithClientPropagator(p propagation.TextMapPropagator) ClientOption {
	return func(c *Client) { c.prop = p }
}

// WithMaxResponseBytes limits response bodies (default 16 MiB).
func WithMaxResponseBytes(n int64) ClientOption { return func(c *Client) { c.maxBody = n } }

// NewClient returns a client for the service at baseURL, such as "http://127.0.0.1:8080".
func NewClient(baseURL, service string, opts ...ClientOption) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("http client for %s: bad base URL %q: %w", service, baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("http client for %s: base URL %q must start with http:// or https://", service, baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	c := &Client{base: u, service: service, prop: defaultPropagator(), maxBody: 16 << 20}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: NewTransport(c.tls)}
	}
	return c, nil
}

// Call returns an endpoint that calls pattern ("POST /sum", "GET /users/{id}") on the
// service. Requests of body-carrying methods are sent as JSON; wildcards in the path are
// filled from the request's PathParam method. A problem+json response becomes the
// *svcerr.Error the server returned, with the same kind. The option [Idempotent] marks a
// POST or PATCH call idempotent for retry middleware, as GET, HEAD, PUT and DELETE calls
// are already; other route options do not apply to clients.
func Call[Req, Resp any](c *Client, pattern, name string, opts ...RouteOption) endpoint.Endpoint[Req, Resp] {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		panic(fmt.Sprintf("svckit/transport/http: pattern %q needs a method, as in \"POST /sum\"", pattern))
	}
	method = strings.ToUpper(method)
	withBody := method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch
	hasWildcards := strings.Contains(path, "{")
	var cfg routeConfig
	for _, o := range opts {
		o(&cfg)
	}
	info := endpoint.Info{
		Service: c.service, Method: name, Transport: "http", Client: true,
		Idempotent: cfg.idempotent || method == http.MethodGet || method == http.MethodHead ||
			method == http.MethodPut || method == http.MethodDelete,
	}
	e := func(ctx context.Context, req Req) (Resp, error) {
		var zero Resp
		p := path
		if hasWildcards {
			pp, ok := any(req).(PathParamer)
			if !ok {
				pp, ok = any(&req).(PathParamer)
			}
			if !ok {
				return zero, svcerr.Wrap(svcerr.Internal, "building the request failed", fmt.Errorf("request type %T has no PathParam method for path %s", req, path))
			}
			var err error
			if p, err = fillPath(path, pp); err != nil {
				return zero, err
			}
		}
		if !withBody {
			qe, ok := any(req).(QueryEncoder)
			if !ok {
				qe, ok = any(&req).(QueryEncoder)
			}
			if ok {
				if q := qe.URLQuery(); len(q) > 0 {
					p += "?" + q.Encode()
				}
			}
		}
		var body io.Reader
		if withBody {
			b, err := json.Marshal(req)
			if err != nil {
				return zero, svcerr.Wrap(svcerr.InvalidArgument, "encoding the request failed", err)
			}
			body = bytes.NewReader(b)
		}
		hr, err := http.NewRequestWithContext(ctx, method, c.base.String()+p, body)
		if err != nil {
			return zero, svcerr.Wrap(svcerr.Internal, "building the request failed", err)
		}
		if withBody {
			hr.Header["Content-Type"] = []string{"application/json"}
		}
		hr.Header["Accept"] = []string{"application/json, application/problem+json"}
		// Outside any request there is no id to forward: the server assigns one.
		rid := meta.RequestID(ctx)
		if rid != "" {
			hr.Header[meta.RequestIDHeader] = []string{rid}
		}
		if dl, ok := ctx.Deadline(); ok {
			if left := time.Until(dl); left > 0 {
				ms := (left + time.Millisecond - 1) / time.Millisecond
				hr.Header[TimeoutHeader] = []string{strconv.FormatInt(int64(ms), 10)}
			}
		}
		c.prop.Inject(ctx, headerCarrier(hr.Header))
		meta.OutgoingHeaders(ctx, hr.Header.Set)
		resp, err := doUnsent(ctx, c.hc, hr)
		if err != nil {
			return zero, transportError(ctx, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return zero, errorFromResponse(resp, rid)
		}
		var out Resp
		if resp.StatusCode == http.StatusNoContent {
			return out, nil
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
		if err != nil {
			return zero, transportError(ctx, err)
		}
		if int64(len(data)) > c.maxBody {
			return zero, svcerr.Wrap(svcerr.ResourceExhausted, fmt.Sprintf("response is larger than %d bytes", c.maxBody),
				fmt.Errorf("response from %s.%s", c.service, name))
		}
		if len(data) > 0 {
			if err := json.Unmarshal(data, &out); err != nil {
				return zero, svcerr.Wrap(svcerr.Internal, "decoding the response failed", fmt.Errorf("%s.%s: %w", c.service, name, err))
			}
		}
		return out, nil
	}
	return endpoint.Wrap(info, e, c.mws...)
}

// doUnsent sends hr, and sends it again while the connection to the server cannot be
// made (refused, unreachable): such a request never left, so repeating it is safe for any
// method, and a server that restarts is waited for within ctx instead of failing the
// call at once. Between attempts it waits a backoff that starts at 10 ms, doubles up to
// 500 ms and is jittered by ±50%. Any other error, or the end of ctx, ends it; a ctx
// without a deadline is given up on after [UnsentWait].
func doUnsent(ctx context.Context, hc *http.Client, hr *http.Request) (*http.Response, error) {
	backoff := 10 * time.Millisecond
	var giveUp time.Time
	if _, ok := ctx.Deadline(); !ok {
		giveUp = time.Now().Add(UnsentWait)
	}
	for {
		resp, err := hc.Do(hr)
		if err == nil || !dialFailed(err) || ctx.Err() != nil || (!giveUp.IsZero() && time.Now().After(giveUp)) {
			return resp, err
		}
		t := time.NewTimer(backoff/2 + rand.N(backoff))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
		backoff = min(2*backoff, 500*time.Millisecond)
		if hr.GetBody != nil {
			body, gerr := hr.GetBody()
			if gerr != nil {
				return nil, err
			}
			hr = hr.Clone(ctx)
			hr.Body = body
		}
	}
}

// UnsentWait is how long a call without a deadline keeps trying to connect to a server
// that refuses connections before it fails as unavailable. Calls with a deadline try
// until the deadline.
const UnsentWait = 3 * time.Second

// dialFailed reports whether err is a failure to connect: no byte of the request left.
func dialFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// transportError classifies a failed round trip: the caller's own cancellation or deadline,
// or an unavailable server.
func transportError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return svcerr.Wrap(svcerr.KindOf(ctxErr), ctxErr.Error(), err)
	}
	return svcerr.Wrap(svcerr.Unavailable, "service unreachable", err)
}

func fillPath(path string, pp PathParamer) (string, error) {
	var b strings.Builder
	for {
		i := strings.IndexByte(path, '{')
		if i < 0 {
			b.WriteString(path)
			return b.String(), nil
		}
		j := strings.IndexByte(path[i:], '}')
		if j < 0 {
			b.WriteString(path)
			return b.String(), nil
		}
		b.WriteString(path[:i])
		name := strings.TrimSuffix(path[i+1:i+j], "...")
		if name == "$" {
			path = path[i+j+1:]
			continue
		}
		v := pp.PathParam(name)
		if v == "" {
			return "", svcerr.Invalid(name, "is required in the path")
		}
		b.WriteString(url.PathEscape(v))
		path = path[i+j+1:]
	}
}
