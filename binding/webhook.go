package binding

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/svckit/svckit/observe"
	"github.com/svckit/svckit/svcerr"
	shttp "github.com/svckit/svckit/transport/http"
)

// Webhook is the webhook input: an http.Handler that verifies the signature of each
// request and hands its body to the handler of Run as an Event.
//
// Answers: 204 when the handler succeeded; 401 for a missing, malformed or wrong
// signature or a timestamp outside the tolerance; 413 for a body over the limit; 503
// while Run is not running; for a handler error, the 4xx status of its svcerr kind when
// a retry cannot fix it (see [Retryable]) and a 5xx status otherwise, so that the sender
// retries. Error bodies are application/problem+json and never contain the secret or
// the expected signature.
type Webhook struct {
	name     string
	method   string
	path     string
	sig      Signature
	secret   secretSource // nil: unsigned
	idHeader string
	headers  []string
	maxBody  int64
	obs      *observer
	now      func() time.Time
	prop     propagation.TextMapPropagator

	mu      sync.Mutex
	handler Handler
}

var (
	_ Input        = (*Webhook)(nil)
	_ http.Handler = (*Webhook)(nil)
)

func newWebhook(ctx context.Context, name string, c *WebhookConfig, d *Deps, obs *observer) (*Webhook, error) {
	w := &Webhook{name: name, method: c.Method, path: c.Path, sig: c.Signature, idHeader: c.IDHeader,
		maxBody: c.MaxBody, obs: obs, now: d.now, prop: observe.Propagator()}
	if w.method == "" {
		w.method = http.MethodPost
	}
	if strings.ContainsAny(w.method, " \t/{}") || strings.ToUpper(w.method) != w.method {
		return nil, invalid("method", "%q is not an HTTP method", c.Method)
	}
	if !strings.HasPrefix(c.Path, "/") || strings.ContainsAny(c.Path, " \t{}") {
		if c.Path == "" {
			return nil, required("path")
		}
		return nil, invalid("path", "%q: want an absolute path without wildcards", c.Path)
	}
	if w.maxBody == 0 {
		w.maxBody = shttp.DefaultMaxBodyBytes
	}
	if w.maxBody < 0 {
		return nil, invalid("max_body", "must be positive")
	}
	if err := c.Signature.validate(); err != nil {
		return nil, nested("signature", err)
	}
	for _, h := range c.Headers {
		w.headers = append(w.headers, http.CanonicalHeaderKey(h))
	}
	switch {
	case c.Unsigned && c.Secret != "":
		return nil, invalid("unsigned", "set together with secret; choose one")
	case c.Unsigned:
	case c.Secret == "":
		return nil, fieldErr("secret", errors.New("required (a reference such as env:WEBHOOK_SECRET); set unsigned: true to accept unsigned requests"))
	default:
		src, err := resolveSecret(ctx, c.Secret, d)
		if err != nil {
			return nil, fieldErr("secret", err)
		}
		w.secret = src
	}
	return w, nil
}

// Name implements Input.
func (w *Webhook) Name() string { return w.name }

// Pattern returns the ServeMux pattern the webhook is mounted with, such as
// "POST /hooks/github".
func (w *Webhook) Pattern() string { return w.method + " " + w.path }

// Run hands requests to h until ctx ends; before and after, requests get 503.
func (w *Webhook) Run(ctx context.Context, h Handler) error {
	w.mu.Lock()
	if w.handler != nil {
		w.mu.Unlock()
		return fmt.Errorf("binding %s: Run called twice", w.name)
	}
	w.handler = h
	w.mu.Unlock()
	<-ctx.Done()
	w.mu.Lock()
	w.handler = nil
	w.mu.Unlock()
	return nil
}

// ServeHTTP verifies the request and hands it to the handler.
func (w *Webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	w.mu.Lock()
	h := w.handler
	w.mu.Unlock()
	if h == nil {
		rw.Header().Set("Retry-After", "1")
		shttp.WriteProblem(rw, r, svcerr.New(svcerr.Unavailable, "not accepting events now"))
		return
	}
	if w.secret != nil {
		if _, err := w.sig.present(r.Header); err != nil {
			w.reject(rw, r, "signature", err)
			return
		}
	}
	if r.ContentLength > w.maxBody {
		w.reject(rw, r, "body too large", tooLarge(w.maxBody))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, w.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			w.reject(rw, r, "body too large", tooLarge(w.maxBody))
			return
		}
		w.reject(rw, r, "body", svcerr.Wrap(svcerr.InvalidArgument, "cannot read the request body", err))
		return
	}
	at := w.now()
	if w.secret != nil {
		secret, err := w.secret(ctx)
		if err != nil {
			w.obs.log.ErrorContext(ctx, "binding: cannot read the webhook secret", "binding", w.name, "err", err)
			shttp.WriteProblem(rw, r, svcerr.New(svcerr.Unavailable, "cannot verify signatures now"))
			return
		}
		if err := w.sig.Verify(secret, r.Header, body, at); err != nil {
			w.reject(rw, r, "signature", err)
			return
		}
		if w.sig.TimestampHeader != "" {
			sec, _ := strconv.ParseInt(r.Header.Get(w.sig.TimestampHeader), 10, 64)
			at = time.Unix(sec, 0)
		}
	}
	e := Event{Binding: w.name, ID: r.Header.Get(w.idHeader), Time: at, Subject: r.URL.Path, Attempt: 1,
		Metadata: w.metadata(r), Data: body}
	if w.idHeader == "" || e.ID == "" {
		e.ID = randomID()
	}
	ctx = w.prop.Extract(ctx, propagation.HeaderCarrier(r.Header)) // the sender's trace, if any
	if err := w.obs.handle(ctx, h, e); err != nil {
		shttp.WriteProblem(rw, r, webhookError(err))
		return
	}
	rw.WriteHeader(http.StatusNoContent)
}

func (w *Webhook) metadata(r *http.Request) map[string]string {
	md := make(map[string]string, len(w.headers)+1)
	if ct := r.Header.Get("Content-Type"); ct != "" {
		md["content-type"] = ct
	}
	for _, k := range w.headers {
		if v := r.Header.Get(k); v != "" {
			md[strings.ToLower(k)] = v
		}
	}
	return md
}

func (w *Webhook) reject(rw http.ResponseWriter, r *http.Request, why string, err error) {
	w.obs.rejected(r.Context(), w.name, why, err, "remote", r.RemoteAddr, "path", r.URL.Path)
	shttp.WriteProblem(rw, r, err)
}

// webhookError returns the error to answer a failed handler with: its own when a retry
// cannot fix it, else one with a 5xx status so the sender retries.
func webhookError(err error) error {
	if !Retryable(err) {
		return err
	}
	e := svcerr.From(err)
	if e.Kind.HTTPStatus() >= 500 {
		return err
	}
	return shttp.WithStatus(http.StatusServiceUnavailable, &svcerr.Error{Kind: e.Kind, Message: e.Message, Meta: e.Meta})
}

func tooLarge(limit int64) error {
	return shttp.WithStatus(http.StatusRequestEntityTooLarge,
		svcerr.Errorf(svcerr.ResourceExhausted, "request body is larger than the limit of %d bytes", limit))
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
