package auth

import (
	"context"
	"slices"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/mtls"
	"github.com/svckit/svckit/svcerr"
	"github.com/svckit/svckit/transport/meta"
)

// Policy says who may call an endpoint. The zero Policy admits any authenticated caller.
type Policy struct {
	public   bool // no token is read
	deny     bool
	roles    []string // any one of them
	scopes   []string // all of them
	services []string // the mTLS peer must be one of them, when byPeer
	byPeer   bool
}

// Public returns a policy that admits every caller, with or without a token; the token
// is not read, and ClaimsFrom returns nil.
func Public() Policy { return Policy{public: true} }

// Authenticated returns a policy that admits any caller with a valid token.
func Authenticated() Policy { return Policy{} }

// Require returns a policy that admits callers with a valid token whose "roles" claim
// lists at least one of roles.
func Require(roles ...string) Policy { return Policy{roles: roles} }

// RequireScopes returns a policy that admits callers with a valid token whose "scope"
// claim lists every one of scopes.
func RequireScopes(scopes ...string) Policy { return Policy{scopes: scopes} }

// Services returns a policy that admits calls from the named services, as their mTLS
// client certificates identify them (mtls.PeerFromContext), with or without a token; the
// token is not read. A call without a verified client certificate of one of services is
// denied with svcerr.PermissionDenied. The caller's mtls.Identity is then the call's
// principal, so meta.Subject (and rate limits keyed by it) sees the calling service.
func Services(services ...string) Policy {
	return Policy{public: true, services: services, byPeer: true}
}

// Deny returns a policy that admits no one: the policy of every endpoint missing from a
// non-empty [Policies].
func Deny() Policy { return Policy{deny: true} }

// AndScopes returns p that also requires every one of scopes.
func (p Policy) AndScopes(scopes ...string) Policy {
	p.scopes = append(p.scopes[:len(p.scopes):len(p.scopes)], scopes...)
	return p
}

// AndServices returns p that also requires the call to come from one of services, as
// their mTLS client certificates identify them: auth.Require("admin").AndServices("gateway")
// admits admins' tokens relayed by the gateway only. On [Public] it is [Services].
func (p Policy) AndServices(services ...string) Policy {
	p.services = append(p.services[:len(p.services):len(p.services)], services...)
	p.byPeer = true
	return p
}

// allowsPeer reports whether the call in ctx comes from a service p admits, and returns
// the caller's identity.
func (p Policy) allowsPeer(ctx context.Context) (mtls.Identity, bool) {
	id, ok := mtls.PeerFromContext(ctx)
	return id, ok && slices.Contains(p.services, id.Service)
}

// allows reports whether the authenticated caller c satisfies p.
func (p Policy) allows(c *Claims) bool {
	if p.deny {
		return false
	}
	if len(p.roles) > 0 {
		ok := false
		for _, r := range p.roles {
			if c.HasRole(r) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, s := range p.scopes {
		if !c.HasScope(s) {
			return false
		}
	}
	return true
}

// Policies maps endpoints to their policies, by method name ("Sum") or full name
// ("addsvc.Sum"; it wins over the method name). Declare it beside the endpoints:
//
//	var policies = auth.Policies{
//		"Sum":    auth.Require("adder"),
//		"Health": auth.Public(),
//	}
type Policies map[string]Policy

// policyFor returns the policy of the endpoint: its entry, Deny for an endpoint missing
// from non-empty policies, and Authenticated when there are none.
func (ps Policies) policyFor(info endpoint.Info) Policy {
	if p, ok := ps[info.FullName()]; ok {
		return p
	}
	if p, ok := ps[info.Method]; ok {
		return p
	}
	if len(ps) > 0 {
		return Deny()
	}
	return Authenticated()
}

// Middleware is server-side endpoint middleware that authenticates every call with v and
// authorizes it with the endpoint's policy from policies. An endpoint missing from
// non-empty policies is denied to everyone (deny by default); with no policies at all,
// every endpoint admits any caller with a valid token. The policy is resolved once per
// endpoint, when the middleware is applied. v may be nil when every policy is [Public] or
// [Services]; Middleware then panics, when it is applied, for an endpoint whose policy
// needs a token.
//
// The token comes from "Authorization: Bearer …" (HTTP) or the "authorization" metadata
// key (gRPC). A missing or invalid token fails with svcerr.Unauthenticated, which the HTTP
// transport sends as 401 with a WWW-Authenticate: Bearer challenge; a caller the policy
// does not admit fails with svcerr.PermissionDenied (403). On success the claims are in
// the context: [ClaimsFrom], and meta.Subject for rate limiting.
//
// Client endpoints are left alone.
func Middleware(v *Validator, policies Policies) endpoint.Middleware {
	return func(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
		if info.Client {
			return next
		}
		p := policies.policyFor(info)
		deniedMsg := "not allowed to call " + info.FullName()
		if p.public {
			if !p.byPeer {
				return next
			}
			return func(ctx context.Context, req any) (any, error) {
				id, ok := p.allowsPeer(ctx)
				if !ok {
					return nil, svcerr.New(svcerr.PermissionDenied, deniedMsg)
				}
				return next(meta.WithPrincipal(ctx, id), req)
			}
		}
		if v == nil {
			if !p.deny {
				panic("svckit/auth: Middleware without a Validator for " + info.FullName() + ", whose policy needs a token")
			}
			return func(context.Context, any) (any, error) {
				return nil, svcerr.New(svcerr.PermissionDenied, deniedMsg)
			}
		}
		return func(ctx context.Context, req any) (any, error) {
			if p.byPeer {
				if _, ok := p.allowsPeer(ctx); !ok {
					return nil, svcerr.New(svcerr.PermissionDenied, deniedMsg)
				}
			}
			token := meta.BearerToken(ctx)
			if token == "" {
				return nil, unauthenticated("missing bearer token", `Bearer`, nil)
			}
			c, err := v.Validate(ctx, token)
			if err != nil {
				return nil, unauthenticated(svcerr.From(err).Message, `Bearer error="invalid_token"`, err)
			}
			if !p.allows(c) {
				return nil, svcerr.New(svcerr.PermissionDenied, deniedMsg)
			}
			return next(meta.WithPrincipal(ctx, c), req)
		}
	}
}

// unauthenticated returns an Unauthenticated error with a WWW-Authenticate challenge.
func unauthenticated(msg, challenge string, cause error) error {
	e := svcerr.Wrap(svcerr.Unauthenticated, msg, cause)
	return e.WithMeta("www_authenticate", challenge)
}
