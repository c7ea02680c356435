package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/svckit/svckit/auth"
	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/resilience"
	"github.com/svckit/svckit/svcerr"
	sgrpc "github.com/svckit/svckit/transport/grpc"
	shttp "github.com/svckit/svckit/transport/http"
	"github.com/svckit/svckit/transport/meta"
)

// req and resp are the request and response of the test endpoints.
type req struct {
	A int64 `json:"a"`
	B int64 `json:"b"`
}

type resp struct {
	V int64 `json:"v"`
}

// grpcService is the test service; it is not in the protobuf registry, so its methods are
// not checked against a descriptor. On the wire a request is the sum A+B.
const grpcService = "svckit.test.Adder"

func decReq(m *wrapperspb.Int64Value) (req, error)   { return req{A: m.GetValue()}, nil }
func encResp(r resp) (*wrapperspb.Int64Value, error) { return wrapperspb.Int64(r.V), nil }
func encReq(r req) (*wrapperspb.Int64Value, error)   { return wrapperspb.Int64(r.A + r.B), nil }
func decResp(m *wrapperspb.Int64Value) (resp, error) { return resp{V: m.GetValue()}, nil }

const (
	issuer   = "https://issuer.test"
	audience = "shop"
)

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

// testRSAKey returns an RSA key made once for all tests.
func testRSAKey(t testing.TB) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
	})
	return rsaKey
}

// claims returns valid claims for alice with the given roles; change them per case.
func claims(roles ...string) *auth.Claims {
	now := time.Now()
	return &auth.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: issuer, Subject: "alice", Audience: jwt.ClaimStrings{audience},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		},
		Roles: roles,
	}
}

func sign(t testing.TB, m jwt.SigningMethod, key any, kid string, c *auth.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// badTokens is the table of tokens that must be refused with 401 / UNAUTHENTICATED.
func badTokens(t testing.TB) map[string]string {
	k := testRSAKey(t)
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	with := func(f func(c *auth.Claims)) *auth.Claims { c := claims("adder"); f(c); return c }
	hour := time.Hour
	return map[string]string{
		"missing":                             "",
		"garbage":                             "not-a-jwt",
		"three garbage parts":                 "a.b.c",
		"alg none":                            sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa1", claims("adder")),
		"alg none, no kid":                    sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims("adder")),
		"HS256 with the RSA public key (PEM)": sign(t, jwt.SigningMethodHS256, pemBytes, "rsa1", claims("adder")),
		"HS256 with the RSA public key (DER)": sign(t, jwt.SigningMethodHS256, der, "rsa1", claims("adder")),
		"expired": sign(t, jwt.SigningMethodRS256, k, "rsa1", with(func(c *auth.Claims) {
			c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-hour))
		})),
		"not yet valid": sign(t, jwt.SigningMethodRS256, k, "rsa1", with(func(c *auth.Claims) {
			c.NotBefore = jwt.NewNumericDate(time.Now().Add(hour))
		})),
		"no expiry": sign(t, jwt.SigningMethodRS256, k, "rsa1", with(func(c *auth.Claims) { c.ExpiresAt = nil })),
		"wrong audience": sign(t, jwt.SigningMethodRS256, k, "rsa1", with(func(c *auth.Claims) {
			c.Audience = jwt.ClaimStrings{"billing"}
		})),
		"wrong issuer":                 sign(t, jwt.SigningMethodRS256, k, "rsa1", with(func(c *auth.Claims) { c.Issuer = "https://evil.test" })),
		"other key":                    sign(t, jwt.SigningMethodRS256, other, "rsa1", claims("adder")),
		"unknown kid":                  sign(t, jwt.SigningMethodRS256, k, "rsa9", claims("adder")),
		"PS256 token for an RS256 key": sign(t, jwt.SigningMethodPS256, k, "rsa1", claims("adder")),
		"tampered payload": func() string {
			s := sign(t, jwt.SigningMethodRS256, k, "rsa1", claims("reader"))
			parts := strings.Split(s, ".")
			parts[1] = base64.RawURLEncoding.EncodeToString(mustJSON(t, claims("adder")))
			return strings.Join(parts, ".")
		}(),
	}
}

