package binding

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/svckit/svckit/observe"
	"github.com/svckit/svckit/svcerr"
)

// httpCall is the http-call output.
type httpCall struct {
	name        string
	method      string
	url         template
	headers     map[string]template
	contentType string
	timeout     time.Duration
	sig         Signature
	secret      secretSource // nil: unsigned
	maxResp     int64
	client      *http.Client
	now         func() time.Time
}

func newHTTPCall(ctx context.Context, name string, c *HTTPCallConfig, d *Deps) (*httpCall, error) {
	o := &httpCall{name: name, method: c.Method, contentType: c.ContentType, timeout: c.Timeout,
		sig: c.Signature, maxResp: c.MaxResponse, client: d.HTTPClient, now: d.now, headers: map[string]template{}}
	if c.URL == "" {
		return nil, required("url")
	}
	var err error
	if o.url, err = parseTemplate(c.URL); err != nil {
		return nil, fieldErr("url", err)
	}
	u, err := url.Parse(strings.Join(o.url.parts, "x"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, invalid("url", "%q: want an http:// or https:// URL", c.URL)
	}
	if _, afterScheme, _ := strings.Cut(o.url.parts[0], "://"); !o.url.static() && !strings.ContainsAny(afterScheme, "/?") {
		// Metadata may come from a request: it must not choose the host.
		return nil, invalid("url", "%q: placeholders are allowed in the path and query only", c.URL)
	}
	if o.method == "" {
		o.method = http.MethodPost
	}
	if strings.ContainsAny(o.method, " \t/") || strings.ToUpper(o.method) != o.method {
		return nil, invalid("method", "%q is not an HTTP method", c.Method)
	}
	for k, v := range c.Headers {
		if k == "" || strings.ContainsAny(k, " \t\r\n:") {
			return nil, invalid("headers", "%q is not a header name", k)
		}
		t, err := parseTemplate(v)
		if err != nil {
			return nil, fieldErr("headers."+k, err)
		}
		o.headers[http.CanonicalHeaderKey(k)] = t
	}
	if o.contentType == "" {
		o.contentType = "application/json"
	}
	if o.timeout == 0 {
		o.timeout = 10 * time.Second
	}
	if o.timeout < 0 {
		return nil, invalid("timeout", "must not be negative")
	}
	if o.maxResp == 0 {
		o.maxResp = 1 << 20
	}
	if o.maxResp < 0 {
		return nil, invalid("max_response", "must be positive")
	}
	if o.client == nil {
		o.client = &http.Client{}
	}
	if err := c.Signature.validate(); err != nil {
		return nil, nested("signature", err)
	}
	if c.Secret != "" {
		if o.secret, err = resolveSecret(ctx, c.Secret, d); err != nil {
			return nil, fieldErr("secret", err)
		}
	} else if c.Signature != (Signature{}) {
		return nil, invalid("signature", "needs secret")
	}
	return o, nil
}

// Name implements Output.
func (o *httpCall) Name() string { return o.name }

// Invoke implements Output: it sends r.Data as the body. A non-2xx response is an error
// whose kind follows the status (5xx: unavailable) and whose metadata has "status"; a
// transport failure or the timeout is unavailable.
func (o *httpCall) Invoke(ctx context.Context, r Request) (Response, error) {
	u, err := o.url.fill(r.Metadata, o.url.urlEscaper())
	if err != nil {
		return Response{}, fmt.Errorf("binding %s: url: %w", o.name, err)
	}
	cctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, o.method, u, bytes.NewReader(r.Data))
	if err != nil {
		return Response{}, svcerr.Wrap(svcerr.InvalidArgument, "binding "+o.name+": cannot make the request", err)
	}
	req.Header.Set("Content-Type", o.contentType)
	observe.Propagator().Inject(ctx, propagation.HeaderCarrier(req.Header))
	if id := r.Metadata[MetaID]; id != "" {
		req.Header.Set("Idempotency-Key", id)
	}
	for k, t := range o.headers {
		v, err := t.fill(r.Metadata, headerValue)
		if err != nil {
			return Response{}, fmt.Errorf("binding %s: header %s: %w", o.name, k, err)
		}
		req.Header.Set(k, v)
	}
	if o.secret != nil {
		secret, err := o.secret(ctx)
		if err != nil {
			return Response{}, svcerr.Wrap(svcerr.Unavailable, "binding "+o.name+": cannot read the signing secret", err)
		}
		o.sig.Sign(secret, req.Header, r.Data, o.now())
	}
	resp, err := o.client.Do(req)
	if ue := (*url.Error)(nil); errors.As(err, &ue) {
		err = ue.Err // without the URL, whose query may hold credentials
	}
	if err != nil {
		if ctx.Err() != nil {
			return Response{}, svcerr.Wrap(svcerr.KindOf(ctx.Err()), "binding "+o.name+": "+o.method+" "+redact(req.URL), ctx.Err())
		}
		return Response{}, svcerr.Wrap(svcerr.Unavailable, "binding "+o.name+": "+o.method+" "+redact(req.URL), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, o.maxResp+1))
	if err != nil {
		return Response{}, svcerr.Wrap(svcerr.Unavailable, "binding "+o.name+": reading the response", err)
	}
	if int64(len(body)) > o.maxResp {
		return Response{}, svcerr.Wrap(svcerr.ResourceExhausted, fmt.Sprintf("response body is larger than %d bytes", o.maxResp), fmt.Errorf("binding %s", o.name))
	}
	md := make(map[string]string, len(resp.Header)+1)
	for k, vs := range resp.Header {
		if len(vs) > 0 {
			md[strings.ToLower(k)] = vs[0]
		}
	}
	md["status"] = strconv.Itoa(resp.StatusCode)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Response{Data: body, Metadata: md}, statusError(o.name, o.method, req.URL, resp.StatusCode, body)
	}
	return Response{Data: body, Metadata: md}, nil
}

// statusError returns the error for a non-2xx status.
func statusError(name, method string, u *url.URL, status int, body []byte) error {
	kind := svcerr.KindFromHTTP(status)
	switch {
	case status == http.StatusNotImplemented:
	case status >= 500:
		kind = svcerr.Unavailable
	case status < 400:
		kind = svcerr.FailedPrecondition // a redirect the client did not follow
	}
	snippet := strings.TrimSpace(string(body))
	if len(snippet) > 200 {
		snippet = snippet[:200] + "…"
	}
	msg := fmt.Sprintf("binding %s: %s %s: %d %s", name, method, redact(u), status, http.StatusText(status))
	if snippet != "" {
		msg += ": " + oneLine(snippet)
	}
	return svcerr.New(kind, msg).WithMeta("status", strconv.Itoa(status))
}

// redact returns u without its user info and query, which may hold credentials.
func redact(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.Fragment = ""
	return c.String()
}
