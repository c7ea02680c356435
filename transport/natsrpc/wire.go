package natsrpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"

	"github.com/svckit/svckit/svcerr"
	"github.com/svckit/svckit/transport/meta"
)

// DefaultPrefix is the first token of the subjects methods are served on: "svc.S.M".
const DefaultPrefix = "svc"

// TimeoutHeader carries the caller's remaining deadline in whole milliseconds, as in
// "X-Request-Timeout: 1500", the same header transport/http uses. Values that are not 1
// to 10 decimal digits are ignored. It can only shorten a call: the server's own timeout
// middleware still applies when it is earlier.
const TimeoutHeader = "X-Request-Timeout"

// Headers of the NATS micro protocol that mark a reply as an error.
const (
	// ErrorCodeHeader holds the HTTP status code of the error's kind, as "404".
	ErrorCodeHeader = "Nats-Service-Error-Code"
	// ErrorHeader holds the error's caller-safe message.
	ErrorHeader = "Nats-Service-Error"
)

// DefaultMaxBodyBytes is the default limit on request bodies: 1 MiB, the default
// max_payload of a NATS server.
const DefaultMaxBodyBytes = 1 << 20

// maxReplyBytes bounds how much of a reply the client decodes.
const maxReplyBytes = 16 << 20

// ErrorBody is the JSON body of an error reply: svckit's error model on the wire.
type ErrorBody struct {
	Kind      string                  `json:"kind"`
	Message   string                  `json:"message,omitempty"`
	Errors    []svcerr.FieldViolation `json:"errors,omitempty"`
	Meta      map[string]string       `json:"meta,omitempty"`
	RequestID string                  `json:"request_id,omitempty"`
}

// Subject returns the subject method of service is served on with the default prefix:
// "svc.<service>.<method>".
func Subject(service, method string) string {
	return DefaultPrefix + "." + service + "." + method
}

// checkSubject reports whether s is a literal NATS subject: dot-separated non-empty
// tokens, no wildcards, no whitespace or control characters.
func checkSubject(s string) error {
	if s == "" {
		return errors.New("empty subject")
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" {
			return fmt.Errorf("subject %q has an empty token", s)
		}
		if tok == "*" || tok == ">" {
			return fmt.Errorf("subject %q has a wildcard", s)
		}
		for _, c := range tok {
			if c <= ' ' || c == 0x7f {
				return fmt.Errorf("subject %q has whitespace or a control character", s)
			}
		}
	}
	return nil
}

// checkName reports whether s may be a method name: one subject token.
func checkName(what, s string) error {
	if s == "" || strings.Contains(s, ".") {
		return fmt.Errorf("%s %q must be one non-empty subject token", what, s)
	}
	return checkSubject(s)
}

