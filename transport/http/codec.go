package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"

	"github.com/svckit/svckit/svcerr"
)

// DefaultMaxBodyBytes is the default limit on request bodies: 1 MiB.
const DefaultMaxBodyBytes = 1 << 20

// DecodeFunc reads a typed request from an HTTP request.
type DecodeFunc[Req any] func(r *http.Request) (Req, error)

// EncodeFunc writes a typed response. It must set the status code.
type EncodeFunc[Resp any] func(w http.ResponseWriter, r *http.Request, resp Resp) error

// RequestBinder is implemented by request types that take values from the URL — path
// wildcards and query parameters — after the body has been decoded. The generator emits
// BindRequest methods; hand-written services may write them too.
type RequestBinder interface {
	BindRequest(r *http.Request) error
}

// PathParamer is implemented by request types whose HTTP route has wildcards: the client
// asks it for each wildcard's value when it builds the URL.
type PathParamer interface {
	PathParam(name string) string
}

// QueryEncoder is implemented by request types whose fields travel in the query string
// of GET and DELETE routes: the client asks it for the query when it builds the URL. The
// generator emits URLQuery methods.
type QueryEncoder interface {
	URLQuery() url.Values
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// decodeJSON is the default decoder. An empty body decodes to the zero request (so methods
// without parameters need no body); a non-empty body must be JSON within the size limit.
func decodeJSON[Req any](maxBytes int64, strict bool) DecodeFunc[Req] {
	_, binds := any((*Req)(nil)).(RequestBinder)
	return func(r *http.Request) (Req, error) {
		var req Req
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			buf := bufPool.Get().(*bytes.Buffer)
			buf.Reset()
			defer func() {
				if buf.Cap() <= 64<<10 {
					bufPool.Put(buf)
				}
			}()
			if r.ContentLength > maxBytes {
				return req, tooLarge(maxBytes)
			}
			if err := readBody(r, buf, maxBytes); err != nil {
				return req, err
			}
			if buf.Len() > 0 {
				if err := checkJSONContentType(r.Header.Get("Content-Type")); err != nil {
					return req, err
				}
				if err := unmarshalRequest(buf.Bytes(), &req, strict); err != nil {
					return req, err
				}
			}
		}
		if !binds {
			return req, nil
		}
		if b, ok := any(&req).(RequestBinder); ok {
			if err := b.BindRequest(r); err != nil {
				if svcerr.KindOf(err) == svcerr.Internal {
					return req, svcerr.Wrap(svcerr.InvalidArgument, err.Error(), err)
				}
				return req, err
			}
		}
		return req, nil
	}
}

// bodyError classifies a failed read of the request body: a body that did not arrive
// before the server's read timeout (http.Server.ReadTimeout) is 408, anything else 400.
func bodyError(err error) error {
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return WithStatus(http.StatusRequestTimeout, svcerr.Wrap(svcerr.DeadlineExceeded,
			"the request body did not arrive in time", err))
	}
	return svcerr.Wrap(svcerr.InvalidArgument, "reading request body failed", err)
}

func tooLarge(limit int64) error {
	return WithStatus(http.StatusRequestEntityTooLarge, svcerr.Errorf(svcerr.ResourceExhausted,
		"request body is larger than the limit of %d bytes", limit))
}

func checkJSONContentType(ct string) error {
	mt, _, _ := cutParams(ct)
	if mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return nil
	}
	if ct == "" {
		ct = "none"
	}
	return WithStatus(http.StatusUnsupportedMediaType, svcerr.Errorf(svcerr.InvalidArgument,
		"unsupported content type %q: send application/json", ct))
}

// cutParams returns the lower-cased media type of a Content-Type value.
func cutParams(ct string) (string, string, bool) {
	mt, params, ok := strings.Cut(ct, ";")
	mt = strings.TrimSpace(mt)
	for i := 0; i < len(mt); i++ { // lower-case only when needed: the common case allocates nothing
		if c := mt[i]; 'A' <= c && c <= 'Z' {
			mt = strings.ToLower(mt)
			break
		}
	}
	return mt, params, ok
}

