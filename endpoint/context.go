package endpoint

import "context"

type infoKey struct{}

// WithInfo returns a context that carries info. Transports set it for every call so that
// code below the endpoint (logging handlers, clients) can tell which endpoint it serves.
func WithInfo(ctx context.Context, info *Info) context.Context {
	return context.WithValue(ctx, infoKey{}, info)
}

// InfoFrom returns the Info that the transport put in ctx, or nil.
func InfoFrom(ctx context.Context) *Info {
	i, _ := ctx.Value(infoKey{}).(*Info)
	return i
}
