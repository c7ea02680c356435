package idempotency

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
	"github.com/svckit/svckit/transport/meta"
)

// Header is the HTTP header, and in lower case the gRPC metadata key, that carries an
// idempotency key.
const Header = "Idempotency-Key"

// MaxKeyLen is the longest key the middleware accepts.
const MaxKeyLen = 255

type keyCtx struct{}

// WithKey returns a context that carries the idempotency key key, for callers that
// receive it other than in a header (a gateway, a message attribute). It takes
// precedence over the header.
func WithKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, keyCtx{}, key)
}

// KeyFrom returns the idempotency key of the call: the one set with WithKey, or else the
// Idempotency-Key header or idempotency-key gRPC metadata of the incoming request.
func KeyFrom(ctx context.Context) string {
	if k, ok := ctx.Value(keyCtx{}).(string); ok {
		return k
	}
	return meta.Header(ctx, "idempotency-key")
}

// Codec encodes responses for storage and decodes them for replay.
type Codec interface {
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into a new value of type t and returns it.
	Unmarshal(data []byte, t reflect.Type) (any, error)
}

// JSON is the default Codec: encoding/json.
type JSON struct{}

// Marshal implements Codec.
func (JSON) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal implements Codec.
func (JSON) Unmarshal(data []byte, t reflect.Type) (any, error) {
	p := reflect.New(t)
	if err := json.Unmarshal(data, p.Interface()); err != nil {
		return nil, err
	}
	return p.Elem().Interface(), nil
}

// Option configures Middleware.
type Option func(*options)

type options struct {
	ttl, lockTTL, wait time.Duration
	required           bool
	scope              func(ctx context.Context, info endpoint.Info) string
	codec              Codec
	types              map[string]reflect.Type
	respType           reflect.Type
	storeErr           func(err error) bool
}

// WithTTL sets how long a result is kept for replay; default 24h.
func WithTTL(d time.Duration) Option { return func(o *options) { o.ttl = d } }

// WithLockTTL sets how long a claim on a key lasts while its request runs; default 1
// minute. A request that runs longer may be run again by a repeat, whose claim and result
// then stand (the late request's own result is returned to its caller but not stored);
// one whose process crashed blocks repeats this long. A panic releases the key at once.
func WithLockTTL(d time.Duration) Option { return func(o *options) { o.lockTTL = d } }

// WithWait sets how long a repeat waits for the first request with its key to finish
// before it fails with Aborted; default 10s.
func WithWait(d time.Duration) Option { return func(o *options) { o.wait = d } }

// WithRequired makes calls without a key fail with InvalidArgument; by default they run
// without idempotency.
func WithRequired() Option { return func(o *options) { o.required = true } }

// WithScope sets the scope a key is unique in; default the endpoint's full name and, when
// the call is authenticated, the principal's subject, so that callers cannot replay each
// other's results.
func WithScope(fn func(ctx context.Context, info endpoint.Info) string) Option {
	return func(o *options) { o.scope = fn }
}

// WithCodec sets how responses are stored; default JSON.
func WithCodec(c Codec) Option { return func(o *options) { o.codec = c } }

// WithResponseType tells the middleware the response type of the endpoint named
// fullName ("Service.Method") by an example value, such as SumResponse{} or
// (*SumResponse)(nil). The middleware learns the type from the first response it sees;
// this option lets it replay results stored before a restart, before any new response.
func WithResponseType(fullName string, example any) Option {
	return func(o *options) {
		if o.types == nil {
			o.types = map[string]reflect.Type{}
		}
		o.types[fullName] = reflect.TypeOf(example)
	}
}

// WithStoredErrors sets which errors are stored and replayed like responses; others
// release the key so that a repeat runs again. By default errors of kinds that a retry
// cannot fix are stored (InvalidArgument, NotFound, AlreadyExists, FailedPrecondition,
// OutOfRange, PermissionDenied, Unimplemented), and others are not.
func WithStoredErrors(fn func(err error) bool) Option { return func(o *options) { o.storeErr = fn } }

func defaultStoreErr(err error) bool {
	switch svcerr.KindOf(err) {
	case svcerr.InvalidArgument, svcerr.NotFound, svcerr.AlreadyExists, svcerr.FailedPrecondition,
		svcerr.OutOfRange, svcerr.PermissionDenied, svcerr.Unimplemented:
		return true
	}
	return false
}

// Errors the middleware returns.
var (
	// ErrInProgress: a request with the same key runs and did not finish in time.
	ErrInProgress = svcerr.New(svcerr.Aborted, "a request with this idempotency key is in progress").WithMeta("retry_after", "1")
	// ErrMismatch: the key was used before with a different request.
	ErrMismatch = svcerr.New(svcerr.InvalidArgument, "idempotency key reused with a different request")
	// ErrMissingKey: WithRequired is set and the call has no key.
	ErrMissingKey = svcerr.Invalid(Header, "is required")
	// ErrKeyTooLong: the key is longer than MaxKeyLen.
	ErrKeyTooLong = svcerr.Invalid(Header, "is longer than 255 characters")
)

