package natsrpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
	"github.com/svckit/svckit/transport/meta"
)

// DefaultTimeout bounds a call whose context has no deadline.
const DefaultTimeout = 30 * time.Second

// Client calls the methods of one service over NATS request/reply. [Call] turns its
// methods into endpoints, wrapped with the client's middleware.
type Client struct {
	nc       *nats.Conn
	service  string
	prefix   string
	mws      []endpoint.Middleware
	prop     propagation.TextMapPropagator
	maxBody  int64
	timeout  time.Duration
	attempt  time.Duration
	maxReply int
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithClientMiddleware appends middleware that wraps every endpoint the client makes. The
// first is the outermost. The middleware sees endpoint.Info.Client set.
func WithClientMiddleware(mws ...endpoint.Middleware) ClientOption {
	return func(c *Client) { c.mws = append(c.mws, mws...) }
}

// WithClientPropagator sets how trace context is written to request headers. The default
// writes W3C traceparent, tracestate and baggage.
func WithClientPropagator(p propagation.TextMapPropagator) ClientOption {
	return func(c *Client) { c.prop = p }
}

// WithClientPrefix sets the first token(s) of the default subjects, "svc" unless set; it
// must match the server's [WithPrefix].
func WithClientPrefix(prefix string) ClientOption { return func(c *Client) { c.prefix = prefix } }

// WithMaxRequestBytes sets the largest request body the client sends (default
// [DefaultMaxBodyBytes]; the connection's max payload bounds it too). Larger requests
// fail with ResourceExhausted without being sent.
func WithMaxRequestBytes(n int64) ClientOption { return func(c *Client) { c.maxBody = n } }

// WithDefaultTimeout sets the deadline of calls whose context has none; the default is
// [DefaultTimeout].
func WithDefaultTimeout(d time.Duration) ClientOption { return func(c *Client) { c.timeout = d } }

// WithAttemptTimeout makes idempotent calls ([Idempotent]) that have no reply after d
// send the request again, within the call's deadline: a reply lost with a NATS node that
// went down (or a request lost with it) then costs d instead of the whole deadline. Only
// idempotent calls are sent again, as the server may have run the first request. The
// default, 0, waits for one reply until the deadline.
func WithAttemptTimeout(d time.Duration) ClientOption { return func(c *Client) { c.attempt = d } }

// NewClient returns a client for the named service over nc.
func NewClient(nc *nats.Conn, service string, opts ...ClientOption) *Client {
	c := &Client{nc: nc, service: service, prefix: DefaultPrefix, prop: defaultPropagator(),
		maxBody: DefaultMaxBodyBytes, timeout: DefaultTimeout, maxReply: maxReplyBytes}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Call returns an endpoint that calls method name of the client's service on its subject
// ([WithSubject] overrides it, as on the server). The request is sent as JSON with the
// context's request id, trace context, remaining deadline and outgoing headers; a reply
// is decoded as JSON into Resp. A failed call returns an *svcerr.Error: the server's
// error with the same kind, message, fields and metadata, or one of the transport's (see
// the package documentation). Call panics if the name or subject is not valid.
func Call[Req, Resp any](c *Client, name string, opts ...MethodOption) endpoint.Endpoint[Req, Resp] {
	var cfg methodConfig
	for _, o := range opts {
		o(&cfg)
	}
	if err := checkName("method name", name); err != nil {
		panic("svckit/transport/natsrpc: " + err.Error())
	}
	subject := cfg.subject
	if subject == "" {
		subject = c.prefix + "." + c.service + "." + name
	}
	if err := checkSubject(subject); err != nil {
		panic("svckit/transport/natsrpc: " + err.Error())
	}
	info := endpoint.Info{Service: c.service, Method: name, Transport: "nats", Client: true, Idempotent: cfg.idempotent}
	full := c.service + "." + name
	e := func(ctx context.Context, req Req) (Resp, error) {
		var zero Resp
		body, err := json.Marshal(req)
		if err != nil {
			return zero, svcerr.Wrap(svcerr.InvalidArgument, "encoding the request failed", err)
		}
		limit := c.maxBody
		if mp := c.nc.MaxPayload(); mp > 0 && mp < limit {
			limit = mp
		}
		if int64(len(body)) > limit {
			return zero, svcerr.Wrap(svcerr.ResourceExhausted, fmt.Sprintf("request is larger than the limit of %d bytes", limit),
				fmt.Errorf("request to %s: %d bytes", full, len(body)))
		}
		if _, ok := ctx.Deadline(); !ok && c.timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, c.timeout)
			defer cancel()
		}
		msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
		// Outside any request there is no id to forward: the server assigns one.
		rid := meta.RequestID(ctx)
		if rid != "" {
			msg.Header[meta.RequestIDHeader] = []string{rid}
		}
		c.prop.Inject(ctx, carrier(msg.Header))
		meta.OutgoingHeaders(ctx, msg.Header.Set)
		reply, err := c.request(ctx, msg, cfg.idempotent)
		if err != nil {
			return zero, err
		}
		if err := errorFromReply(reply, rid); err != nil {
			return zero, err
		}
		if len(reply.Data) > c.maxReply {
			return zero, svcerr.Wrap(svcerr.ResourceExhausted, fmt.Sprintf("response is larger than %d bytes", c.maxReply),
				fmt.Errorf("response from %s: %d bytes", full, len(reply.Data)))
		}
		var out Resp
		if len(reply.Data) > 0 {
			if err := json.Unmarshal(reply.Data, &out); err != nil {
				return zero, svcerr.Wrap(svcerr.Internal, "decoding the response failed", fmt.Errorf("%s: %w", full, err))
			}
		}
		return out, nil
	}
	return endpoint.Wrap(info, e, c.mws...)
}