// parseTimeout parses the values of a TimeoutHeader: one value of 1 to 10 decimal digits,
// in milliseconds.
func parseTimeout(v []string) (time.Duration, bool) {
	if len(v) != 1 || len(v[0]) == 0 || len(v[0]) > 10 {
		return 0, false
	}
	ms, err := strconv.ParseUint(v[0], 10, 64)
	if err != nil || ms == 0 {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}

// formatTimeout formats the time left as whole milliseconds, rounded up.
func formatTimeout(left time.Duration) string {
	ms := (left + time.Millisecond - 1) / time.Millisecond
	return strconv.FormatInt(int64(ms), 10)
}

// headerGet returns the first value of key in h: the exact key, else the first key that
// matches it case-insensitively (NATS headers are case-sensitive, HTTP's are not, and
// callers in other languages spell them either way).
func headerGet(h nats.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	for k, v := range h {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}

// carrier is a NATS header as a propagation.TextMapCarrier. Keys are written as given
// (lowercase for W3C trace context) and read case-insensitively.
type carrier nats.Header

var _ propagation.TextMapCarrier = carrier(nil)

func (c carrier) Get(key string) string { return headerGet(nats.Header(c), key) }
func (c carrier) Set(key, value string) { c[key] = []string{value} }
func (c carrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// defaultPropagator returns the propagator servers and clients use unless told otherwise:
// W3C trace context and baggage, the same as observe.Propagator.
func defaultPropagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// errorReply returns the reply message for err.
func errorReply(err error, requestID string) *nats.Msg {
	e := svcerr.From(err)
	msg := e.Message
	if e.Kind == svcerr.Internal || e.Kind == svcerr.Unknown {
		if msg == "" {
			msg = "internal error"
		}
	}
	body, mErr := json.Marshal(ErrorBody{Kind: e.Kind.String(), Message: msg, Errors: e.Fields, Meta: e.Meta, RequestID: requestID})
	status := e.Kind.HTTPStatus()
	if mErr != nil { // cannot happen for these field types; keep the reply well-formed anyway
		body, status, msg = []byte(`{"kind":"internal","message":"internal error"}`), http.StatusInternalServerError, "internal error"
	}
	h := nats.Header{
		ErrorCodeHeader: {strconv.Itoa(status)},
		ErrorHeader:     {headerSafe(msg)},
		"Content-Type":  {"application/json"},
	}
	if requestID != "" {
		h["X-Request-Id"] = []string{requestID}
	}
	return &nats.Msg{Header: h, Data: body}
}

// headerSafe returns s without the characters a header value cannot hold (CR, LF and
// other control characters), cut to 512 bytes.
func headerSafe(s string) string {
	if len(s) > 512 {
		s = s[:512]
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// errorFromReply returns the error a reply carries, or nil for a successful reply. A
// reply with svckit's error body becomes the *svcerr.Error the server returned; an
// error reply from something else (a NATS micro service in another language) becomes
// the kind of its status code with a generic message, its own text kept in the cause.
// The error's RequestID is the body's request_id, the reply's X-Request-Id, or sentID,
// the first that is a valid id.
func errorFromReply(m *nats.Msg, sentID string) error {
	code := headerGet(m.Header, ErrorCodeHeader)
	if code == "" {
		return nil
	}
	var b ErrorBody
	if len(m.Data) <= 64<<10 && json.Unmarshal(m.Data, &b) == nil && b.Kind != "" {
		k, ok := svcerr.ParseKind(b.Kind)
		if !ok {
			k = kindFromCode(code)
		}
		return &svcerr.Error{Kind: k, Message: b.Message, Fields: b.Errors, Meta: b.Meta,
			RequestID: meta.FirstValidRequestID(b.RequestID, headerGet(m.Header, meta.RequestIDHeader), sentID)}
	}
	k := kindFromCode(code)
	e := &svcerr.Error{Kind: k, Message: genericMessage(k), RequestID: meta.FirstValidRequestID(headerGet(m.Header, meta.RequestIDHeader), sentID)}
	if desc := headerGet(m.Header, ErrorHeader); desc != "" {
		if len(desc) > 200 {
			desc = desc[:200]
		}
		e.Cause = fmt.Errorf("error reply %s: %s", code, desc)
	}
	return e
}

func kindFromCode(code string) svcerr.Kind {
	n, err := strconv.Atoi(code)
	if err != nil || n < 100 || n > 599 {
		return svcerr.Internal
	}
	return svcerr.KindFromHTTP(n)
}

func genericMessage(k svcerr.Kind) string {
	switch k {
	case svcerr.Unavailable:
		return "service unavailable"
	case svcerr.DeadlineExceeded:
		return "deadline exceeded"
	case svcerr.Internal, svcerr.Unknown, svcerr.DataLoss:
		return "internal error"
	}
	return strings.ReplaceAll(k.String(), "_", " ")
}

// decodeJSON decodes a request body: an empty body is the zero request, anything else
// must be JSON of the request type within maxBytes.
func decodeJSON[Req any](maxBytes int64, strict bool) DecodeFunc[Req] {
	return func(m *nats.Msg) (Req, error) {
		var req Req
		if int64(len(m.Data)) > maxBytes {
			return req, tooLarge(maxBytes)
		}
		if len(m.Data) == 0 {
			return req, nil
		}
		return req, unmarshalRequest(m.Data, &req, strict)
	}
}

func tooLarge(limit int64) error {
	return svcerr.Errorf(svcerr.ResourceExhausted, "request body is larger than the limit of %d bytes", limit)
}

// encodeJSON is the default response encoder.
func encodeJSON[Resp any](resp Resp) ([]byte, error) {
	b, err := json.Marshal(resp)
	if err != nil {
		return nil, svcerr.Wrap(svcerr.Internal, "encoding the response failed", err)
	}
	return b, nil
}

// unmarshalRequest decodes body into v and turns encoding/json's errors into
// InvalidArgument errors that name the offset or the field.
func unmarshalRequest(body []byte, v any, strict bool) error {
	var err error
	if strict {
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err = dec.Decode(v); err == nil {
			var extra json.RawMessage
			if dec.Decode(&extra) != io.EOF {
				err = errTrailing
			}
		}
	} else {
		err = json.Unmarshal(body, v)
	}
	if err == nil {
		return nil
	}
	return jsonError(err)
}

var errTrailing = errors.New("unexpected data after the JSON value")

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return svcerr.Wrap(svcerr.InvalidArgument,
				fmt.Sprintf("request body must be %s, got %s", jsonKind(typ.Type.Kind().String()), typ.Value), err)
		}
		desc := fmt.Sprintf("must be %s, got %s", jsonKind(typ.Type.Kind().String()), typ.Value)
		return &svcerr.Error{Kind: svcerr.InvalidArgument, Message: "field " + field + ": " + desc,
			Fields: []svcerr.FieldViolation{{Field: field, Description: desc}}, Cause: err}
	case errors.As(err, &syn):
		return svcerr.Wrap(svcerr.InvalidArgument,
			fmt.Sprintf("malformed JSON at byte %d: %s", syn.Offset, syn.Error()), err)
	case errors.Is(err, errTrailing):
		return svcerr.Wrap(svcerr.InvalidArgument, "malformed JSON: "+err.Error(), err)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return svcerr.Wrap(svcerr.InvalidArgument, "malformed JSON: unexpected end of input", err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &svcerr.Error{Kind: svcerr.InvalidArgument, Message: "unknown field " + field,
			Fields: []svcerr.FieldViolation{{Field: field, Description: "unknown field"}}, Cause: err}
	}
	return svcerr.Wrap(svcerr.InvalidArgument, "invalid request body", err)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return "a " + goKind
}