// Middleware returns endpoint middleware that makes calls with an idempotency key take
// effect once (see the package documentation). Outgoing client calls pass through.
func Middleware(s Store, opts ...Option) endpoint.Middleware {
	o := options{ttl: 24 * time.Hour, lockTTL: time.Minute, wait: 10 * time.Second, codec: JSON{}, storeErr: defaultStoreErr}
	for _, fn := range opts {
		fn(&o)
	}
	if o.scope == nil {
		o.scope = defaultScope
	}
	return func(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
		if info.Client || info.Streaming {
			return next
		}
		h := &handler{s: s, o: &o, info: info, next: next}
		if t := o.respType; t != nil {
			h.typ.Store(&t)
		} else if t, ok := o.types[info.FullName()]; ok {
			h.typ.Store(&t)
		}
		return h.serve
	}
}

// For is Middleware for endpoints whose response type is Resp, which it then knows
// without learning it.
func For[Resp any](s Store, opts ...Option) endpoint.Middleware {
	return Middleware(s, append(opts, func(o *options) { o.respType = reflect.TypeFor[Resp]() })...)
}

func defaultScope(ctx context.Context, info endpoint.Info) string {
	if sub := meta.Subject(ctx); sub != "" {
		return info.FullName() + "|" + sub
	}
	return info.FullName()
}

type handler struct {
	s    Store
	o    *options
	info endpoint.Info
	next endpoint.Handler
	typ  atomic.Pointer[reflect.Type]
}

func (h *handler) serve(ctx context.Context, req any) (any, error) {
	key := KeyFrom(ctx)
	if key == "" {
		if h.o.required {
			return nil, ErrMissingKey
		}
		return h.next(ctx, req)
	}
	if len(key) > MaxKeyLen {
		return nil, ErrKeyTooLong
	}
	scope := h.o.scope(ctx, h.info)
	fp := fingerprint(req)
	deadline := time.Now().Add(h.o.wait)
	pause := 5 * time.Millisecond
	var claimID string
	for claim := true; ; {
		var rec Record
		var ok bool
		var err error
		if claim {
			rec, ok, err = h.s.Begin(ctx, scope, key, fp, h.o.lockTTL)
			if err == nil && ok {
				claimID = rec.Claim
				break
			}
		} else {
			// Waiting: read until the record is completed, or gone and can be claimed.
			rec, ok, err = h.s.Get(ctx, scope, key)
			if err == nil && !ok {
				claim = true
				continue
			}
		}
		if err != nil {
			return nil, svcerr.Wrap(svcerr.Unavailable, "idempotency store unavailable", err)
		}
		claim = false
		if rec.Fingerprint != fp {
			return nil, ErrMismatch
		}
		if rec.State == Completed {
			return h.replay(rec)
		}
		if !time.Now().Before(deadline) {
			return nil, ErrInProgress
		}
		t := time.NewTimer(min(pause, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		pause = min(pause*2, 250*time.Millisecond)
	}
	bg := context.WithoutCancel(ctx)
	settled := false
	defer func() {
		if !settled { // the endpoint panicked: free the key now, not after the lock TTL
			_ = h.s.Release(bg, scope, key, claimID)
		}
	}()
	resp, err := h.next(ctx, req)
	settled = true
	// Complete and Release settle only this request's claim: if it expired and another
	// request took the key over, that request's claim and result stay (ErrClaimLost), and
	// this request still answers with its own result.
	switch {
	case err == nil:
		data, merr := h.o.codec.Marshal(resp)
		if merr != nil {
			_ = h.s.Release(bg, scope, key, claimID)
			return resp, nil
		}
		if resp != nil && h.typ.Load() == nil {
			t := reflect.TypeOf(resp)
			h.typ.Store(&t)
		}
		_ = h.s.Complete(bg, scope, key, claimID, KindResponse, data, h.o.ttl)
	case h.o.storeErr(err):
		data, _ := json.Marshal(toStored(svcerr.From(err)))
		_ = h.s.Complete(bg, scope, key, claimID, KindError, data, h.o.ttl)
	default:
		_ = h.s.Release(bg, scope, key, claimID)
	}
	return resp, err
}

func (h *handler) replay(rec Record) (any, error) {
	if rec.Kind == KindError {
		var se storedError
		if err := json.Unmarshal(rec.Response, &se); err != nil {
			return nil, svcerr.Wrap(svcerr.Internal, "idempotency: stored error does not decode", err)
		}
		return nil, se.err()
	}
	if string(rec.Response) == "null" {
		return nil, nil
	}
	tp := h.typ.Load()
	if tp == nil {
		return nil, svcerr.New(svcerr.Internal, fmt.Sprintf("idempotency: cannot replay the stored response of %s: its type is unknown (use WithResponseType or For)", h.info.FullName()))
	}
	v, err := h.o.codec.Unmarshal(rec.Response, *tp)
	if err != nil {
		return nil, svcerr.Wrap(svcerr.Internal, "idempotency: stored response does not decode", err)
	}
	return v, nil
}

// fingerprint returns a hash of the request's JSON form, or "" when it has none.
func fingerprint(req any) string {
	b, err := json.Marshal(req)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

type storedError struct {
	Kind    string                  `json:"kind"`
	Message string                  `json:"message"`
	Fields  []svcerr.FieldViolation `json:"fields,omitempty"`
	Meta    map[string]string       `json:"meta,omitempty"`
}

func toStored(e *svcerr.Error) storedError {
	return storedError{Kind: e.Kind.String(), Message: e.Message, Fields: e.Fields, Meta: e.Meta}
}

func (s storedError) err() *svcerr.Error {
	k, _ := svcerr.ParseKind(s.Kind)
	return &svcerr.Error{Kind: k, Message: s.Message, Fields: s.Fields, Meta: s.Meta}
}
