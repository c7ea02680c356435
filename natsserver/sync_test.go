package natsserver_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/svckit/svckit/natsserver"
)

// TestWithSync starts servers with each sync policy and checks what JetStream runs with.
func TestWithSync(t *testing.T) {
	tests := []struct {
		name         string
		opts         []natsserver.Option
		wantInterval time.Duration
		wantAlways   bool
		wantErr      string
	}{
		{name: "default", wantInterval: natsserver.DefaultSyncInterval},
		{name: "interval", opts: []natsserver.Option{natsserver.WithSync(time.Second)}, wantInterval: time.Second},
		{name: "always", opts: []natsserver.Option{natsserver.WithSync(natsserver.SyncAlways)}, wantInterval: natsserver.DefaultSyncInterval, wantAlways: true},
		{name: "negative", opts: []natsserver.Option{natsserver.WithSync(-time.Second)}, wantErr: "must be positive or SyncAlways"},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := natsserver.Start(ctx, t.TempDir(), append(tc.opts, natsserver.WithoutListener())...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Start: %v, want an error containing %q", err, tc.wantErr)
				}
				if srv != nil {
					srv.Shutdown(ctx)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Shutdown(ctx)
			js := srv.Server().JetStreamConfig()
			if js == nil {
				t.Fatal("JetStream is off")
			}
			if js.SyncInterval != tc.wantInterval || js.SyncAlways != tc.wantAlways {
				t.Errorf("sync interval %v, always %v; want %v, %v", js.SyncInterval, js.SyncAlways, tc.wantInterval, tc.wantAlways)
			}
		})
	}
}

// TestParseSync checks the sync policies ParseSync takes.
func TestParseSync(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, true},
		{"default", 0, true},
		{"always", natsserver.SyncAlways, true},
		{"1s", time.Second, true},
		{"250ms", 250 * time.Millisecond, true},
		{"0s", 0, false},
		{"-1s", 0, false},
		{"sometimes", 0, false},
	}
	for _, tc := range tests {
		got, err := natsserver.ParseSync(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSync(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
