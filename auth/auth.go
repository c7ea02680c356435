// Package auth authenticates callers with JWTs and authorizes them per endpoint.
//
// A [Validator] checks bearer tokens (github.com/golang-jwt/jwt/v5): the signature with a
// key pinned to one algorithm, so "alg: none" and HS/RS algorithm confusion cannot pass;
// expiry ("exp", required), "nbf" and "iat" with a small leeway; issuer and audience when
// configured. Decoding is strict: tokens over 8 KiB ([WithMaxTokenBytes]) are refused
// unread, base64url must be canonical (one token, one string) and the time claims must be
// JSON numbers. Keys are static ([WithKey]) or fetched from a JWKS URL ([WithJWKS]), cached,
// refreshed periodically and at once (rate-limited) when a token names an unknown key id,
// which is how key rotation reaches the validator.
//
// [Middleware] is server-side endpoint middleware: it reads the bearer token from the
// Authorization header (HTTP) or "authorization" metadata (gRPC) through transport/meta,
// validates it, checks the endpoint's [Policy] and puts the [Claims] in the context
// ([ClaimsFrom]). A missing or bad token fails with svcerr.Unauthenticated (401 with
// WWW-Authenticate, or UNAUTHENTICATED); a caller without the required role or scope
// fails with svcerr.PermissionDenied (403, PERMISSION_DENIED). Once any policy is set, an
// endpoint without one is denied: authorization is deny by default.
//
// Under mutual TLS (package mtls), [Services] admits calls by the calling service's
// verified certificate identity instead of a token, and [Policy.AndServices] requires
// both, as in auth.Require("admin").AndServices("gateway").
//
// [DevIssuer] mints tokens with a throw-away Ed25519 key for development and tests.
package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/svckit/svckit/transport/meta"
)

// Claims are the claims of a validated token: the registered claims (iss, sub, aud, exp,
// nbf, iat, jti) and the roles and scopes that policies check.
type Claims struct {
	jwt.RegisteredClaims
	// Roles are the caller's roles, from the "roles" claim (a JSON array of strings).
	Roles []string `json:"roles,omitempty"`
	// Scope holds the caller's OAuth 2.0 scopes, space-separated, from the "scope" claim.
	Scope string `json:"scope,omitempty"`
}

// UnmarshalJSON decodes the claims of a token. Unlike jwt.NumericDate alone, it refuses
// "exp", "nbf" and "iat" values that are not JSON numbers, such as "exp":"1700000000".
func (c *Claims) UnmarshalJSON(b []byte) error {
	type plain Claims // the same fields without this method
	aux := struct {
		*plain
		// These shadow RegisteredClaims' fields of the same JSON names.
		Exp timeClaim `json:"exp"`
		Nbf timeClaim `json:"nbf"`
		Iat timeClaim `json:"iat"`
	}{(*plain)(c), timeClaim{"exp", &c.ExpiresAt}, timeClaim{"nbf", &c.NotBefore}, timeClaim{"iat", &c.IssuedAt}}
	return json.Unmarshal(b, &aux)
}

// timeClaim decodes the time claim name into *dst: a JSON number, or null.
type timeClaim struct {
	name string
	dst  **jwt.NumericDate
}

// UnmarshalJSON decodes a JSON number into the claim, and refuses any other value but null.
func (t *timeClaim) UnmarshalJSON(raw []byte) error {
	if string(raw) == "null" {
		*t.dst = nil
		return nil
	}
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return fmt.Errorf("claim %q must be a number", t.name)
	}
	d := new(jwt.NumericDate)
	if err := d.UnmarshalJSON(raw); err != nil {
		return fmt.Errorf("claim %q: %w", t.name, err)
	}
	*t.dst = d
	return nil
}

// HasRole reports whether the claims list role.
func (c *Claims) HasRole(role string) bool { return c != nil && slices.Contains(c.Roles, role) }

// Scopes returns the scopes of the "scope" claim.
func (c *Claims) Scopes() []string {
	if c == nil {
		return nil
	}
	return strings.Fields(c.Scope)
}

// HasScope reports whether the "scope" claim lists scope.
func (c *Claims) HasScope(scope string) bool {
	if c == nil {
		return false
	}
	for s := range strings.FieldsSeq(c.Scope) {
		if s == scope {
			return true
		}
	}
	return false
}

// ClaimsFrom returns the claims that [Middleware] put in ctx for an authenticated call, or
// nil.
func ClaimsFrom(ctx context.Context) *Claims {
	c, _ := meta.Principal(ctx).(*Claims)
	return c
}

// WithClaims returns a context that carries c as the authenticated caller, as Middleware
// does; for tests and for in-process calls.
func WithClaims(ctx context.Context, c *Claims) context.Context {
	return meta.WithPrincipal(ctx, c)
}
