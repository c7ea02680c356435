// Package natsrpc is svckit's NATS request/reply transport, the third beside transport/http
// and transport/grpc: it serves typed endpoints on NATS subjects and calls them from other
// services with a client that runs the same endpoint middleware. The name is natsrpc, not
// nats, so that it does not shadow the nats.go package every caller imports beside it.
//
// # Subjects and queue groups
//
// Method M of service S is served on the subject "svc.S.M" ([Subject]); [WithSubject]
// overrides one method's subject (the generator's directive), [WithPrefix] the "svc"
// prefix. A [Server] subscribes each subject in the queue group S ([WithQueue] changes
// it), so the replicas of a service share the calls: NATS hands each request to one member
// of the group. Service and method names are NATS subject tokens: no spaces, no "*" or ">"
// wildcards; a method name has no dots.
//
// # Wire format
//
// A request is a NATS message with a JSON body (empty for the zero request) and headers:
//
//	X-Request-Id       the caller's request id (meta.RequestIDHeader)
//	X-Request-Timeout  the caller's remaining deadline in milliseconds ([TimeoutHeader])
//	traceparent, tracestate, baggage   W3C trace context
//	anything set with meta.WithOutgoingHeader, such as Authorization
//
// The reply carries the response as JSON and the request id in X-Request-Id. A failed call
// is answered with the headers of the NATS micro protocol — Nats-Service-Error-Code (the
// HTTP status of the error's kind) and Nats-Service-Error (its message) — and a JSON body
// holding svckit's error model ([ErrorBody]): kind, message, field violations and
// metadata. A [Client] turns it back into the same *svcerr.Error. Errors that are not
// *svcerr.Error leave as "internal error"; their text is never sent.
//
// # Bounds and hostile input
//
// Request bodies are limited to [DefaultMaxBodyBytes] ([WithMaxBodyBytes]) below the NATS
// server's max_payload; a larger one is answered ResourceExhausted. A body that is not
// JSON of the request type is answered InvalidArgument naming the offset or field. A
// request without a reply subject, or with one that is not a literal subject of at most
// 1024 bytes (wildcards), is dropped without running the endpoint: it could never be
// answered. A panic in a handler answers Internal and the server keeps serving. At
// most [DefaultMaxInFlight] calls run at once per [Serving] ([WithMaxInFlight]); beyond
// that the subscription stops reading and NATS buffers the requests. The client refuses
// to send a request larger than its limit or the connection's max payload
// (ResourceExhausted) and reads at most 16 MiB of a reply.
//
// # Deadlines, retries and failures
//
// The client sends its context's remaining deadline, and the server gives the call a
// context with that deadline; a call without a deadline gets the client's default
// timeout ([WithDefaultTimeout], 30 s). When no server listens on the subject (NATS
// answers "no responders"), no server received the request, so the client sends it
// again with a jittered backoff (10 ms doubling to 500 ms) until one answers or the
// deadline ends: a service restarting or reconnecting to another node of a cluster is
// waited for. A reply that does not come before the deadline is DeadlineExceeded; a
// request the NATS server refused for lack of publish permission is PermissionDenied; a
// closed connection is Unavailable.
//
// # Middleware and shutdown
//
// The call's context carries its endpoint.Info (endpoint.InfoFrom). Endpoint
// middleware reads the request's headers through transport/meta (meta.Header,
// meta.BearerToken); meta.Peer is "" as NATS does not tell the caller's address. Spans
// are started by tracing middleware such as observe.Tracing; the transport only moves
// the trace context. [Serving.Drain] unsubscribes (NATS then hands new requests to the
// other members of the queue group), lets the requests already received finish, and
// returns when their replies are sent. [Server.Serve] does that when its context ends.
//
// The package depends on endpoint, svcerr, transport/meta, the OpenTelemetry propagation
// API and nats.go, not on observe or the OpenTelemetry SDK.
package natsrpc
