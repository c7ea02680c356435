package resilience

import "context"

// InstanceKey is the context key under which [WithInstance] stores an instance address
// (a string). [InstanceFrom] reads it; a load balancer that gives a call's context its own
// type may answer this key in the type's Value method instead of adding a
// context.WithValue per call.
type InstanceKey struct{}

// WithInstance returns a context that names the instance (its address, "10.0.0.7:8080")
// a client call goes to. A load balancer sets it for each attempt; [Breaker] keeps one
// circuit per instance by it.
func WithInstance(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, InstanceKey{}, addr)
}

// InstanceFrom returns the instance address set by WithInstance, or "".
func InstanceFrom(ctx context.Context) string {
	s, _ := ctx.Value(InstanceKey{}).(string)
	return s
}
