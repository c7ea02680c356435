package auth_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	"github.com/svckit/svckit/auth"
	"github.com/svckit/svckit/svcerr"
)

// TestOversizedTokens sends a correctly signed token larger than the limit: it is refused
// with 401 before it is parsed, unless the limit is raised.
func TestOversizedTokens(t *testing.T) {
	k := testRSAKey(t)
	c := claims("adder", strings.Repeat("r", 9<<10))
	big := sign(t, jwt.SigningMethodRS256, k, "rsa1", c)
	small := sign(t, jwt.SigningMethodRS256, k, "rsa1", claims("adder"))
	tests := []struct {
		name  string
		opts  []auth.Option
		token string
		ok    bool
	}{
		{"default limit, small token", nil, small, true},
		{"default limit, 9 KiB token", nil, big, false},
		{"16 KiB limit, 9 KiB token", []auth.Option{auth.WithMaxTokenBytes(16 << 10)}, big, true},
		{"1 KiB limit, small token", []auth.Option{auth.WithMaxTokenBytes(1 << 10)}, small, true},
		{"512 byte limit, small token", []auth.Option{auth.WithMaxTokenBytes(512)}, small, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s subjects
			v := newValidator(t, tt.opts...)
			url := serveHTTP(t, auth.Middleware(v, policies), &s)
			cc := serveGRPC(t, auth.Middleware(v, policies), &s)
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
			if !strings.HasPrefix(detail, "invalid token: token larger than ") {
				t.Errorf("detail %q, want the size limit named", detail)
			}
		})
	}
}

// TestOversizedTokenIsNotParsed checks that the size check comes first: a token over the
// limit that is not even a JWT fails for its size.
func TestOversizedTokenIsNotParsed(t *testing.T) {
	v := newValidator(t, auth.WithMaxTokenBytes(100))
	_, err := v.Validate(context.Background(), strings.Repeat("a", 101))
	if e := svcerr.From(err); e.Kind != svcerr.Unauthenticated || e.Message != "invalid token: token larger than 100 bytes" {
		t.Errorf("got %v", err)
	}
	if _, err := auth.NewValidator(auth.WithKey("", "HS256", make([]byte, 32)), auth.WithMaxTokenBytes(0)); err == nil {
		t.Error("WithMaxTokenBytes(0) accepted")
	}
}
