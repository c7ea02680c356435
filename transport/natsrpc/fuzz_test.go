package natsrpc

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/svckit/svckit/svcerr"
)

type fuzzReq struct {
	A int      `json:"a"`
	B []string `json:"b"`
	C *struct {
		D float64 `json:"d"`
	} `json:"c"`
}

// FuzzServeRequest sends arbitrary bodies and timeout and request id headers through a
// method's handler and checks the contract: never a panic, and every reply is either the
// JSON response or an error reply whose body is svckit's error model with kind
// invalid_argument or resource_exhausted.
func FuzzServeRequest(f *testing.F) {
	f.Add(`{"a":1,"b":["x"]}`, "1500", "rid-1")
	f.Add(`{"a":"x"}`, "0", "")
	f.Add(`{"a":1e400}`, "99999999999", "bad id with spaces")
	f.Add(`[`, "-5", "\r\n")
	f.Add(`null`, "", "")
	f.Add(`{"c":{"d":"no"}}`, "12", "a")
	f.Add("\xff\xfe", "1", "x")
	f.Add(`{"b":[1,2]}`, "abc", "x")
	f.Add(`{"a":1} trailing`, "5", "x")
	s := NewServer("fuzz", WithMaxBodyBytes(4096), WithStrictFields())
	Handle(s, "Do", func(_ context.Context, r fuzzReq) (int, error) { return r.A + len(r.B), nil })
	m := s.methods[0]
	sv := &Serving{s: s}
	f.Fuzz(func(t *testing.T, body, timeout, rid string) {
		msg := &nats.Msg{Subject: "svc.fuzz.Do", Reply: "_INBOX.x", Data: []byte(body),
			Header: nats.Header{TimeoutHeader: {timeout}, "X-Request-Id": {rid}}}
		reply := sv.call(context.Background(), m, msg, "rid")
		if reply.Header.Get(ErrorCodeHeader) == "" {
			var n int
			if err := json.Unmarshal(reply.Data, &n); err != nil {
				t.Fatalf("success reply that is not the response: %q", reply.Data)
			}
			return
		}
		err := errorFromReply(reply, "")
		var e *svcerr.Error
		if !errors.As(err, &e) || (e.Kind != svcerr.InvalidArgument && e.Kind != svcerr.ResourceExhausted) || e.Message == "" {
			t.Fatalf("body %q: bad error reply %q %v", body, reply.Data, reply.Header)
		}
	})
}

// FuzzErrorFromReply feeds arbitrary error replies to the client's decoder: never a
// panic, and an error reply always becomes an *svcerr.Error with a message.
func FuzzErrorFromReply(f *testing.F) {
	f.Add("404", `{"kind":"not_found","message":"no such user","meta":{"a":"b"}}`)
	f.Add("400", `{"kind":"invalid_argument","errors":[{"field":"x","description":"y"}]}`)
	f.Add("503", `not json`)
	f.Add("abc", `{"kind":"weird"}`)
	f.Add("9999999999999999999", `{"kind":""}`)
	f.Add("", `{}`)
	f.Fuzz(func(t *testing.T, code, body string) {
		m := &nats.Msg{Header: nats.Header{ErrorCodeHeader: {code}, ErrorHeader: {"desc"}}, Data: []byte(body)}
		err := errorFromReply(m, "")
		if code == "" {
			if err != nil {
				t.Fatalf("reply without an error code is an error: %v", err)
			}
			return
		}
		var e *svcerr.Error
		if !errors.As(err, &e) || e.Kind == svcerr.Unknown && e.Message == "" {
			t.Fatalf("code %q body %q: %v", code, body, err)
		}
	})
}
