package resilience

import "context"

type instanceKey struct{}

// WithInstance returns a context that names the instance (its address, "10.0.0.7:8080")
// a client call goes to. A load balancer sets it for each attempt; [Breaker] keeps one
// circuit per instance by it.
func WithInstance(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, instanceKey{}, addr)
}

// InstanceFrom returns the instance address set by WithInstance, or "".
func InstanceFrom(ctx context.Context) string {
	s, _ := ctx.Value(instanceKey{}).(string)
	return s
}
