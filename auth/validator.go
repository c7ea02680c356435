package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/svckit/svckit/svcerr"
)

// supportedAlgs are the signing algorithms a Validator accepts at all; "none" is not one.
var supportedAlgs = []string{
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512",
}

// key is a verification key pinned to one algorithm.
type key struct {
	kid string
	alg string
	pub any // *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey or []byte
}

// Validator validates JWTs. Make one with [NewValidator] and share it; it is safe for
// concurrent use.
type Validator struct {
	static   []key
	jwks     *jwksCache
	issuer   string
	audience []string
	leeway   time.Duration
	now      func() time.Time
	parser   *jwt.Parser
	cache    *tokenCache
	cacheN   int
	maxToken int

	// options collected before NewValidator builds the rest
	jwksURL         string
	jwksEvery       time.Duration
	jwksMinInterval time.Duration
	hc              *http.Client
	errs            []error
}

// Option configures a Validator.
type Option func(*Validator)

// WithKey adds a static verification key with key id kid ("" matches tokens with any or
// no "kid" header) for exactly one algorithm alg. key is an *rsa.PublicKey for RS256…RS512
// and PS256…PS512, an *ecdsa.PublicKey on the matching curve for ES256 (P-256), ES384
// and ES512 (P-521), an ed25519.PublicKey for EdDSA, or a []byte secret of at least 32
// bytes for HS256…HS512. A private key stands for its public key. A token is only ever
// checked with keys of its own algorithm, so an RSA public key can never serve as an HMAC
// secret.
func WithKey(kid, alg string, key any) Option {
	return func(v *Validator) {
		k, err := newKey(kid, alg, key)
		if err != nil {
			v.errs = append(v.errs, err)
			return
		}
		v.static = append(v.static, k)
	}
}

// WithJWKS fetches verification keys from the JSON Web Key Set at url, such as
// "https://issuer.example/.well-known/jwks.json". Keys are cached, refreshed every 15
// minutes (see [WithJWKSRefresh]) and at once when a token names a key id the cache lacks,
// at most once per minimum interval. Only asymmetric keys (RSA, EC, OKP/Ed25519) are
// taken from a JWKS, each pinned to its "alg" member or, without one, to the algorithms
// of its key type.
func WithJWKS(url string) Option { return func(v *Validator) { v.jwksURL = url } }

// WithJWKSRefresh sets how often the JWKS is fetched again (default 15m) and the least
// time between two fetches caused by unknown key ids (default 30s).
func WithJWKSRefresh(every, minInterval time.Duration) Option {
	return func(v *Validator) { v.jwksEvery, v.jwksMinInterval = every, minInterval }
}

// WithHTTPClient sets the client that fetches the JWKS (default: one with a 10s timeout).
func WithHTTPClient(hc *http.Client) Option { return func(v *Validator) { v.hc = hc } }

// WithCacheSize sets how many validated tokens are remembered (default 4096; 0 turns
// the cache off). A remembered token is only checked for expiry again, until the JWKS is
// fetched again; when the cache is full, a random entry makes room.
func WithCacheSize(n int) Option { return func(v *Validator) { v.cacheN = n } }

// WithIssuer requires the "iss" claim to be iss.
func WithIssuer(iss string) Option { return func(v *Validator) { v.issuer = iss } }

// WithAudience requires the "aud" claim to contain at least one of aud.
func WithAudience(aud ...string) Option {
	return func(v *Validator) { v.audience = append(v.audience, aud...) }
}

// DefaultMaxTokenBytes is the default size limit of a token: 8 KiB.
const DefaultMaxTokenBytes = 8 << 10

// WithMaxTokenBytes sets the size limit of a token (default [DefaultMaxTokenBytes]). A
// longer token is refused before it is decoded, so that a caller cannot make the service
// parse and hash megabytes per request. n must be positive.
func WithMaxTokenBytes(n int) Option {
	return func(v *Validator) {
		if n <= 0 {
			v.errs = append(v.errs, fmt.Errorf("WithMaxTokenBytes(%d): the limit must be positive", n))
			return
		}
		v.maxToken = n
	}
}

// WithLeeway sets the clock skew allowed when checking "exp", "nbf" and "iat" (default
// 30s).
func WithLeeway(d time.Duration) Option { return func(v *Validator) { v.leeway = d } }

