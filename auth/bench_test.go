package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/metadata"

	"github.com/svckit/svckit/auth"
	"github.com/svckit/svckit/endpoint"
)

// BenchmarkValidate measures validating one token per signing algorithm, the first time
// (nocache: the signature is checked) and again (cached).
func BenchmarkValidate(b *testing.B) {
	rk := testRSAKey(b)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	secret := []byte(strings.Repeat("s", 32))
	newV := func(cache int) *auth.Validator {
		v, err := auth.NewValidator(
			auth.WithKey("r", "RS256", rk), auth.WithKey("e", "ES256", ec),
			auth.WithKey("d", "EdDSA", ed), auth.WithKey("h", "HS256", secret),
			auth.WithIssuer(issuer), auth.WithAudience(audience), auth.WithCacheSize(cache))
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	nocache, cached := newV(0), newV(4096)
	for _, tc := range []struct {
		name string
		m    jwt.SigningMethod
		key  any
		kid  string
	}{
		{"RS256", jwt.SigningMethodRS256, rk, "r"},
		{"ES256", jwt.SigningMethodES256, ec, "e"},
		{"EdDSA", jwt.SigningMethodEdDSA, ed, "d"},
		{"HS256", jwt.SigningMethodHS256, secret, "h"},
	} {
		tok := sign(b, tc.m, tc.key, tc.kid, claims("adder"))
		for _, v := range []struct {
			name string
			v    *auth.Validator
		}{{"nocache", nocache}, {"cached", cached}} {
			b.Run(tc.name+"/"+v.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := v.v.Validate(context.Background(), tok); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkMiddleware measures the auth middleware on a gRPC server context with a valid
// EdDSA token and a role policy.
func BenchmarkMiddleware(b *testing.B) {
	dev, _ := auth.NewDevIssuer(issuer, audience)
	v, _ := auth.NewValidator(dev.Options()...)
	tok, _ := dev.Token("alice", 3600e9, "adder")
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+tok))
	info := endpoint.Info{Service: "addsvc", Method: "Sum", Transport: "grpc"}
	h := endpoint.Chain(auth.Middleware(v, auth.Policies{"Sum": auth.Require("adder")}))(info,
		func(context.Context, any) (any, error) { return nil, nil })
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h(ctx, nil); err != nil {
			b.Fatal(err)
		}
	}
}
