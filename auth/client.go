package auth

import (
	"context"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
	"github.com/svckit/svckit/transport/meta"
)

// Bearer is client-side middleware that sends "Authorization: Bearer <token>" (gRPC:
// "authorization" metadata) with every call, the token coming from src, for example a
// service account's token from an identity provider. An error from src fails the call
// with svcerr.Unauthenticated before anything is sent.
func Bearer(src func(ctx context.Context) (string, error)) endpoint.Middleware {
	return func(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
		if !info.Client {
			return next
		}
		return func(ctx context.Context, req any) (any, error) {
			tok, err := src(ctx)
			if err != nil {
				return nil, svcerr.Wrap(svcerr.Unauthenticated, "no token for "+info.FullName(), err)
			}
			return next(meta.WithOutgoingHeader(ctx, "Authorization", "Bearer "+tok), req)
		}
	}
}

// Forward is client-side middleware that passes the bearer token of the call being
// served on to the calls it makes (token relay), so that a downstream service sees the
// original caller. Calls made outside a served call, or for a caller without a token, go
// out without one.
func Forward() endpoint.Middleware {
	return func(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
		if !info.Client {
			return next
		}
		return func(ctx context.Context, req any) (any, error) {
			if tok := meta.BearerToken(ctx); tok != "" {
				ctx = meta.WithOutgoingHeader(ctx, "Authorization", "Bearer "+tok)
			}
			return next(ctx, req)
		}
	}
}
