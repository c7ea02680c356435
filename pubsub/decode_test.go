package pubsub

import (
	"maps"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestDecodeMessage(t *testing.T) {
	at := time.Date(2026, 12, 6, 20, 0, 0, 123, time.UTC)
	tests := []struct {
		name string
		h    nats.Header
		want Message
	}{{
		name: "as publishers write them",
		h: nats.Header{nats.MsgIdHdr: {"id1"}, HeaderID: {"id1"}, HeaderSource: {"orders"}, HeaderType: {"placed"},
			HeaderSpecVersion: {"1.0"}, HeaderTime: {at.Format(time.RFC3339Nano)}, HeaderContentType: {"application/json"},
			HeaderKey: {"k1"}, "traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
		want: Message{ID: "id1", Source: "orders", Type: "placed", Time: at, ContentType: "application/json", Key: "k1",
			Headers: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
	}, {
		name: "names in other cases",
		h: nats.Header{"NATS-MSG-ID": {"id2"}, "Ce-Id": {"id2"}, "CE-SOURCE": {"orders"}, "Ce-Type": {"placed"},
			"Ce-Specversion": {"1.0"}, "Content-Type": {"text/plain"}, "Svckit-Key": {"k2"}, "X-Extra": {"v"}},
		want: Message{ID: "id2", Source: "orders", Type: "placed", ContentType: "text/plain", Key: "k2",
			Headers: map[string]string{"X-Extra": "v"}},
	}, {
		name: "id only in Nats-Msg-Id",
		h:    nats.Header{nats.MsgIdHdr: {"id3"}, "": {}},
		want: Message{ID: "id3"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decodeMessage("events.x._k.3", tt.h, []byte("{}"))
			if got.Subject != "events.x" || string(got.Data) != "{}" {
				t.Errorf("subject %q data %q; want events.x {}", got.Subject, got.Data)
			}
			if got.ID != tt.want.ID || got.Source != tt.want.Source || got.Type != tt.want.Type || !got.Time.Equal(tt.want.Time) ||
				got.ContentType != tt.want.ContentType || got.Key != tt.want.Key || !maps.Equal(got.Headers, tt.want.Headers) {
				t.Errorf("decoded %+v; want %+v", *got, tt.want)
			}
		})
	}
}

func TestAckMetadata(t *testing.T) {
	tests := []struct {
		reply          string
		delivered, seq uint64
		ok             bool
	}{
		{"$JS.ACK.EVENTS.g_1.3.1234.17.1733500000000000000.5", 3, 1234, true},
		{"$JS.ACK._.ACCHASH.EVENTS.g_1.1.99.2.1733500000000000000.0.rnd", 1, 99, true},
		{"$JS.ACK.dom.ACCHASH.EVENTS.g_1.2.7.2.1733500000000000000.0", 2, 7, true},
		{"$JS.ACK.EVENTS.g_1.x.1234.17.1.5", 0, 0, false},
		{"$JS.ACK.EVENTS.g_1.3", 0, 0, false},
		{"$JS.ACK.a.b.c.d.e.f.g.h.i.j", 0, 0, false},
		{"_INBOX.abc", 0, 0, false},
		{"", 0, 0, false},
		{"$JS.ACK.EVENTS.g_1.3.12345678901234567890.17.1.5", 0, 0, false},
	}
	for _, tt := range tests {
		d, s, ok := ackMetadata(tt.reply)
		if d != tt.delivered || s != tt.seq || ok != tt.ok {
			t.Errorf("ackMetadata(%q) = %d, %d, %v; want %d, %d, %v", tt.reply, d, s, ok, tt.delivered, tt.seq, tt.ok)
		}
	}
}
