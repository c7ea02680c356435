package outbox

import (
	"maps"
	"testing"
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
