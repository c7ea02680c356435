package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DevIssuer mints tokens for development and tests with an Ed25519 key made when it is
// created and never stored. Validators accept its tokens through [DevIssuer.Options] (a
// static key) or its JWKS ([DevIssuer.ServeHTTP]). Never use it in production: anyone
// who can reach the process that holds it can mint any role.
type DevIssuer struct {
	priv     ed25519.PrivateKey
	kid      string
	issuer   string
	audience string
	now      func() time.Time
}

// NewDevIssuer returns an issuer whose tokens carry the given "iss" and "aud".
func NewDevIssuer(issuer, audience string) (*DevIssuer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("auth: dev issuer key: %w", err)
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	return &DevIssuer{priv: priv, kid: "dev-" + base64.RawURLEncoding.EncodeToString(id[:]),
		issuer: issuer, audience: audience, now: time.Now}, nil
}

// KeyID returns the "kid" of the issuer's key.
func (d *DevIssuer) KeyID() string { return d.kid }

// PublicKey returns the issuer's public key.
func (d *DevIssuer) PublicKey() ed25519.PublicKey { return d.priv.Public().(ed25519.PublicKey) }

// Options returns the validator options that accept the issuer's tokens: its key, issuer
// and audience.
func (d *DevIssuer) Options() []Option {
	opts := []Option{WithKey(d.kid, "EdDSA", d.PublicKey())}
	if d.issuer != "" {
		opts = append(opts, WithIssuer(d.issuer))
	}
	if d.audience != "" {
		opts = append(opts, WithAudience(d.audience))
	}
	return opts
}

// Token returns a token for subject, valid for ttl from now, with the given roles.
func (d *DevIssuer) Token(subject string, ttl time.Duration, roles ...string) (string, error) {
	now := d.now()
	return d.Sign(&Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   subject,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Roles: roles,
	})
}

// Sign signs c as it is, after filling in the issuer's "iss" and "aud" when c has none.
func (d *DevIssuer) Sign(c *Claims) (string, error) {
	cc := *c
	if cc.Issuer == "" {
		cc.Issuer = d.issuer
	}
	if len(cc.Audience) == 0 && d.audience != "" {
		cc.Audience = jwt.ClaimStrings{d.audience}
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, &cc)
	t.Header["kid"] = d.kid
	s, err := t.SignedString(d.priv)
	if err != nil {
		return "", fmt.Errorf("auth: signing a dev token: %w", err)
	}
	return s, nil
}

// JWKS returns the issuer's public key as a JSON Web Key Set.
func (d *DevIssuer) JWKS() []byte {
	b, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": d.kid,
		"x": base64.RawURLEncoding.EncodeToString(d.PublicKey()),
	}}})
	return b
}

// ServeHTTP serves the issuer's JWKS, for validators configured with WithJWKS.
func (d *DevIssuer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_, _ = w.Write(d.JWKS())
}