// WithClock sets the clock tokens are checked against (default time.Now), for tests.
func WithClock(now func() time.Time) Option { return func(v *Validator) { v.now = now } }

// NewValidator returns a Validator with the given keys and checks. It needs at least one
// key source: [WithKey] or [WithJWKS]. The JWKS is not fetched until the first token
// needs it (or [Validator.Refresh] is called).
func NewValidator(opts ...Option) (*Validator, error) {
	v := &Validator{leeway: 30 * time.Second, now: time.Now, jwksEvery: 15 * time.Minute,
		jwksMinInterval: 30 * time.Second, cacheN: 4096, maxToken: DefaultMaxTokenBytes}
	for _, o := range opts {
		o(v)
	}
	if err := errors.Join(v.errs...); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if len(v.static) == 0 && v.jwksURL == "" {
		return nil, errors.New("auth: a validator needs keys: use WithKey or WithJWKS")
	}
	if v.jwksURL != "" {
		hc := v.hc
		if hc == nil {
			hc = &http.Client{Timeout: 10 * time.Second}
		}
		v.jwks = newJWKSCache(v.jwksURL, hc, v.jwksEvery, v.jwksMinInterval)
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(supportedAlgs),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),       // an "iat" in the future (beyond the leeway) is refused
		jwt.WithStrictDecoding(), // one token, one string: no second encoding of the same bytes
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(v.now),
	}
	if v.issuer != "" {
		popts = append(popts, jwt.WithIssuer(v.issuer))
	}
	if len(v.audience) > 0 {
		popts = append(popts, jwt.WithAudience(v.audience...))
	}
	v.parser = jwt.NewParser(popts...)
	if v.cacheN > 0 {
		v.cache = &tokenCache{max: v.cacheN, m: make(map[string]cacheEntry)}
	}
	return v, nil
}

// Refresh fetches the JWKS now. It returns nil for a validator without a JWKS.
func (v *Validator) Refresh(ctx context.Context) error {
	if v.jwks == nil {
		return nil
	}
	return v.jwks.fetch(ctx)
}

// Validate checks the compact JWT token and returns its claims. Every failure is an
// *svcerr.Error of kind Unauthenticated whose message says what is wrong (expired, wrong
// audience, …) without echoing the token.
//
// Decoding is strict: a token over the size limit ([WithMaxTokenBytes]) is refused
// unread; base64url with non-zero padding bits (a second spelling of the same bytes) is
// malformed; "exp", "nbf" and "iat" must be JSON numbers; an "iat" later than now plus
// the leeway is refused.
//
// Tokens that passed are remembered (see [WithCacheSize]): the same token again costs a map
// lookup and a check of its times instead of a signature check, until it expires or the
// JWKS is fetched again. The returned claims are the caller's own copy; their slices are
// shared and must not be changed.
func (v *Validator) Validate(ctx context.Context, token string) (*Claims, error) {
	if len(token) > v.maxToken {
		return nil, svcerr.New(svcerr.Unauthenticated, "invalid token: token larger than "+strconv.Itoa(v.maxToken)+" bytes")
	}
	var snap *jwksSnapshot
	if v.jwks != nil {
		v.jwks.current(ctx) // the first fetch, or a periodic refresh if one is due
		snap = v.jwks.keys.Load()
	}
	if v.cache != nil {
		if c, ok := v.cache.get(token, snap, v.now(), v.leeway); ok {
			cc := *c
			return &cc, nil
		}
	}
	c := new(Claims)
	_, err := v.parser.ParseWithClaims(token, c, func(t *jwt.Token) (any, error) { return v.keyFor(ctx, t) })
	if err != nil {
		return nil, svcerr.Wrap(svcerr.Unauthenticated, "invalid token: "+reason(err), err)
	}
	if v.cache != nil {
		if v.jwks != nil {
			snap = v.jwks.keys.Load() // the keys it was checked with, perhaps just fetched
		}
		v.cache.put(token, c, snap)
		cc := *c
		return &cc, nil
	}
	return c, nil
}

