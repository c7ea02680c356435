package binding

import (
	"fmt"
	"os"
	"regexp"
	"time"
)

// Config lists bindings and the pipelines between them. [ParseConfig] reads it from
// YAML or JSON; Go code may build it directly.
type Config struct {
	// Bindings are the inputs and outputs, each with a unique name.
	Bindings []Spec
	// Pipelines route the events of an input to outputs.
	Pipelines []Pipeline
}

// Spec is one binding: its name, its type and the settings of that type. Exactly one of
// the settings pointers is set; Type may be left empty in Go code.
type Spec struct {
	// Name identifies the binding in logs, metrics, errors and pipelines: letters,
	// digits, - and _.
	Name string
	// Type is one of the Type… constants.
	Type string
	// Line is the line of the binding in the configuration file, 0 if unknown.
	Line int

	// Cron holds the settings of a cron input.
	Cron *CronConfig
	// Webhook holds the settings of a webhook input.
	Webhook *WebhookConfig
	// NATSSubscribe holds the settings of a nats-subscribe input.
	NATSSubscribe *NATSSubscribeConfig
	// HTTPCall holds the settings of an http-call output.
	HTTPCall *HTTPCallConfig
	// NATSPublish holds the settings of a nats-publish output.
	NATSPublish *NATSPublishConfig
	// SQL holds the settings of a sql output.
	SQL *SQLConfig
}

// The binding types.
const (
	TypeCron          = "cron"
	TypeWebhook       = "webhook"
	TypeNATSSubscribe = "nats-subscribe"
	TypeHTTPCall      = "http-call"
	TypeNATSPublish   = "nats-publish"
	TypeSQL           = "sql"
)

// Pipeline routes every event of the input From to the outputs To, in order, as
// [RequestFrom] makes it. The event succeeds when every output succeeded; otherwise it
// fails with the first error, and a redelivery invokes every output again.
type Pipeline struct {
	// From is the input's name.
	From string `yaml:"from"`
	// To are the outputs' names.
	To []string `yaml:"to"`
	// Timeout bounds the handling of one event; default none.
	Timeout time.Duration `yaml:"timeout"`
}

// CronConfig configures a cron input: an event per tick.
type CronConfig struct {
	// Schedule is a cron spec (five fields, or six with leading seconds), a descriptor
	// such as @hourly, or @every 10s (aligned to multiples since the epoch). Required.
	Schedule string `yaml:"schedule"`
	// Data is the payload of every event.
	Data string `yaml:"data"`
	// Location is the time zone of the spec; default UTC.
	Location string `yaml:"location"`
	// Claims says where ticks are claimed so that one replica runs each: "local" (the
	// default: no coordination, every replica fires), "store" (Deps.Store) or "kv" (a
	// NATS KV bucket through Deps.Bus).
	Claims string `yaml:"claims"`
	// Bucket is the KV bucket for claims "kv"; default "svckit_binding_cron".
	Bucket string `yaml:"bucket"`
	// Missed is what happens to ticks missed while no replica ran: "skip" (default),
	// "once" (run the latest) or "all".
	Missed string `yaml:"missed"`
	// Timeout bounds each handler call; default none.
	Timeout time.Duration `yaml:"timeout"`
}

// WebhookConfig configures a webhook input: signed HTTP requests become events.
type WebhookConfig struct {
	// Path is where the handler is mounted on Deps.Mux, such as /hooks/github. Required.
	Path string `yaml:"path"`
	// Method is the accepted method; default POST.
	Method string `yaml:"method"`
	// Secret is a secret reference (env:VAR, file:/path, secret:NAME or NAME; see
	// docs/bindings.md), never the secret itself. Required unless Unsigned.
	Secret string `yaml:"secret"`
	// Unsigned accepts requests without checking a signature. Only for senders that
	// cannot sign, behind other protection.
	Unsigned bool `yaml:"unsigned"`
	// Signature is the signature scheme.
	Signature Signature `yaml:"signature"`
	// IDHeader, such as X-GitHub-Delivery, gives the event id; default a generated id.
	IDHeader string `yaml:"id_header"`
	// Headers are request headers copied into the event's metadata (lower-case keys).
	// Content-Type always is.
	Headers []string `yaml:"headers"`
	// MaxBody is the largest accepted body in bytes; default 1 MiB.
	MaxBody int64 `yaml:"max_body"`
}

// NATSSubscribeConfig configures a NATS input.
type NATSSubscribeConfig struct {
	// Subject may have wildcards. Required.
	Subject string `yaml:"subject"`
	// Queue is the queue group (the durable consumer group with JetStream): each message
	// goes to one member. Default "SERVICE-NAME" (Deps.Service and the binding name), or
	// the binding name without Deps.Service.
	Queue string `yaml:"queue"`
	// Broadcast subscribes without a queue group: every replica receives every message
	// (with JetStream: an ephemeral consumer that starts with new messages).
	Broadcast bool `yaml:"broadcast"`
	// JetStream consumes from the stream of Deps.Bus with acks and redelivery instead of
	// core NATS.
	JetStream bool `yaml:"jetstream"`
	// MaxAttempts bounds JetStream deliveries before a message is dead-lettered;
	// default 5.
	MaxAttempts int `yaml:"max_attempts"`
	// Backoff is the JetStream redelivery delays after failed attempts; default the
	// pubsub package's.
	Backoff []time.Duration `yaml:"backoff"`
	// AckWait is how long a JetStream delivery may stay unacknowledged before it is
	// redelivered; default 30s.
	AckWait time.Duration `yaml:"ack_wait"`
	// FromNew makes a new JetStream group start with new messages instead of the oldest
	// the stream keeps.
	FromNew bool `yaml:"from_new"`
	// Concurrency is how many handlers run at once; default 8.
	Concurrency int `yaml:"concurrency"`
	// Timeout bounds each handler call; default none.
	Timeout time.Duration `yaml:"timeout"`
}

