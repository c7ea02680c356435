package pubsub

import (
	"hash/fnv"
	"maps"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestFNV32a(t *testing.T) {
	for _, key := range []string{"", "a", "order-42", "ключ", "a much longer key with spaces and digits 0123456789"} {
		h := fnv.New32a()
		h.Write([]byte(key))
		if got, want := fnv32a(key), h.Sum32(); got != want {
			t.Errorf("fnv32a(%q) = %d, hash/fnv says %d", key, got, want)
		}
	}
}

// A fast batch encodes its messages through one reused nats.Msg: each must carry exactly
// the headers and subject that the one-message path gives it.
func TestWireEncoderMatchesEncodeHeaders(t *testing.T) {
	b := &Bus{cfg: Config{Partitions: 8}}
	at := time.Date(2026, 12, 6, 18, 0, 0, 123456789, time.UTC)
	msgs := []*Message{
		{ID: "1", Subject: "events.a", Source: "s", Time: at, Key: "k1", Data: []byte("x")},
		{ID: "2", Subject: "events.a", Source: "s", Time: at, Data: []byte("y"), Type: "t", ContentType: "text/plain"},
		{ID: "3", Subject: "events.b", Source: "s", Time: at, Key: "k1", Headers: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "x-a": "1"}},
		{ID: "4", Subject: "events.a", Source: "s", Time: at, Key: "k2"},
		{ID: "5", Subject: "events.a", Source: "s", Time: at, Key: "k1"},
	}
	w := newWireEncoder(b)
	for _, m := range msgs {
		nm := w.msg(t.Context(), m)
		want := encodeHeaders(m)
		got := make(nats.Header, len(nm.Header))
		for k, v := range nm.Header {
			got[k] = append([]string(nil), v...)
		}
		if !maps.EqualFunc(got, want, func(a, b []string) bool { return len(a) == 1 && len(b) == 1 && a[0] == b[0] }) {
			t.Errorf("message %s: headers %v, want %v", m.ID, got, want)
		}
		if ws := b.wireSubject(m); nm.Subject != ws {
			t.Errorf("message %s: subject %q, want %q", m.ID, nm.Subject, ws)
		}
		if string(nm.Data) != string(m.Data) {
			t.Errorf("message %s: data %q", m.ID, nm.Data)
		}
	}
}
