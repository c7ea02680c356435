package outbox

import (
	"maps"
	"testing"
	"time"

	"github.com/svckit/svckit/pubsub"
)

func TestHeadersRoundTrip(t *testing.T) {
	tests := []map[string]string{
		{},
		{"a": ""},
		{"ce-type": "order.created", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		{"k:with:colons": "v:1:2", "ünï": "çødé", "12": "34:"},
	}
	for _, h := range tests {
		got, err := decodeHeaders(encodeHeaders(h))
		if err != nil || !maps.Equal(got, h) {
			t.Errorf("round trip of %v = %v, %v", h, got, err)
		}
	}
	for _, bad := range []string{"x", "3:ab", "1:a", "-1:a1:b", "1:a9:b"} {
		if _, err := decodeHeaders(bad); err == nil {
			t.Errorf("decodeHeaders(%q) accepted", bad)
		}
	}
}

func TestDecode(t *testing.T) {
	created := time.Date(2026, 12, 6, 9, 0, 0, 123456789, time.UTC)
	explicit := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	tests := []struct {
		name    string
		headers string
		want    pubsub.Message
	}{
		{"no headers: the time is created_at", "",
			pubsub.Message{Time: created}},
		{"ce-time wins over created_at", encodeHeaders(map[string]string{hTime: explicit.Format(time.RFC3339Nano)}),
			pubsub.Message{Time: explicit}},
		{"attributes and headers", string(appendHeader(appendHeader(appendHeader(nil, "traceparent", "00-a-b-01"), hType, "t"), hSource, "s")),
			pubsub.Message{Type: "t", Source: "s", Time: created, Headers: map[string]string{"traceparent": "00-a-b-01"}}},
		{"the last of the same key wins", string(appendHeader(appendHeader(nil, hContentType, "a"), hContentType, "b")),
			pubsub.Message{ContentType: "b", Time: created}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := decode("id", "events.x", "k", []byte("d"), tc.headers, created.UnixNano())
			if err != nil {
				t.Fatal(err)
			}
			if m.Type != tc.want.Type || m.Source != tc.want.Source || m.ContentType != tc.want.ContentType ||
				!m.Time.Equal(tc.want.Time) || !maps.Equal(m.Headers, tc.want.Headers) || m.ID != "id" || m.Key != "k" {
				t.Fatalf("decode = %+v, want %+v", m, tc.want)
			}
		})
	}
	if _, err := decode("id", "events.x", "", nil, "3:ab", 0); err == nil {
		t.Fatal("malformed headers accepted")
	}
}