// HTTPCallConfig configures an HTTP output.
type HTTPCallConfig struct {
	// URL may contain {key} placeholders filled from the request metadata, escaped for
	// their place in the URL. Required.
	URL string `yaml:"url"`
	// Method; default POST.
	Method string `yaml:"method"`
	// Headers are sent with every call; values may contain {key} placeholders.
	Headers map[string]string `yaml:"headers"`
	// ContentType of the body; default application/json.
	ContentType string `yaml:"content_type"`
	// Timeout bounds each call; default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// Secret, a secret reference, makes the output sign each body with Signature.
	Secret string `yaml:"secret"`
	// Signature is the signature scheme used with Secret.
	Signature Signature `yaml:"signature"`
	// MaxResponse is the largest response body read, in bytes; default 1 MiB.
	MaxResponse int64 `yaml:"max_response"`
}

// NATSPublishConfig configures a NATS output.
type NATSPublishConfig struct {
	// Subject may contain {key} placeholders filled from the request metadata; a value
	// must be one subject token. Required.
	Subject string `yaml:"subject"`
	// JetStream publishes through Deps.Bus and waits for the stream's ack; the request
	// metadata "id" is the de-duplication id.
	JetStream bool `yaml:"jetstream"`
	// Request sends a core NATS request and returns the reply.
	Request bool `yaml:"request"`
	// Headers are added to every message; the request metadata is sent as headers too.
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds a publish or request; default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// SQLConfig configures a SQL output.
type SQLConfig struct {
	// DSN opens a store of its own (sqlite:PATH or postgres://…), or names a secret
	// holding the DSN (env:VAR, file:/path, secret:NAME); default Deps.Store.
	DSN string `yaml:"dsn"`
	// Statement has named parameters such as :id; values are bound, never spliced into
	// the SQL. Required.
	Statement string `yaml:"statement"`
	// Params maps a parameter to its source: "json:PATH" (a field of the request's JSON
	// object, dots for nesting; the default, with the parameter's name as PATH),
	// "meta:KEY" (request metadata) or "data" (the whole request data as text).
	Params map[string]string `yaml:"params"`
	// Mode is "exec" (rows affected) or "query" (rows as JSON); default query for
	// statements starting with SELECT or WITH or having RETURNING, exec otherwise.
	Mode string `yaml:"mode"`
	// Timeout bounds each statement; default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// LoadConfig reads a YAML (or JSON) configuration file; see ParseConfig.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("binding: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

var validName = regexp.MustCompile(`^[a-zA-Z0-9][-_a-zA-Z0-9]*$`)

// settings returns the type and settings of s.
func (s *Spec) settings() (string, any, error) {
	var typ string
	var set any
	n := 0
	for _, c := range []struct {
		typ string
		v   any
		nil bool
	}{
		{TypeCron, s.Cron, s.Cron == nil},
		{TypeWebhook, s.Webhook, s.Webhook == nil},
		{TypeNATSSubscribe, s.NATSSubscribe, s.NATSSubscribe == nil},
		{TypeHTTPCall, s.HTTPCall, s.HTTPCall == nil},
		{TypeNATSPublish, s.NATSPublish, s.NATSPublish == nil},
		{TypeSQL, s.SQL, s.SQL == nil},
	} {
		if !c.nil {
			typ, set = c.typ, c.v
			n++
		}
	}
	switch {
	case n == 0 && s.Type == "":
		return "", nil, fieldErr("type", fmt.Errorf("missing; want one of %s", typeList))
	case n == 0:
		if !knownType(s.Type) {
			return "", nil, fieldErr("type", fmt.Errorf("%q is unknown; want one of %s", s.Type, typeList))
		}
		return "", nil, fieldErr("type", fmt.Errorf("no settings for type %s", s.Type))
	case n > 1:
		return "", nil, fieldErr("type", fmt.Errorf("settings for %d types; want one", n))
	case s.Type != "" && s.Type != typ:
		return "", nil, fieldErr("type", fmt.Errorf("%q does not match the %s settings", s.Type, typ))
	}
	return typ, set, nil
}

const typeList = "cron, webhook, nats-subscribe, http-call, nats-publish, sql"

func knownType(t string) bool {
	switch t {
	case TypeCron, TypeWebhook, TypeNATSSubscribe, TypeHTTPCall, TypeNATSPublish, TypeSQL:
		return true
	}
	return false
}

func isInputType(t string) bool {
	return t == TypeCron || t == TypeWebhook || t == TypeNATSSubscribe
}
