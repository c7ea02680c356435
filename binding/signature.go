package binding

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/svckit/svckit/config"
	"github.com/svckit/svckit/svcerr"
)

// Signature is an HMAC-SHA256 signature scheme for HTTP bodies, shared by the webhook
// input (which verifies) and the http-call output (which signs), so two services can
// talk through them. The zero value is GitHub's scheme without the prefix; GitHub's is
// Signature{Header: "X-Hub-Signature-256", Prefix: "sha256="}.
//
// Without a TimestampHeader the MAC covers the body. With one, the sender puts the Unix
// time in seconds in that header and the MAC covers "TIMESTAMP.BODY"; the receiver
// rejects timestamps further than Tolerance from its clock, so a captured request
// cannot be replayed later.
type Signature struct {
	// Header carries the signature; default "X-Signature-256".
	Header string `yaml:"header"`
	// Prefix precedes the encoded MAC in the header, such as "sha256=".
	Prefix string `yaml:"prefix"`
	// Encoding of the MAC: "hex" (default) or "base64".
	Encoding string `yaml:"encoding"`
	// TimestampHeader, if set, carries the signing time in Unix seconds, which the MAC
	// covers.
	TimestampHeader string `yaml:"timestamp_header"`
	// Tolerance is how far a timestamp may be from the receiver's clock; default 5m.
	Tolerance time.Duration `yaml:"tolerance"`
}

// DefaultSignatureHeader is the signature header when Signature.Header is empty.
const DefaultSignatureHeader = "X-Signature-256"

func (s Signature) header() string {
	if s.Header == "" {
		return DefaultSignatureHeader
	}
	return s.Header
}

func (s Signature) tolerance() time.Duration {
	if s.Tolerance <= 0 {
		return 5 * time.Minute
	}
	return s.Tolerance
}

func (s Signature) validate() error {
	switch s.Encoding {
	case "", "hex", "base64":
	default:
		return fieldErr("encoding", fmt.Errorf("%q: want hex or base64", s.Encoding))
	}
	if s.Tolerance < 0 {
		return fieldErr("tolerance", fmt.Errorf("must not be negative"))
	}
	return nil
}

func (s Signature) encode(mac []byte) string {
	if s.Encoding == "base64" {
		return base64.StdEncoding.EncodeToString(mac)
	}
	return hex.EncodeToString(mac)
}

func (s Signature) decode(v string) ([]byte, error) {
	if s.Encoding == "base64" {
		return base64.StdEncoding.DecodeString(v)
	}
	return hex.DecodeString(v)
}

func mac(secret config.Secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret.Reveal()))
	if ts != "" {
		m.Write([]byte(ts))
		m.Write([]byte{'.'})
	}
	m.Write(body)
	return m.Sum(nil)
}

// Sign sets the signature header (and the timestamp header, with now) of h for body.
func (s Signature) Sign(secret config.Secret, h http.Header, body []byte, now time.Time) {
	ts := ""
	if s.TimestampHeader != "" {
		ts = strconv.FormatInt(now.Unix(), 10)
		h.Set(s.TimestampHeader, ts)
	}
	h.Set(s.header(), s.Prefix+s.encode(mac(secret, ts, body)))
}

// Verify checks the signature in h against body, and the timestamp against now. Its
// errors are svcerr Unauthenticated errors that name what is wrong without revealing
// the expected signature; the comparison takes constant time.
func (s Signature) Verify(secret config.Secret, h http.Header, body []byte, now time.Time) error {
	got, err := s.present(h)
	if err != nil {
		return err
	}
	ts := ""
	if s.TimestampHeader != "" {
		ts = h.Get(s.TimestampHeader)
		if ts == "" {
			return svcerr.Errorf(svcerr.Unauthenticated, "missing %s header", s.TimestampHeader)
		}
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || len(ts) > 12 {
			return svcerr.Errorf(svcerr.Unauthenticated, "malformed %s header: want Unix seconds", s.TimestampHeader)
		}
		if d := now.Sub(time.Unix(sec, 0)).Abs(); d > s.tolerance() {
			return svcerr.Errorf(svcerr.Unauthenticated, "%s is outside the tolerance of %s", s.TimestampHeader, s.tolerance())
		}
	}
	want := mac(secret, ts, body)
	if !hmac.Equal(got, want) {
		return svcerr.New(svcerr.Unauthenticated, "signature does not match")
	}
	return nil
}

// present returns the decoded MAC of h, or an error if it is missing or malformed.
func (s Signature) present(h http.Header) ([]byte, error) {
	v := h.Get(s.header())
	if v == "" {
		return nil, svcerr.Errorf(svcerr.Unauthenticated, "missing %s header", s.header())
	}
	enc, ok := strings.CutPrefix(v, s.Prefix)
	if !ok {
		return nil, svcerr.Errorf(svcerr.Unauthenticated, "malformed %s header: want prefix %q", s.header(), s.Prefix)
	}
	got, err := s.decode(enc)
	if err != nil || len(got) != sha256.Size {
		return nil, svcerr.Errorf(svcerr.Unauthenticated, "malformed %s header", s.header())
	}
	return got, nil
}