func mustJSON(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newValidator(t testing.TB, opts ...auth.Option) *auth.Validator {
	t.Helper()
	v, err := auth.NewValidator(append([]auth.Option{
		auth.WithKey("rsa1", "RS256", &testRSAKey(t).PublicKey),
		auth.WithIssuer(issuer), auth.WithAudience(audience),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// policies: Sum needs the role "adder"; Other has no policy and is denied by default.
var policies = auth.Policies{"Sum": auth.Require("adder")}

// subjects records the subject each served call saw in its claims.
type subjects struct{ last atomic.Value }

func (s *subjects) sum(ctx context.Context, r req) (resp, error) {
	c := auth.ClaimsFrom(ctx)
	if c == nil || meta.Subject(ctx) != c.Subject {
		return resp{}, svcerr.New(svcerr.Internal, "no claims")
	}
	s.last.Store(c.Subject)
	return resp{V: r.A + r.B}, nil
}

func other(_ context.Context, r req) (resp, error) { return resp{V: r.A + r.B}, nil }

func serveHTTP(t *testing.T, mw endpoint.Middleware, s *subjects) string {
	srv := shttp.NewServer("addsvc", shttp.WithMiddleware(mw))
	shttp.Handle(srv, "POST /sum", "Sum", s.sum)
	shttp.Handle(srv, "POST /other", "Other", other)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return hs.URL
}

func serveGRPC(t *testing.T, mw endpoint.Middleware, s *subjects) *grpcgo.ClientConn {
	srv := sgrpc.NewServer(grpcService, sgrpc.WithMiddleware(mw), sgrpc.WithServiceLabel("addsvc"))
	sgrpc.Unary(srv, "Sum", s.sum, decReq, encResp)
	sgrpc.Unary(srv, "Other", other, decReq, encResp)
	g := sgrpc.NewGRPCServer(nil)
	srv.Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	cc, err := grpcgo.NewClient(lis.Addr().String(), grpcgo.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// httpCall posts body to url with the token and returns the status, WWW-Authenticate and
// the problem's kind.
func httpCall(t *testing.T, url, token, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var p struct {
		Kind string `json:"kind"`
	}
	_ = json.Unmarshal(data, &p)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), p.Kind
}

// grpcCall calls method on the raw connection with the token and returns the status code.
func grpcCall(t *testing.T, cc *grpcgo.ClientConn, method, token string) codes.Code {
	t.Helper()
	ctx := context.Background()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	err := cc.Invoke(ctx, "/"+grpcService+"/"+method, wrapperspb.Int64(3), &wrapperspb.Int64Value{})
	return status.Code(err)
}

func TestBadTokensHTTP(t *testing.T) {
	var s subjects
	url := serveHTTP(t, auth.Middleware(newValidator(t), policies), &s)
	for name, tok := range badTokens(t) {
		t.Run(name, func(t *testing.T) {
			code, challenge, kind := httpCall(t, url+"/sum", tok, `{"a":1,"b":2}`)
			if code != http.StatusUnauthorized || kind != "unauthenticated" || !strings.HasPrefix(challenge, "Bearer") {
				t.Errorf("status %d, kind %q, WWW-Authenticate %q; want 401 unauthenticated with a Bearer challenge",
					code, kind, challenge)
			}
		})
	}
	k := testRSAKey(t)
	for _, tc := range []struct {
		name, path, token string
		want              int
	}{
		{"valid token with the role", "/sum", sign(t, jwt.SigningMethodRS256, k, "rsa1", claims("adder")), 200},
		{"valid token without a kid", "/sum", sign(t, jwt.SigningMethodRS256, k, "", claims("reader", "adder")), 200},
		{"wrong role", "/sum", sign(t, jwt.SigningMethodRS256, k, "rsa1", claims("reader")), 403},
		{"no roles", "/sum", sign(t, jwt.SigningMethodRS256, k, "rsa1", claims()), 403},
		{"endpoint without a policy", "/other", sign(t, jwt.SigningMethodRS256, k, "rsa1", claims("adder")), 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, kind := httpCall(t, url+tc.path, tc.token, `{"a":1,"b":2}`)
			if code != tc.want {
				t.Errorf("status %d (%s), want %d", code, kind, tc.want)
			}
			if tc.want == 403 && kind != "permission_denied" {
				t.Errorf("kind %q, want permission_denied", kind)
			}
		})
	}
	if got := s.last.Load(); got != "alice" {
		t.Errorf("the endpoint saw subject %v, want alice", got)
	}
}

func TestBadTokensGRPC(t *testing.T) {
	var s subjects
	cc := serveGRPC(t, auth.Middleware(newValidator(t), policies), &s)
	for name, tok := range badTokens(t) {
		t.Run(name, func(t *testing.T) {
			if c := grpcCall(t, cc, "Sum", tok); c != codes.Unauthenticated {
				t.Errorf("code %v, want Unauthenticated", c)
			}
		})
	}
	k := testRSAKey(t)
	for _, tc := range []struct {
		name, method, token string
		want                codes.Code
	}{
		{"valid token with the role", "Sum", sign(t, jwt.SigningMethodRS256, k, "rsa1", claims("adder")), codes.OK},
		{"wrong role", "Sum", sign(t, jwt.SigningMethodRS256, k, "rsa1", claims("reader")), codes.PermissionDenied},
		{"endpoint without a policy", "Other", sign(t, jwt.SigningMethodRS256, k, "rsa1", claims("adder")), codes.PermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c := grpcCall(t, cc, tc.method, tc.token); c != tc.want {
				t.Errorf("code %v, want %v", c, tc.want)
			}
		})
	}
	if got := s.last.Load(); got != "alice" {
		t.Errorf("the endpoint saw subject %v, want alice", got)
	}

	// The svckit client gets the kinds back.
	client := sgrpc.NewClient(cc, grpcService)
	sum := sgrpc.UnaryCall(client, "Sum",
		encReq,
		decResp)
	_, err := sum(context.Background(), req{})
	if svcerr.KindOf(err) != svcerr.Unauthenticated {
		t.Errorf("svckit client without a token: %v", err)
	}
}

func TestPolicies(t *testing.T) {
	v := newValidator(t)
	k := testRSAKey(t)
	scoped := claims("adder")
	scoped.Scope = "sum:read sum:write"
	tokScoped := sign(t, jwt.SigningMethodRS256, k, "rsa1", scoped)
	tokPlain := sign(t, jwt.SigningMethodRS256, k, "rsa1", claims())
	for _, tc := range []struct {
		name     string
		policies auth.Policies
		token    string
		want     svcerr.Kind
	}{
		{"no policies: any valid token", nil, tokPlain, svcerr.Unknown},
		{"no policies: no token", nil, "", svcerr.Unauthenticated},
		{"public without a token", auth.Policies{"Sum": auth.Public()}, "", svcerr.Unknown},
		{"public with a bad token", auth.Policies{"Sum": auth.Public()}, "garbage", svcerr.Unknown},
		{"authenticated", auth.Policies{"Sum": auth.Authenticated()}, tokPlain, svcerr.Unknown},
		{"scopes present", auth.Policies{"Sum": auth.RequireScopes("sum:read", "sum:write")}, tokScoped, svcerr.Unknown},
		{"a scope missing", auth.Policies{"Sum": auth.RequireScopes("sum:read", "sum:admin")}, tokScoped, svcerr.PermissionDenied},
		{"role and scope", auth.Policies{"Sum": auth.Require("adder").AndScopes("sum:read")}, tokScoped, svcerr.Unknown},
		{"full name wins", auth.Policies{"Sum": auth.Public(), "addsvc.Sum": auth.Require("root")}, tokScoped, svcerr.PermissionDenied},
		{"deny by default", auth.Policies{"Other": auth.Public()}, tokScoped, svcerr.PermissionDenied},
		{"deny", auth.Policies{"Sum": auth.Deny()}, tokScoped, svcerr.PermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info := endpoint.Info{Service: "addsvc", Method: "Sum", Transport: "grpc"}
			e := endpoint.Wrap(info, func(context.Context, int) (int, error) { return 1, nil }, auth.Middleware(v, tc.policies))
			ctx := context.Background()
			if tc.token != "" {
				ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "+tc.token))
			}
			_, err := e(ctx, 0)
			if got := svcerr.KindOf(err); got != tc.want {
				t.Errorf("kind %v (%v), want %v", got, err, tc.want)
			}
		})
	}
}

func TestValidatorErrors(t *testing.T) {
	k := testRSAKey(t)
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	for name, opt := range map[string]auth.Option{
		"HMAC alg with an RSA key": auth.WithKey("k", "HS256", &k.PublicKey),
		"RSA alg with a secret":    auth.WithKey("k", "RS256", []byte(strings.Repeat("s", 32))),
		"alg none":                 auth.WithKey("k", "none", []byte(strings.Repeat("s", 32))),
		"short HMAC secret":        auth.WithKey("k", "HS256", []byte("short")),
		"ES256 with a P-384 key":   auth.WithKey("k", "ES256", &ec.PublicKey),
		"1024-bit RSA":             auth.WithKey("k", "RS256", &small.PublicKey),
		"EdDSA with an RSA key":    auth.WithKey("k", "EdDSA", &k.PublicKey),
		"no keys":                  auth.WithIssuer("x"),
	} {
		if _, err := auth.NewValidator(opt); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// Private keys stand for their public keys.
	for _, opt := range []auth.Option{auth.WithKey("a", "RS256", k), auth.WithKey("b", "ES384", ec), auth.WithKey("c", "EdDSA", ed)} {
		if _, err := auth.NewValidator(opt); err != nil {
			t.Error(err)
		}
	}
}

func TestHMACKeyIsPinned(t *testing.T) {
	secret := []byte(strings.Repeat("k", 32))
	v, err := auth.NewValidator(auth.WithKey("h", "HS256", secret), auth.WithKey("r", "RS256", &testRSAKey(t).PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := v.Validate(ctx, sign(t, jwt.SigningMethodHS256, secret, "h", claims())); err != nil {
		t.Errorf("HS256 token: %v", err)
	}
	// HS512 with the same secret: the key is pinned to HS256.
	if _, err := v.Validate(ctx, sign(t, jwt.SigningMethodHS512, secret, "h", claims())); err == nil {
		t.Error("HS512 token accepted by an HS256 key")
	}
	// An RS256 token naming the HMAC key's id.
	if _, err := v.Validate(ctx, sign(t, jwt.SigningMethodRS256, testRSAKey(t), "h", claims())); err == nil {
		t.Error("RS256 token accepted with the id of an HMAC key")
	}
}

// jwksServer serves a JSON Web Key Set that a test can replace, and counts fetches.
type jwksServer struct {
	body    atomic.Value // []byte
	fail    atomic.Bool  // answer 503
	fetches atomic.Int64
	url     string
}

func newJWKSServer(t *testing.T) *jwksServer {
	s := &jwksServer{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		if s.fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.body.Load().([]byte))
	}))
	t.Cleanup(hs.Close)
	s.url = hs.URL
	return s
}

func (s *jwksServer) set(t *testing.T, keys ...map[string]string) {
	s.body.Store(mustJSON(t, map[string]any{"keys": keys}))
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, k *rsa.PublicKey) map[string]string {
	return map[string]string{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
		"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(kid string, k *ecdsa.PublicKey) map[string]string {
	raw, _ := k.Bytes() // 0x04 || X || Y
	size := (len(raw) - 1) / 2
	return map[string]string{"kty": "EC", "kid": kid, "crv": "P-256", "x": b64(raw[1 : 1+size]), "y": b64(raw[1+size:])}
}

func edJWK(kid string, k ed25519.PublicKey) map[string]string {
	return map[string]string{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(k)}
}

func TestJWKSRotation(t *testing.T) {
	rk := testRSAKey(t)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	js := newJWKSServer(t)
	js.set(t, rsaJWK("r1", &rk.PublicKey), ecJWK("e1", &ec.PublicKey),
		map[string]string{"kty": "oct", "kid": "o1", "k": b64([]byte(strings.Repeat("s", 32)))},
		map[string]string{"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
		rsaJWK("weak", &weak.PublicKey), // too small: skipped
		map[string]string{"kty": "EC", "kid": "bad", "crv": "P-256", "x": "AA", "y": "AA"}) // not on the curve: skipped
	v, err := auth.NewValidator(auth.WithJWKS(js.url), auth.WithJWKSRefresh(time.Hour, 0),
		auth.WithIssuer(issuer), auth.WithAudience(audience))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	valid := func(tok string) error { _, err := v.Validate(ctx, tok); return err }

	if err := valid(sign(t, jwt.SigningMethodRS256, rk, "r1", claims())); err != nil {
		t.Fatalf("RS256 from the JWKS: %v", err)
	}
	if err := valid(sign(t, jwt.SigningMethodES256, ec, "e1", claims())); err != nil {
		t.Fatalf("ES256 from the JWKS: %v", err)
	}
	if err := valid(sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("s", 32)), "o1", claims())); err == nil {
		t.Fatal("a symmetric key from the JWKS was used")
	}
	if err := valid(sign(t, jwt.SigningMethodRS256, weak, "weak", claims())); err == nil {
		t.Fatal("a 1024-bit key from the JWKS was used")
	}
	if err := valid(sign(t, jwt.SigningMethodRS256, rk, "r1", claims())); err != nil || js.fetches.Load() > 3 {
		t.Fatalf("cached key: err %v after %d fetches", err, js.fetches.Load())
	}

	// Rotation: the issuer now signs with a new Ed25519 key and has dropped the old ones.
	js.set(t, edJWK("d2", edPub))
	before := js.fetches.Load()
	if err := valid(sign(t, jwt.SigningMethodEdDSA, edPriv, "d2", claims())); err != nil {
		t.Fatalf("token with the new key: %v", err)
	}
	if js.fetches.Load() != before+1 {
		t.Errorf("the unknown key id caused %d fetches, want 1", js.fetches.Load()-before)
	}
	if err := valid(sign(t, jwt.SigningMethodRS256, rk, "r1", claims())); err == nil {
		t.Error("a token signed with a retired key is still valid")
	}
}

func TestJWKSRateLimitsUnknownKids(t *testing.T) {
	rk := testRSAKey(t)
	js := newJWKSServer(t)
	js.set(t, rsaJWK("r1", &rk.PublicKey))
	v, err := auth.NewValidator(auth.WithJWKS(js.url), auth.WithJWKSRefresh(time.Hour, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if _, err := v.Validate(context.Background(), sign(t, jwt.SigningMethodRS256, rk, "nope", claims())); err == nil {
			t.Fatal("unknown kid accepted")
		}
	}
	if n := js.fetches.Load(); n != 1 {
		t.Errorf("%d fetches for 20 tokens with an unknown kid within the minimum interval, want 1", n)
	}

	// With a refresh period that has always passed, every use refreshes.
	v2, _ := auth.NewValidator(auth.WithJWKS(js.url), auth.WithJWKSRefresh(time.Nanosecond, time.Hour))
	for i := 0; i < 3; i++ {
		if _, err := v2.Validate(context.Background(), sign(t, jwt.SigningMethodRS256, rk, "r1", claims())); err != nil {
			t.Fatal(err)
		}
	}
	if n := js.fetches.Load(); n < 4 {
		t.Errorf("periodic refresh: %d fetches in all, want at least 4", n)
	}
}

func TestDevIssuer(t *testing.T) {
	d, err := auth.NewDevIssuer("svckit-dev", "svckit")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := d.Token("bob", time.Minute, "admin")
	if err != nil {
		t.Fatal(err)
	}
	// A static key …
	v, err := auth.NewValidator(d.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Validate(context.Background(), tok)
	if err != nil || c.Subject != "bob" || !c.HasRole("admin") {
		t.Fatalf("claims %+v, err %v", c, err)
	}
	// … or its JWKS.
	hs := httptest.NewServer(d)
	defer hs.Close()
	v2, err := auth.NewValidator(auth.WithJWKS(hs.URL), auth.WithIssuer("svckit-dev"), auth.WithAudience("svckit"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v2.Validate(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	other, _ := auth.NewDevIssuer("svckit-dev", "svckit")
	tok2, _ := other.Token("eve", time.Minute, "admin")
	if _, err := v2.Validate(context.Background(), tok2); err == nil {
		t.Error("a token of another dev issuer was accepted")
	}
}

// TestBadTokenReasons checks that each bad token fails for its own reason, not by
// accident.
func TestBadTokenReasons(t *testing.T) {
	v := newValidator(t)
	want := map[string]string{
		"missing":                             "malformed token",
		"garbage":                             "malformed token",
		"three garbage parts":                 "malformed token",
		"alg none":                            "bad signature or algorithm",
		"alg none, no kid":                    "bad signature or algorithm",
		"HS256 with the RSA public key (PEM)": "unknown signing key",
		"HS256 with the RSA public key (DER)": "unknown signing key",
		"expired":                             "token expired",
		"not yet valid":                       "token not valid yet",
		"no expiry":                           "required claim missing",
		"wrong audience":                      "wrong audience",
		"wrong issuer":                        "wrong issuer",
		"other key":                           "bad signature or algorithm",
		"unknown kid":                         "unknown signing key",
		"PS256 token for an RS256 key":        "unknown signing key",
		"tampered payload":                    "bad signature or algorithm",
	}
	for name, tok := range badTokens(t) {
		_, err := v.Validate(context.Background(), tok)
		e := svcerr.From(err)
		if e.Kind != svcerr.Unauthenticated || e.Message != "invalid token: "+want[name] {
			t.Errorf("%s: %v, want unauthenticated: invalid token: %s", name, err, want[name])
		}
	}
}

// TestCacheHonoursExpiry checks that a remembered token still expires.
func TestCacheHonoursExpiry(t *testing.T) {
	now := time.Now()
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	for _, size := range []int{4096, 0} {
		v := newValidator(t, auth.WithLeeway(0), auth.WithCacheSize(size),
			auth.WithClock(func() time.Time { return time.Unix(0, clock.Load()) }))
		c := claims("adder")
		// Issued at the test clock's now: claims() reads the wall clock a moment later,
		// which can fall in the next second, and an iat after the clock is refused.
		c.IssuedAt = jwt.NewNumericDate(now)
		c.ExpiresAt = jwt.NewNumericDate(now.Add(time.Minute))
		tok := sign(t, jwt.SigningMethodRS256, testRSAKey(t), "rsa1", c)
		clock.Store(now.UnixNano())
		for range 2 {
			got, err := v.Validate(context.Background(), tok)
			if err != nil || got.Subject != "alice" {
				t.Fatalf("cache %d: %+v, %v", size, got, err)
			}
			got.Subject = "changed" // the caller's own copy
		}
		clock.Store(now.Add(2 * time.Minute).UnixNano())
		if _, err := v.Validate(context.Background(), tok); svcerr.From(err).Message != "invalid token: token expired" {
			t.Errorf("cache %d: expired token: %v", size, err)
		}
	}
}

// TestForwardAndBearer runs a gateway (HTTP, auth) that calls a backend (gRPC, auth)
// through a svckit client: with Forward the backend sees the original caller; with Bearer
// it sees the service's own identity.
func TestForwardAndBearer(t *testing.T) {
	dev, err := auth.NewDevIssuer(issuer, audience)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := auth.NewValidator(dev.Options()...)
	var backendSaw subjects
	cc := serveGRPC(t, auth.Middleware(v, auth.Policies{"Sum": auth.Require("adder")}), &backendSaw)
	service, _ := dev.Token("gateway-svc", time.Hour, "adder")

	for _, tc := range []struct {
		name   string
		client endpoint.Middleware
		want   string
	}{
		{"forward", auth.Forward(), "alice"},
		{"bearer", auth.Bearer(func(context.Context) (string, error) { return service, nil }), "gateway-svc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			backend := sgrpc.UnaryCall(sgrpc.NewClient(cc, grpcService, sgrpc.WithClientMiddleware(tc.client)),
				"Sum", encReq, decResp)
			gw := shttp.NewServer("gateway", shttp.WithMiddleware(auth.Middleware(v, nil)))
			shttp.Handle(gw, "POST /sum", "Sum", backend)
			hs := httptest.NewServer(gw)
			defer hs.Close()
			alice, _ := dev.Token("alice", time.Hour, "adder")
			if code, _, kind := httpCall(t, hs.URL+"/sum", alice, `{"a":1,"b":2}`); code != 200 {
				t.Fatalf("status %d (%s)", code, kind)
			}
			if got := backendSaw.last.Load(); got != tc.want {
				t.Errorf("the backend saw %v, want %s", got, tc.want)
			}
		})
	}
}

// TestJWKSUnavailable checks that an unreachable JWKS fails tokens (not the process), that
// the keys arrive once it is back, and that a failed refresh keeps the keys it had.
func TestJWKSUnavailable(t *testing.T) {
	rk := testRSAKey(t)
	js := newJWKSServer(t)
	js.set(t, rsaJWK("r1", &rk.PublicKey))
	js.fail.Store(true)
	v, err := auth.NewValidator(auth.WithJWKS(js.url), auth.WithJWKSRefresh(time.Hour, 0), auth.WithCacheSize(0))
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jwt.SigningMethodRS256, rk, "r1", claims())
	if _, err := v.Validate(context.Background(), tok); svcerr.KindOf(err) != svcerr.Unauthenticated {
		t.Fatalf("JWKS down: %v", err)
	}
	js.fail.Store(false)
	if _, err := v.Validate(context.Background(), tok); err != nil {
		t.Fatalf("JWKS back: %v", err)
	}
	js.fail.Store(true)
	if err := v.Refresh(context.Background()); err == nil {
		t.Error("Refresh with the JWKS down: no error")
	}
	js.fail.Store(false)
	js.body.Store([]byte(`{"error":"not a key set"}`))
	if err := v.Refresh(context.Background()); err == nil {
		t.Error("Refresh of a document that is not a key set: no error")
	}
	if _, err := v.Validate(context.Background(), tok); err != nil {
		t.Errorf("after a failed refresh the old keys are gone: %v", err)
	}
}

// TestRateLimitPerSubject checks that resilience.RateLimit's default key is the subject
// authenticated by Middleware: two callers from one IP address have a budget each.
func TestRateLimitPerSubject(t *testing.T) {
	dev, _ := auth.NewDevIssuer(issuer, audience)
	v, _ := auth.NewValidator(dev.Options()...)
	var s subjects
	url := serveHTTP(t, endpoint.Chain(
		auth.Middleware(v, nil),
		resilience.RateLimit(resilience.RateLimitConfig{Rate: 0.001, Burst: 1}),
	), &s)
	alice, _ := dev.Token("alice", time.Hour)
	bob, _ := dev.Token("bob", time.Hour)
	for i, step := range []struct {
		token string
		want  int
	}{{alice, 200}, {alice, 429}, {bob, 200}, {bob, 429}} {
		if code, _, kind := httpCall(t, url+"/sum", step.token, `{}`); code != step.want {
			t.Errorf("call %d: status %d (%s), want %d", i, code, kind, step.want)
		}
	}
}
