package grpc_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/svckit/svckit/internal/testnet"
	"github.com/svckit/svckit/svcerr"
	svcgrpc "github.com/svckit/svckit/transport/grpc"
	shttp "github.com/svckit/svckit/transport/http"
)

// connErr is a connection that fails every call with err, as a pool or balancer in front
// of the real connections does when it has none to offer.
type connErr struct{ err error }

func (c connErr) Invoke(context.Context, string, any, any, ...grpcgo.CallOption) error { return c.err }
func (c connErr) NewStream(context.Context, *grpcgo.StreamDesc, string, ...grpcgo.CallOption) (grpcgo.ClientStream, error) {
	return nil, c.err
}

// deadAddr returns a loopback address nobody listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	return testnet.Reserve(t).Addr()
}

// notGRPC returns the address of a server that answers every connection with an HTTP/1
// error and hangs up.
func notGRPC(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nServer: internal-proxy 10.1.2.3\r\n\r\n")
			_ = c.Close()
		}
	}()
	return ln.Addr().String()
}

func dial(t *testing.T, addr string, creds credentials.TransportCredentials) grpcgo.ClientConnInterface {
	t.Helper()
	cc, err := grpcgo.NewClient(addr, grpcgo.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// TestTransportErrorsStayInternal serves an HTTP endpoint that calls a gRPC service which
// cannot be reached in various ways. The public response says the service is unavailable
// and carries the request id; no address, dial, TLS or gRPC transport text reaches it.
// The error the endpoint got keeps the detail, for the logs.
func TestTransportErrorsStayInternal(t *testing.T) {
	live := newEchoFixture(t, nil)
	tests := []struct {
		name       string
		cc         func(t *testing.T) grpcgo.ClientConnInterface
		text       string // the call's text: "kind:unavailable" makes the live server fail
		status     int
		detail     string
		logsDetail string // in the endpoint's error, for the log
	}{
		{"dead address", func(t *testing.T) grpcgo.ClientConnInterface {
			return dial(t, deadAddr(t), insecure.NewCredentials())
		}, "hi", 503, "service unavailable", "connection refused"},
		{"not a gRPC server", func(t *testing.T) grpcgo.ClientConnInterface {
			return dial(t, notGRPC(t), insecure.NewCredentials())
		}, "hi", 503, "service unavailable", "code = Unavailable"},
		{"TLS to a plaintext server", func(t *testing.T) grpcgo.ClientConnInterface {
			return dial(t, live.cc.Target(), credentials.NewTLS(&tls.Config{ServerName: "catalog"}))
		}, "hi", 503, "service unavailable", "tls"},
		{"no connection in the pool", func(*testing.T) grpcgo.ClientConnInterface {
			return connErr{svcerr.Wrap(svcerr.Unavailable, "no connection to 127.0.0.1:4711",
				errors.New("dial tcp 127.0.0.1:4711: connect: connection refused"))}
		}, "hi", 503, "service unavailable", "no connection to 127.0.0.1:4711"},
		{"internal error of the connection", func(*testing.T) grpcgo.ClientConnInterface {
			return connErr{errors.New("read tcp 127.0.0.1:40720->127.0.0.1:8081: read: connection reset by peer")}
		}, "hi", 500, "internal error", "read tcp 127.0.0.1:40720"},
		// A svckit server's own error is its author's message, and passes unchanged.
		{"svckit server's unavailable", func(*testing.T) grpcgo.ClientConnInterface {
			return live.cc
		}, "kind:unavailable", 503, "message for unavailable", "message for unavailable"},
	}
	forbidden := []string{"127.0.0.1", "10.1.2.3", "dial tcp", "connection refused", "tls:", "rpc error", "transport", "desc =", "read tcp"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			echo := svcgrpc.UnaryCall(svcgrpc.NewClient(tt.cc(t), echoService), "Echo", encEchoRequest, decEchoReply)
			var callErr error
			srv := shttp.NewServer("front")
			shttp.Handle(srv, "GET /echo", "Echo", func(ctx context.Context, _ struct{}) (msg, error) {
				m, err := echo(ctx, msg{Text: tt.text})
				callErr = err
				return m, err
			})
			hs := httptest.NewServer(srv)
			defer hs.Close()
			resp, err := http.Get(hs.URL + "/echo")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var p shttp.Problem
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
			if resp.StatusCode != tt.status || p.Detail != tt.detail || p.RequestID == "" {
				t.Errorf("%d %s, want %d with detail %q and a request id", resp.StatusCode, body, tt.status, tt.detail)
			}
			for _, f := range forbidden {
				if strings.Contains(string(body), f) {
					t.Errorf("the response carries %q: %s", f, body)
				}
			}
			if callErr == nil || !strings.Contains(callErr.Error(), tt.logsDetail) {
				t.Errorf("the endpoint's error %q lost %q, which the log needs", callErr, tt.logsDetail)
			}
		})
	}
}
