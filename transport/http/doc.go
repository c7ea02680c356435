// Package http is svckit's HTTP transport: it serves typed endpoints over net/http with
// Go's pattern routing and a JSON codec, and calls them from other services with a client
// that runs the same middleware.
//
// Routing is http.ServeMux's, with one shortcut: a request whose method and path are
// exactly a route's, for a route without wildcards ("POST /sum"), goes straight to it with
// Request.Pattern set, as the ServeMux would route it, without the ServeMux's path
// cleaning and pattern matching. Other requests, and every request once [Server.Mux] has
// been handed out (a handler registered there with a host takes precedence), go through
// the ServeMux.
//
// Every failure leaves as application/problem+json (RFC 9457) with a "kind" member naming
// the svcerr kind, so a svckit client turns it back into the same *svcerr.Error:
//
//	malformed JSON, wrong field types   400 invalid_argument, naming the offset or field
//	malformed gzip body                 400 invalid_argument
//	body over the limit (default 1 MiB) 413 resource_exhausted, "Content Too Large" (RFC 9110);
//	                                        for a gzip body, as sent and decompressed (zip bombs)
//	body that is not JSON               415 invalid_argument
//	Content-Encoding other than gzip    415 invalid_argument, with Accept-Encoding: gzip (RFC 7694)
//	body slower than the read timeout   408 deadline_exceeded, and the connection closes
//	unknown route                       404 not_found
//	known path, wrong method            405 invalid_argument, with an Allow header
//	CORS preflight from another origin  403 permission_denied (only with WithCORS)
//	panic in a handler                  500 internal; the server keeps serving
//
// An endpoint's own errors get the status of their kind (svcerr.Kind.HTTPStatus, Google's
// mapping: failed_precondition and out_of_range are 400, not 412). The requests refused
// before an endpoint runs (400, 404, 405, 413, 415 above) pass through the middleware of
// [WithRejectMiddleware] — with the route's method, or [UnmatchedMethod] when no route
// matched — so that svckit's App logs and counts them like the others.
//
// Request bodies may be sent with Content-Encoding: gzip. JSON responses of at least
// [GzipMinBytes] are compressed with gzip for clients whose Accept-Encoding takes it (with
// Vary: Accept-Encoding). [Protocols] makes an http.Server speak HTTP/1.1, HTTP/2 over TLS
// and cleartext HTTP/2 with prior knowledge (h2c) on one port. [WithCORS] answers CORS
// preflights and adds CORS headers for the allowed origins; without it (the default) the
// server sends no CORS headers.
//
// The refusals net/http makes before any handler runs — 431 for a header section over
// http.Server.MaxHeaderBytes, 400 for a malformed request line or Host, 501 for an unknown
// Transfer-Encoding — are problem+json too when the listener is wrapped by
// [ProblemListener] (plaintext HTTP/1). The 408 needs http.Server.ReadTimeout, which
// bounds the time to read a whole request, body included.
//
// A [Client] turns transport failures into svcerr.Unavailable "service unreachable" and a
// response that is not svckit's problem+json (a proxy's error page) into the status's kind
// with the status text as message; the underlying error or body is the cause, for logs,
// and never part of the message that travels on to callers.
//
// Requests carry an X-Request-Id (taken from the caller when valid, generated otherwise;
// endpoints and clients read it with meta.RequestID) and W3C trace context (traceparent,
// tracestate, baggage) in both directions. The transport only moves them; spans are
// started by tracing middleware such as observe.Tracing. The package itself depends on
// endpoint, svcerr, transport/meta and the OpenTelemetry propagation API, not on observe
// or the OpenTelemetry SDK. The client
// sends its context's remaining deadline in [TimeoutHeader] (milliseconds), and the server
// gives the request a context with that deadline. Endpoint middleware reads the request's
// headers and the caller's address through transport/meta (meta.Header, meta.Peer), and
// the client sends the headers set with meta.WithOutgoingHeader. An error with
// retry_after metadata gets a Retry-After header; an unauthenticated error with
// www_authenticate metadata gets a WWW-Authenticate header.
package http