// request sends msg and waits for the reply. While NATS answers that no server listens
// on the subject, no server has the request, so it is sent again after a jittered backoff
// until one answers or ctx ends. An idempotent request is also sent again when it has no
// reply within the attempt timeout.
func (c *Client) request(ctx context.Context, msg *nats.Msg, idempotent bool) (*nats.Msg, error) {
	backoff := 10 * time.Millisecond
	for {
		if dl, ok := ctx.Deadline(); ok {
			left := time.Until(dl)
			if left <= 0 {
				return nil, contextError(ctx, nil)
			}
			msg.Header[TimeoutHeader] = []string{formatTimeout(left)}
		}
		reply, err := c.attemptOnce(ctx, msg, idempotent)
		if err == nil {
			return reply, nil
		}
		if errors.Is(err, errAttemptTimeout) {
			continue
		}
		if !errors.Is(err, nats.ErrNoResponders) {
			return nil, c.requestError(ctx, msg.Subject, err)
		}
		t := time.NewTimer(backoff/2 + rand.N(backoff))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, contextError(ctx, err)
		case <-t.C:
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

var errAttemptTimeout = errors.New("natsrpc: no reply within the attempt timeout")

// attemptOnce sends msg once and waits for its reply, within the attempt timeout for an
// idempotent request.
func (c *Client) attemptOnce(ctx context.Context, msg *nats.Msg, idempotent bool) (*nats.Msg, error) {
	if !idempotent || c.attempt <= 0 {
		return c.nc.RequestMsgWithContext(ctx, msg)
	}
	actx, cancel := context.WithTimeout(ctx, c.attempt)
	defer cancel()
	reply, err := c.nc.RequestMsgWithContext(actx, msg)
	if err != nil && actx.Err() != nil && ctx.Err() == nil {
		return nil, errAttemptTimeout
	}
	return reply, err
}

// requestError classifies a failed request.
func (c *Client) requestError(ctx context.Context, subject string, err error) error {
	switch {
	case errors.Is(err, nats.ErrMaxPayload):
		return svcerr.Wrap(svcerr.ResourceExhausted, "the request is larger than the NATS max payload", err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.Is(err, nats.ErrTimeout), ctx.Err() != nil:
		// A publish the NATS server refused is reported asynchronously, as the
		// connection's last error: the request then waits for a reply that cannot come.
		if le := c.nc.LastError(); le != nil && errors.Is(le, nats.ErrPermissionViolation) &&
			strings.Contains(le.Error(), `"`+subject+`"`) && strings.Contains(strings.ToLower(le.Error()), "publish") {
			return svcerr.Wrap(svcerr.PermissionDenied, "permission denied", fmt.Errorf("no permission to publish to %s: %w", subject, le))
		}
		return contextError(ctx, err)
	}
	return svcerr.Wrap(svcerr.Unavailable, "service unreachable", err)
}

// contextError returns the error of a call whose context ended: DeadlineExceeded or
// Canceled, with cause (if any) as the underlying error.
func contextError(ctx context.Context, cause error) error {
	ctxErr := ctx.Err()
	if ctxErr == nil {
		ctxErr = context.DeadlineExceeded
	}
	if cause == nil {
		cause = ctxErr
	}
	msg := ctxErr.Error()
	if errors.Is(cause, nats.ErrNoResponders) {
		msg += ": no server answered"
	}
	return svcerr.Wrap(svcerr.KindOf(ctxErr), msg, cause)
}
