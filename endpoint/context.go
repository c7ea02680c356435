package endpoint

import "context"

// InfoKey is the context key under which [WithInfo] stores an *Info. [InfoFrom] reads
// it; a transport that gives a served call's context its own type may answer this key in
// the type's Value method instead of adding a context.WithValue per call.
type InfoKey struct{}

// WithInfo returns a context that carries info. Transports set it for every call so that
// code below the endpoint (logging handlers, clients) can tell which endpoint it serves.
func WithInfo(ctx context.Context, info *Info) context.Context {
	return context.WithValue(ctx, InfoKey{}, info)
}

// InfoFrom returns the Info that the transport put in ctx, or nil.
func InfoFrom(ctx context.Context) *Info {
	i, _ := ctx.Value(InfoKey{}).(*Info)
	return i
}
