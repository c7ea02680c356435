package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// jwksCache holds the keys of a JWKS URL.
type jwksCache struct {
	url         string
	hc          *http.Client
	every       time.Duration // periodic refresh
	minInterval time.Duration // least time between fetches for unknown key ids

	keys atomic.Pointer[jwksSnapshot]

	mu          sync.Mutex // serializes fetches
	lastAttempt time.Time  // guarded by mu
}

type jwksSnapshot struct {
	keys    []key
	fetched time.Time
}

func newJWKSCache(url string, hc *http.Client, every, minInterval time.Duration) *jwksCache {
	return &jwksCache{url: url, hc: hc, every: every, minInterval: minInterval}
}

// current returns the cached keys. It fetches them on first use (bounded by ctx; after a
// failed fetch, again only once the minimum interval has passed), and once they are older
// than the refresh period one caller fetches them again while the others go on with the
// keys they have.
func (c *jwksCache) current(ctx context.Context) []key {
	snap := c.keys.Load()
	if snap == nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		if snap = c.keys.Load(); snap == nil {
			if !c.lastAttempt.IsZero() && time.Since(c.lastAttempt) < c.minInterval {
				return nil
			}
			_ = c.fetchLocked(ctx)
			if snap = c.keys.Load(); snap == nil {
				return nil
			}
		}
		return snap.keys
	}
	if c.every > 0 && time.Since(snap.fetched) > c.every && c.mu.TryLock() {
		defer c.mu.Unlock()
		if s := c.keys.Load(); s == snap {
			_ = c.fetchLocked(ctx)
		}
		snap = c.keys.Load()
	}
	return snap.keys
}

// refreshUnknown fetches the keys for a token whose key id is unknown, unless a fetch was
// attempted within the minimum interval.
func (c *jwksCache) refreshUnknown(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.lastAttempt.IsZero() && time.Since(c.lastAttempt) < c.minInterval {
		return errors.New("auth: JWKS fetched recently")
	}
	return c.fetchLocked(ctx)
}

// fetch fetches the keys now.
func (c *jwksCache) fetch(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fetchLocked(ctx)
}

// fetchLocked fetches and parses the JWKS; on failure the old keys stay.
func (c *jwksCache) fetchLocked(ctx context.Context) error {
	c.lastAttempt = time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return fmt.Errorf("auth: JWKS %s: %w", c.url, err)
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("auth: fetching JWKS %s: %w", c.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("auth: fetching JWKS %s: status %d", c.url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("auth: reading JWKS %s: %w", c.url, err)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return fmt.Errorf("auth: JWKS %s: %w", c.url, err)
	}
	c.keys.Store(&jwksSnapshot{keys: keys, fetched: time.Now()})
	return nil
}

// jwk is one JSON Web Key (RFC 7517), the members svckit reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS parses a JSON Web Key Set and returns its signature keys, each pinned to its
// algorithm(s). Keys for encryption ("use": "enc"), symmetric keys ("kty": "oct"), keys of
// unknown types and keys that are malformed or too weak (RSA under 2048 bits) are skipped,
// so that one bad key does not take the others down; a document that is not a key set is
// an error.
func parseJWKS(data []byte) ([]key, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("not a JSON Web Key Set: %w", err)
	}
	if set.Keys == nil {
		return nil, errors.New("not a JSON Web Key Set: no \"keys\" member")
	}
	var out []key
	for _, j := range set.Keys {
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		pub, algs, err := j.public()
		if err != nil || pub == nil {
			continue
		}
		if j.Alg != "" {
			algs = []string{j.Alg}
		}
		for _, alg := range algs {
			if k, err := newKey(j.Kid, alg, pub); err == nil {
				out = append(out, k)
			}
		}
	}
	return out, nil
}

// public decodes the key and returns the algorithms its type allows; nil for a key type
// that is not taken from a JWKS.
func (j *jwk) public() (any, []string, error) {
	b64 := base64.RawURLEncoding
	switch j.Kty {
	case "RSA":
		n, err1 := b64.DecodeString(j.N)
		e, err2 := b64.DecodeString(j.E)
		if err := errors.Join(err1, err2); err != nil || len(n) == 0 || len(e) == 0 || len(e) > 4 {
			return nil, nil, errors.New("bad RSA modulus or exponent")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		return pub, []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, nil
	case "EC":
		var curve elliptic.Curve
		var alg string
		switch j.Crv {
		case "P-256":
			curve, alg = elliptic.P256(), "ES256"
		case "P-384":
			curve, alg = elliptic.P384(), "ES384"
		case "P-521":
			curve, alg = elliptic.P521(), "ES512"
		default:
			return nil, nil, fmt.Errorf("unsupported curve %q", j.Crv)
		}
		x, err1 := b64.DecodeString(j.X)
		y, err2 := b64.DecodeString(j.Y)
		if err := errors.Join(err1, err2); err != nil {
			return nil, nil, errors.New("bad EC coordinates")
		}
		// ParseUncompressedPublicKey checks that the point is on the curve.
		size := (curve.Params().BitSize + 7) / 8
		if len(x) > size || len(y) > size {
			return nil, nil, errors.New("bad EC coordinates")
		}
		raw := make([]byte, 1+2*size)
		raw[0] = 4
		copy(raw[1+size-len(x):1+size], x)
		copy(raw[1+2*size-len(y):], y)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, raw)
		if err != nil {
			return nil, nil, fmt.Errorf("bad EC point: %w", err)
		}
		return pub, []string{alg}, nil
	case "OKP":
		if j.Crv != "Ed25519" {
			return nil, nil, fmt.Errorf("unsupported curve %q", j.Crv)
		}
		x, err := b64.DecodeString(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, nil, errors.New("bad Ed25519 key")
		}
		return ed25519.PublicKey(x), []string{"EdDSA"}, nil
	}
	return nil, nil, nil
}
