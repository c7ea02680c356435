package grpc_test

import (
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/svckit/svckit/svcerr"
	svcgrpc "github.com/svckit/svckit/transport/grpc"
	"github.com/svckit/svckit/transport/grpc/internal/testpb"
)

// errorInfo returns the ErrorInfo detail of err's status, or nil.
func errorInfo(t *testing.T, err error) *errdetails.ErrorInfo {
	t.Helper()
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

// TestErrorInfoOnTheWire reads the statuses a svckit server sends with plain grpc-go: each
// carries an ErrorInfo whose reason is the kind in UPPER_SNAKE_CASE and whose domain is
// the served protobuf service, as google/rpc/error_details.proto asks.
func TestErrorInfoOnTheWire(t *testing.T) {
	f := newEchoFixture(t, nil)
	reason := regexp.MustCompile(`^[A-Z][A-Z0-9_]+[A-Z0-9]$`)
	for k := svcerr.Unknown; k <= svcerr.DataLoss; k++ {
		t.Run(k.String(), func(t *testing.T) {
			err := f.cc.Invoke(t.Context(), "/"+echoService+"/Echo",
				&testpb.EchoRequest{Text: "kind:" + k.String()}, new(testpb.EchoReply))
			if got := status.Code(err); got != k.GRPCCode() {
				t.Fatalf("code %v, want %v (%v)", got, k.GRPCCode(), err)
			}
			info := errorInfo(t, err)
			if info == nil {
				t.Fatalf("no ErrorInfo in %v", status.Convert(err).Details())
			}
			if info.GetReason() != k.Reason() || !reason.MatchString(info.GetReason()) {
				t.Errorf("reason %q, want %q in UPPER_SNAKE_CASE", info.GetReason(), k.Reason())
			}
			if info.GetDomain() != echoService {
				t.Errorf("domain %q, want the service %q", info.GetDomain(), echoService)
			}
			if !maps.Equal(info.GetMetadata(), kindError(k).Meta) {
				t.Errorf("metadata %v, want %v", info.GetMetadata(), kindError(k).Meta)
			}
		})
	}
}

// TestStatusFromOtherServers calls a server that sends crafted statuses: a svckit client
// trusts the message and metadata of an ErrorInfo from the service it called or from
// ErrorDomain (ToStatus, and servers that sent snake_case reasons), and nothing else's.
func TestStatusFromOtherServers(t *testing.T) {
	withInfo := func(code codes.Code, msg, domain, reason string) *status.Status {
		st, err := status.New(code, msg).WithDetails(&errdetails.ErrorInfo{
			Domain: domain, Reason: reason, Metadata: map[string]string{"retry_after": "2"}})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	tests := []struct {
		name     string
		st       *status.Status
		kind     svcerr.Kind
		msg      string
		trusted  bool
		wantMeta bool
	}{
		{"the called service", withInfo(codes.Unavailable, "store is down", echoService, "UNAVAILABLE"), svcerr.Unavailable, "store is down", true, true},
		{"reason names the kind", withInfo(codes.InvalidArgument, "too far", echoService, "OUT_OF_RANGE"), svcerr.OutOfRange, "too far", true, true},
		{"older svckit server", withInfo(codes.Unavailable, "store is down", svcgrpc.ErrorDomain, "unavailable"), svcerr.Unavailable, "store is down", true, true},
		{"ToStatus", svcgrpc.ToStatus(svcerr.New(svcerr.Unavailable, "store is down").WithMeta("retry_after", "2")), svcerr.Unavailable, "store is down", true, true},
		{"another service", withInfo(codes.Unavailable, "dial tcp 10.0.0.7:81", "other.v1.Service", "UNAVAILABLE"), svcerr.Unavailable, "service unavailable", false, false},
		{"a foreign domain", withInfo(codes.Internal, "pq: relation users", "googleapis.com", "INTERNAL"), svcerr.Internal, "internal error", false, false},
		{"a foreign not found", status.New(codes.NotFound, "no such book"), svcerr.NotFound, "no such book", false, false},
		{"a foreign unimplemented", status.New(codes.Unimplemented, "unknown method Echo for 10.0.0.7"), svcerr.Unimplemented, "not implemented", false, false},
		{"a foreign unauthenticated", status.New(codes.Unauthenticated, "token for svc-a@10.0.0.7 expired"), svcerr.Unauthenticated, "unauthenticated", false, false},
		{"a foreign permission denied", status.New(codes.PermissionDenied, "role svc-a lacks db.write"), svcerr.PermissionDenied, "permission denied", false, false},
		{"a foreign resource exhausted", status.New(codes.ResourceExhausted, "pool db-7 has 0 of 64 free"), svcerr.ResourceExhausted, "resource exhausted", false, false},
		{"a svckit not implemented", withInfo(codes.Unimplemented, "refunds come in v2", echoService, "UNIMPLEMENTED"), svcerr.Unimplemented, "refunds come in v2", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := grpcgo.NewServer(grpcgo.UnknownServiceHandler(func(any, grpcgo.ServerStream) error {
				return tt.st.Err()
			}))
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go func() { _ = g.Serve(lis) }()
			t.Cleanup(g.Stop)
			e := echoError(t, lis.Addr().String())
			if e.Kind != tt.kind || e.Message != tt.msg {
				t.Errorf("got %v %q, want %v %q", e.Kind, e.Message, tt.kind, tt.msg)
			}
			if got := e.Meta["retry_after"] == "2"; got != tt.wantMeta {
				t.Errorf("metadata %v, trusted: %v", e.Meta, tt.trusted)
			}
		})
	}
}

// TestStatusFromPlainHTTP calls an address where a plain HTTP/2 server answers instead of
// a gRPC one (a proxy's error page, a port reused by another service): gRPC's client turns
// its status code into a gRPC code and quotes the body; a svckit client keeps the kind and
// drops the text.
func TestStatusFromPlainHTTP(t *testing.T) {
	const body = `{"detail":"no route for POST /echo.v1.Echo/Echo on 10.0.0.7:8081"}`
	tests := []struct {
		status int
		kind   svcerr.Kind
		msg    string
	}{
		{http.StatusUnauthorized, svcerr.Unauthenticated, "unauthenticated"},
		{http.StatusForbidden, svcerr.PermissionDenied, "permission denied"},
		{http.StatusNotFound, svcerr.Unimplemented, "not implemented"},
		{http.StatusTooManyRequests, svcerr.Unavailable, "service unavailable"},
		{http.StatusBadRequest, svcerr.Internal, "internal error"},
		{http.StatusTeapot, svcerr.Unknown, "internal error"},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, body)
			})}
			srv.Protocols = new(http.Protocols)
			srv.Protocols.SetUnencryptedHTTP2(true)
			go func() { _ = srv.Serve(lis) }()
			t.Cleanup(func() { _ = srv.Close() })
			e := echoError(t, lis.Addr().String())
			if e.Kind != tt.kind || e.Message != tt.msg {
				t.Errorf("got %v %q, want %v %q", e.Kind, e.Message, tt.kind, tt.msg)
			}
			if !strings.Contains(status.Convert(e.Cause).Message(), "10.0.0.7") {
				t.Errorf("the cause lost the detail for the logs: %v", e.Cause)
			}
		})
	}
}

// echoError calls Echo on the server at addr through a svckit client and returns the
// *svcerr.Error the call fails with.
func echoError(t *testing.T, addr string) *svcerr.Error {
	t.Helper()
	cc, err := grpcgo.NewClient(addr, grpcgo.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	echo := svcgrpc.UnaryCall(svcgrpc.NewClient(cc, echoService), "Echo", encEchoRequest, decEchoReply)
	_, err = echo(t.Context(), msg{Text: "x"})
	var e *svcerr.Error
	if !errors.As(err, &e) {
		t.Fatalf("got %T %v", err, err)
	}
	return e
}