// keyFor returns the keys that may have signed t: those with its algorithm and key id.
func (v *Validator) keyFor(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	kid, _ := t.Header["kid"].(string)
	keys := v.find(ctx, kid, alg)
	if len(keys) == 0 && v.jwks != nil && kid != "" {
		if err := v.jwks.refreshUnknown(ctx); err == nil {
			keys = v.find(ctx, kid, alg)
		}
	}
	switch len(keys) {
	case 0:
		return nil, fmt.Errorf("no key with id %q for algorithm %s", kid, alg)
	case 1:
		return keys[0], nil
	}
	set := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, len(keys))}
	for i, k := range keys {
		set.Keys[i] = k
	}
	return set, nil
}

// find returns the public keys with the given algorithm and key id. A token without a key
// id matches every key of its algorithm, and a key without an id matches every token of
// its algorithm.
func (v *Validator) find(ctx context.Context, kid, alg string) []any {
	var out []any
	match := func(ks []key) {
		for _, k := range ks {
			if k.alg == alg && (kid == "" || k.kid == "" || k.kid == kid) {
				out = append(out, k.pub)
			}
		}
	}
	match(v.static)
	if v.jwks != nil {
		match(v.jwks.current(ctx))
	}
	return out
}

// reason returns a short, caller-safe description of a token error.
func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token not valid yet"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token issued in the future"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "required claim missing"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "unknown signing key"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "bad signature or algorithm"
	}
	return "invalid token"
}

// newKey checks that pub suits alg and returns the pinned key.
func newKey(kid, alg string, pub any) (key, error) {
	switch k := pub.(type) {
	case *rsa.PrivateKey:
		pub = &k.PublicKey
	case *ecdsa.PrivateKey:
		pub = &k.PublicKey
	case ed25519.PrivateKey:
		pub = k.Public()
	}
	bad := func(want string) (key, error) {
		return key{}, fmt.Errorf("key %q: algorithm %s needs %s, not %T", kid, alg, want, pub)
	}
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return bad("an *rsa.PublicKey")
		}
		if k.N.BitLen() < 2048 {
			return key{}, fmt.Errorf("key %q: RSA keys need at least 2048 bits, this has %d", kid, k.N.BitLen())
		}
	case "ES256", "ES384", "ES512":
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return bad("an *ecdsa.PublicKey")
		}
		want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		if k.Curve != want {
			return key{}, fmt.Errorf("key %q: algorithm %s needs curve %s, not %s", kid, alg, want.Params().Name, k.Curve.Params().Name)
		}
	case "EdDSA":
		if _, ok := pub.(ed25519.PublicKey); !ok {
			return bad("an ed25519.PublicKey")
		}
	case "HS256", "HS384", "HS512":
		b, ok := pub.([]byte)
		if !ok {
			return bad("a []byte secret")
		}
		if len(b) < 32 {
			return key{}, fmt.Errorf("key %q: HMAC secrets need at least 32 bytes, this has %d", kid, len(b))
		}
	default:
		return key{}, fmt.Errorf("key %q: unsupported algorithm %q", kid, alg)
	}
	return key{kid: kid, alg: alg, pub: pub}, nil
}

// tokenCache remembers validated tokens. Only the times of a remembered token need
// checking again: its signature, issuer and audience do not change. An entry is only good
// with the JWKS snapshot it was validated with, so that a key withdrawn from the JWKS stops
// working once the set is fetched again.
type tokenCache struct {
	mu  sync.RWMutex
	max int
	m   map[string]cacheEntry
}

type cacheEntry struct {
	claims *Claims
	snap   *jwksSnapshot
}

func (tc *tokenCache) get(token string, snap *jwksSnapshot, now time.Time, leeway time.Duration) (*Claims, bool) {
	tc.mu.RLock()
	e, ok := tc.m[token]
	tc.mu.RUnlock()
	if !ok || e.snap != snap {
		return nil, false
	}
	c := e.claims
	if c.ExpiresAt == nil || !now.Before(c.ExpiresAt.Add(leeway)) ||
		(c.NotBefore != nil && now.Before(c.NotBefore.Add(-leeway))) {
		tc.mu.Lock()
		delete(tc.m, token)
		tc.mu.Unlock()
		return nil, false
	}
	return c, true
}

func (tc *tokenCache) put(token string, c *Claims, snap *jwksSnapshot) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if len(tc.m) >= tc.max {
		for k := range tc.m { // map iteration starts at a random entry
			delete(tc.m, k)
			break
		}
	}
	tc.m[token] = cacheEntry{claims: c, snap: snap}
}