// unmarshalRequest decodes body into v and turns encoding/json's errors into
// InvalidArgument errors that name the offset or the field.
func unmarshalRequest(body []byte, v any, strict bool) error {
	for fixes := 0; ; fixes++ {
		err := decodeRequestJSON(body, v, strict)
		if err == nil {
			return nil
		}
		fixed, ok := unquoteInteger(body, err)
		if !ok {
			return jsonError(err)
		}
		if fixes == maxQuotedIntegers {
			return svcerr.Errorf(svcerr.InvalidArgument,
				"malformed JSON: more than %d integers sent as strings; send them as numbers", maxQuotedIntegers)
		}
		body = fixed
	}
}

// maxQuotedIntegers bounds the integers one request may send as strings: each costs a
// decode of the body again, so a body of many (an array of a million "1") would cost a
// million decodes.
const maxQuotedIntegers = 64

// decodeRequestJSON decodes body into v: strictly (no unknown fields, nothing after the value)
// or as encoding/json does.
func decodeRequestJSON(body []byte, v any, strict bool) error {
	if !strict {
		return json.Unmarshal(body, v)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		return errTrailing
	}
	if err == nil {
		var extra json.RawMessage
		if dec.Decode(&extra) != io.EOF {
			return errTrailing
		}
	}
	return err
}

// unquoteInteger accepts a 64-bit integer sent as a decimal string, as protojson (grpcurl,
// gRPC-gateway, Connect, JavaScript clients keeping precision above 2^53) writes int64
// and uint64: when err says an integer field got a string, and the string is a decimal
// integer, it returns body with that string's quotes removed, to decode again. Each
// retry fixes one field and the fixed body is never longer, so the decode runs at most
// once per such field; any other string stays an error that names its field.
func unquoteInteger(body []byte, err error) ([]byte, bool) {
	var typ *json.UnmarshalTypeError
	if !errors.As(err, &typ) || typ.Value != "string" || typ.Type == nil {
		return nil, false
	}
	switch typ.Type.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
	default:
		return nil, false
	}
	// Offset is just past the string's closing quote.
	end := int(typ.Offset) - 1
	if end < 1 || end >= len(body) || body[end] != '"' {
		return nil, false
	}
	start := bytes.LastIndexByte(body[:end], '"')
	if start < 0 || (start > 0 && body[start-1] == '\\') {
		return nil, false // an escaped quote: the string is not plain digits
	}
	digits := body[start+1 : end]
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 20 || (len(digits) > 1 && digits[0] == '0') {
		return nil, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return nil, false
		}
	}
	fixed := make([]byte, 0, len(body)-2)
	fixed = append(fixed, body[:start]...)
	fixed = append(fixed, body[start+1:end]...)
	return append(fixed, body[end+1:]...), true
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
		desc := fmt.Sprintf("must be %s, got %s", jsonTypeName(typ), typ.Value)
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
	return svcerr.Wrap(svcerr.InvalidArgument, "invalid request body: "+err.Error(), err)
}

func jsonTypeName(e *json.UnmarshalTypeError) string {
	return jsonKind(e.Type.Kind().String())
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

// encodeJSON is the default response encoder: status 200 (or the route's status) and a
// JSON body, compressed with gzip when it is at least GzipMinBytes long and the request's
// Accept-Encoding takes gzip.
// jsonOut is a response buffer with its JSON encoder (HTML escaping off), pooled together.
type jsonOut struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var jsonOutPool = sync.Pool{New: func() any {
	o := new(jsonOut)
	o.enc = json.NewEncoder(&o.buf)
	o.enc.SetEscapeHTML(false)
	return o
}}

// jsonContentType is the Content-Type of JSON responses, shared by all of them: header
// values are replaced, never changed in place, by net/http and by this package.
var jsonContentType = []string{"application/json"}

func encodeJSON[Resp any](status int) EncodeFunc[Resp] {
	return func(w http.ResponseWriter, r *http.Request, resp Resp) error {
		out := jsonOutPool.Get().(*jsonOut)
		buf := &out.buf
		buf.Reset()
		defer func() {
			if buf.Cap() <= 64<<10 {
				jsonOutPool.Put(out)
			}
		}()
		if err := out.enc.Encode(resp); err != nil {
			return svcerr.Wrap(svcerr.Internal, "encoding the response failed", err)
		}
		h := w.Header()
		h["Content-Type"] = jsonContentType
		body, release := gzipBody(h, r, buf.Bytes())
		defer release()
		w.WriteHeader(status)
		_, err := w.Write(body)
		return err
	}
}
