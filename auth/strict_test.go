package auth_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	"github.com/svckit/svckit/auth"
)

// rawToken signs header and payload, given as JSON text, so that tests can send claims
// that jwt's own types would not produce.
func rawToken(t testing.TB, m jwt.SigningMethod, key any, header, payload string) string {
	t.Helper()
	signing := b64([]byte(header)) + "." + b64([]byte(payload))
	sig, err := m.Sign(signing, key)
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + b64(sig)
}

// nonCanonical returns tok with the unused low bits of its signature's last base64url
// character set: a second string for the same signature bytes, which a lenient decoder
// accepts.
func nonCanonical(t testing.TB, tok string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	if len(sig)*6%8 == 0 {
		t.Fatalf("a signature of %d characters has no unused bits", len(sig))
	}
	last := strings.IndexByte(alphabet, sig[len(sig)-1])
	out := tok[:len(tok)-1] + string(alphabet[last|1])
	// The point of the test: both strings decode to the same bytes when padding bits are
	// not checked.
	a, errA := base64.RawURLEncoding.DecodeString(sig)
	b, errB := base64.RawURLEncoding.DecodeString(out[strings.LastIndexByte(out, '.')+1:])
	if errA != nil || errB != nil || !bytes.Equal(a, b) || out == tok {
		t.Fatalf("nonCanonical: %v %v, same bytes %v", errA, errB, bytes.Equal(a, b))
	}
	return out
}

// problemCall posts to url with the token and returns the status, the content type and
// the problem's detail.
func problemCall(t *testing.T, url, token string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"a":1,"b":2}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var p struct {
		Detail string `json:"detail"`
	}
	_ = json.Unmarshal(data, &p)
	return resp.StatusCode, resp.Header.Get("Content-Type"), p.Detail
}

// TestStrictTokens sends tokens that a lenient decoder accepts over loopback HTTP and
// gRPC: a second encoding of a valid signature, times that are strings, an "iat" in the
// future. Each is refused with 401 / UNAUTHENTICATED; the canonical token and an "iat"
// within the leeway pass.
func TestStrictTokens(t *testing.T) {
	k := testRSAKey(t)
	now := time.Now().Unix()
	const header = `{"alg":"RS256","typ":"JWT","kid":"rsa1"}`
	tok := func(times string) string {
		return rawToken(t, jwt.SigningMethodRS256, k, header,
			fmt.Sprintf(`{"iss":%q,"sub":"alice","aud":[%q],"roles":["adder"],%s}`, issuer, audience, times))
	}
	good := tok(fmt.Sprintf(`"iat":%d,"exp":%d`, now, now+3600))
	tests := []struct {
		name, token, reason string // reason: the detail's end, for refused tokens
		ok                  bool
	}{
		// First, so that the valid token is remembered before its second encoding arrives.
		{name: "canonical", token: good, ok: true},
		{name: "signature with non-zero padding bits", token: nonCanonical(t, good), reason: "malformed token"},
		{name: "exp as a string", token: tok(fmt.Sprintf(`"iat":%d,"exp":"%d"`, now, now+3600)), reason: "malformed token"},
		{name: "nbf as a string", token: tok(fmt.Sprintf(`"nbf":"%d","exp":%d`, now, now+3600)), reason: "malformed token"},
		{name: "iat as a string", token: tok(fmt.Sprintf(`"iat":"%d","exp":%d`, now, now+3600)), reason: "malformed token"},
		{name: "exp as a boolean", token: tok(`"exp":true`), reason: "malformed token"},
		{name: "iat in the future", token: tok(fmt.Sprintf(`"iat":%d,"exp":%d`, now+3600, now+7200)), reason: "token issued in the future"},
		{name: "iat within the leeway", token: tok(fmt.Sprintf(`"iat":%d,"exp":%d`, now+10, now+3600)), ok: true},
		{name: "fractional exp", token: tok(fmt.Sprintf(`"exp":%d.5`, now+3600)), ok: true},
		{name: "exp null", token: tok(`"exp":null`), reason: "required claim missing"},
	}
	var s subjects
	url := serveHTTP(t, auth.Middleware(newValidator(t), policies), &s)
	cc := serveGRPC(t, auth.Middleware(newValidator(t), policies), &s)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, ctype, detail := problemCall(t, url+"/sum", tt.token)
			grpcCode := grpcCall(t, cc, "Sum", tt.token)
			if tt.ok {
				if code != http.StatusOK || grpcCode != codes.OK {
					t.Fatalf("HTTP %d (%s), gRPC %v; want 200 and OK", code, detail, grpcCode)
				}
				return
			}
			if code != http.StatusUnauthorized || ctype != "application/problem+json" || grpcCode != codes.Unauthenticated {
				t.Fatalf("HTTP %d %s (%q), gRPC %v; want 401 problem+json and Unauthenticated", code, ctype, detail, grpcCode)
			}
			if want := "invalid token: " + tt.reason; detail != want {
				t.Errorf("detail %q, want %q", detail, want)
			}
		})
	}
}
