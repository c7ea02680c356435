// Package binding connects a service to the outside world without code: input bindings
// turn something that happens elsewhere into an [Event] for a [Handler], output bindings
// send a [Request] somewhere and return a [Response].
//
// Inputs:
//
//	cron            an Event per tick of a cron spec, optionally on one replica per tick
//	                (claims in the store or NATS KV, package schedule)
//	webhook         an http.Handler that checks an HMAC-SHA256 signature (and optionally
//	                a timestamp against replays) before the body becomes an Event
//	nats-subscribe  a core NATS subscription (queue group) or a JetStream durable
//	                consumer (package pubsub: acks, redelivery with backoff, dead letters)
//
// Outputs:
//
//	http-call       an HTTP request (URL and headers templated from metadata, optional
//	                HMAC signature in the webhook scheme); non-2xx responses are svcerr errors
//	nats-publish    a core NATS publish, a request/reply, or a JetStream publish with the
//	                request id as the de-duplication id
//	sql             a parameterised statement on a store.Store, parameters bound by name
//	                from the request's JSON data or metadata; rows come back as JSON
//
// A [Config] lists bindings and pipelines (an input routed to outputs); [ParseConfig]
// reads it from YAML or JSON and [Open] builds the bindings with explicitly passed
// [Deps]. A [Set] runs the pipelines; inputs not used by a pipeline are run by the
// caller with its own Handler, typically as a worker of svckit.App:
//
//	set, err := binding.Open(ctx, cfg, binding.Deps{Mux: app.HTTP().Mux(), Bus: bus, …})
//	in, _ := set.Input("github")
//	app.Go("github", func(ctx context.Context) error { return in.Run(ctx, handle) })
//
// Handler errors decide redelivery: an error whose svcerr kind a retry cannot fix
// (invalid argument, not found, already exists, failed precondition, …; see
// [Retryable]) is final — a webhook answers with its 4xx status, a JetStream message is
// dead-lettered at once — while any other error asks for another attempt (a webhook
// answers 5xx, JetStream redelivers with backoff).
//
// See docs/bindings.md for every setting, the security notes and the delivery
// guarantee of each input.
package binding
