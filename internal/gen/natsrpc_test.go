package gen

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/examples/addsvc/addsvc"
	"github.com/svckit/svckit/internal/gen/testdata/golden/ledger"
	"github.com/svckit/svckit/internal/gen/testdata/golden/shapes"
	"github.com/svckit/svckit/internal/gen/testdata/shared"
	"github.com/svckit/svckit/natsserver"
	"github.com/svckit/svckit/svcerr"
	"github.com/svckit/svckit/transport/natsrpc"
)

// TestNATSModel checks what the parser makes of //svckit:nats and which methods the
// generated code serves over NATS, on which subject, and whether they are idempotent.
func TestNATSModel(t *testing.T) {
	pkg, err := Load(filepath.Join("testdata", "golden", "ledger"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := pkg.Services[0]
	for _, tc := range []struct {
		method     string
		directive  string
		served     bool
		subject    string
		idempotent bool
	}{
		{"Balance", "", true, "svc.ledger.Ledger.Balance", true}, // GET route
		{"Credit", "ledger.credit", true, "ledger.credit", true},
		{"Audit", "-", false, "", false},
		{"Watch", "", false, "", false}, // streams
		{"Reset", "", true, "svc.ledger.Ledger.Reset", false},
	} {
		t.Run(tc.method, func(t *testing.T) {
			i := slices.IndexFunc(s.Methods, func(m *Method) bool { return m.Name == tc.method })
			if i < 0 {
				t.Fatalf("no method %s", tc.method)
			}
			m := s.Methods[i]
			if m.NATS != tc.directive || natsServed(m) != tc.served {
				t.Fatalf("NATS %q, served %v; want %q, %v", m.NATS, natsServed(m), tc.directive, tc.served)
			}
			if !tc.served {
				return
			}
			if got := natsSubject(m); got != tc.subject {
				t.Errorf("subject %s, want %s", got, tc.subject)
			}
			if got := natsIdempotent(m); got != tc.idempotent {
				t.Errorf("idempotent %v, want %v", got, tc.idempotent)
			}
		})
	}
}

// TestNATSSubjectProblem mirrors transport/natsrpc's subject check: what the generator
// accepts, Handle and Call accept.
func TestNATSSubjectProblem(t *testing.T) {
	for _, tc := range []struct {
		subject string
		ok      bool
	}{
		{"orders.place", true},
		{"a", true},
		{"svc.shop-v1.Orders.Place_2", true},
		{"a.b>c.d", true}, // a wildcard only as a whole token
		{"", false},
		{"a..b", false},
		{".a", false},
		{"a.", false},
		{"a.*.b", false},
		{"a.>", false},
		{"a b", false},
		{"a\tb", false},
		{"a\x7fb", false},
	} {
		t.Run(fmt.Sprintf("%q", tc.subject), func(t *testing.T) {
			problem := natsSubjectProblem(tc.subject)
			if (problem == "") != tc.ok {
				t.Fatalf("natsSubjectProblem(%q) = %q, want ok %v", tc.subject, problem, tc.ok)
			}
			if tc.subject == "" {
				return // natsrpc.WithSubject("") means the default subject: nothing to compare
			}
			// natsrpc panics on a subject it refuses; it must agree.
			refused := func() (refused bool) {
				defer func() { refused = recover() != nil }()
				natsrpc.Handle(natsrpc.NewServer("x"), "M", func(context.Context, struct{}) (struct{}, error) {
					return struct{}{}, nil
				}, natsrpc.WithSubject(tc.subject))
				return false
			}()
			if refused == tc.ok {
				t.Errorf("natsrpc.Handle refused %q: %v, the generator ok: %v", tc.subject, refused, tc.ok)
			}
		})
	}
}

// startNATS starts the embedded NATS server and returns a connection to it.
func startNATS(t *testing.T) (*natsserver.Server, func() *nats.Conn) {
	t.Helper()
	ns, err := natsserver.Start(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Shutdown(context.Background()) })
	return ns, func() *nats.Conn {
		t.Helper()
		nc, err := nats.Connect(ns.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
}

// serveNATS subscribes s on nc until the test ends.
func serveNATS(t *testing.T, s *natsrpc.Server, nc *nats.Conn) {
	t.Helper()
	sv, err := s.Subscribe(nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sv.Drain(ctx)
	})
}

// memLedger is a Ledger in memory.
type memLedger struct {
	mu       sync.Mutex
	balances map[string]int64
	resets   int
}

func (l *memLedger) Balance(_ context.Context, account string) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.balances[account]
	if !ok {
		return 0, svcerr.Errorf(svcerr.NotFound, "no account %s", account).WithMeta("account", account)
	}
	return b, nil
}

func (l *memLedger) Credit(_ context.Context, e ledger.Entry) (*ledger.Account, error) {
	if e.Amount <= 0 {
		return nil, svcerr.Invalid("amount", "must be positive")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.balances[e.Account] += e.Amount
	return &ledger.Account{ID: e.Account, Balance: l.balances[e.Account]}, nil
}

func (l *memLedger) Audit(context.Context, string) error { return nil }

func (l *memLedger) Watch(context.Context, string) (iter.Seq2[ledger.Entry, error], error) {
	return func(func(ledger.Entry, error) bool) {}, nil
}

func (l *memLedger) Reset(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.balances)
	l.resets++
	return nil
}

// TestNATSRoundTrip serves the generated ledger service with RegisterLedgerNATS on the
// embedded NATS server and calls it with NewLedgerNATSClient over another connection:
// values, errors with their kind, fields and metadata, the subjects, the idempotency the
// middleware sees, and the methods that are not served.
func TestNATSRoundTrip(t *testing.T) {
	_, connect := startNATS(t)
	impl := &memLedger{balances: map[string]int64{"a": 5}}
	var mu sync.Mutex
	seen := map[string]endpoint.Info{}
	record := func(_ endpoint.Info, next endpoint.Handler) endpoint.Handler {
		return func(ctx context.Context, req any) (any, error) {
			info := endpoint.InfoFrom(ctx)
			mu.Lock()
			seen[info.Method] = *info
			mu.Unlock()
			return next(ctx, req)
		}
	}
	srv := natsrpc.NewServer(ledger.LedgerGRPCService, natsrpc.WithMiddleware(record))
	ledger.RegisterLedgerNATS(srv, ledger.MakeLedgerEndpoints(impl))
	wantSubjects := []string{"svc.ledger.Ledger.Balance", "ledger.credit", "svc.ledger.Ledger.Reset"}
	if got := srv.Subjects(); !slices.Equal(got, wantSubjects) {
		t.Fatalf("subjects %v, want %v", got, wantSubjects)
	}
	serveNATS(t, srv, connect())
	c := ledger.NewLedgerClient(ledger.NewLedgerNATSClient(connect()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if b, err := c.Balance(ctx, "a"); err != nil || b != 5 {
		t.Fatalf("Balance(a) = %d, %v; want 5", b, err)
	}
	acct, err := c.Credit(ctx, ledger.Entry{Account: "a", Amount: 1 << 40, Note: "big"})
	if err != nil || !reflect.DeepEqual(acct, &ledger.Account{ID: "a", Balance: 5 + 1<<40}) {
		t.Fatalf("Credit = %+v, %v", acct, err)
	}
	if err := c.Reset(ctx); err != nil || impl.resets != 1 {
		t.Fatalf("Reset = %v, resets %d", err, impl.resets)
	}

	errCases := []struct {
		name  string
		call  func() error
		kind  svcerr.Kind
		check func(*svcerr.Error) error
	}{
		{"not found with metadata", func() error { _, err := c.Balance(ctx, "nobody"); return err }, svcerr.NotFound,
			func(e *svcerr.Error) error {
				if e.Message != "no account nobody" || e.Meta["account"] != "nobody" {
					return fmt.Errorf("message %q, meta %v", e.Message, e.Meta)
				}
				return nil
			}},
		{"invalid field", func() error { _, err := c.Credit(ctx, ledger.Entry{Account: "a", Amount: -1}); return err }, svcerr.InvalidArgument,
			func(e *svcerr.Error) error {
				if len(e.Fields) != 1 || e.Fields[0].Field != "amount" || e.Fields[0].Description != "must be positive" {
					return fmt.Errorf("fields %+v", e.Fields)
				}
				return nil
			}},
		{"left off NATS", func() error { return c.Audit(ctx, "a") }, svcerr.Unimplemented, nil},
		{"stream", func() error { _, err := c.Watch(ctx, "a"); return err }, svcerr.Unimplemented, nil},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var se *svcerr.Error
			if !errors.As(err, &se) || se.Kind != tc.kind {
				t.Fatalf("error %v (%T), want kind %s", err, err, tc.kind)
			}
			if tc.check != nil {
				if err := tc.check(se); err != nil {
					t.Error(err)
				}
			}
		})
	}

	mu.Lock()
	defer mu.Unlock()
	for method, want := range map[string]bool{"Balance": true, "Credit": true, "Reset": false} {
		info, ok := seen[method]
		if !ok || info.Transport != "nats" || info.Service != ledger.LedgerGRPCService || info.Idempotent != want {
			t.Errorf("%s: middleware saw %+v (called %v), want transport nats, service %s, idempotent %v",
				method, info, ok, ledger.LedgerGRPCService, want)
		}
	}
	if _, ok := seen["Audit"]; ok {
		t.Error("Audit was served over NATS")
	}
}

// TestNATSRoundTripShapes sends every shape of the golden corpus's shapes service over NATS
// and compares it with a local call.
func TestNATSRoundTripShapes(t *testing.T) {
	_, connect := startNATS(t)
	srv := natsrpc.NewServer(shapes.GRPCService)
	shapes.RegisterNATS(srv, shapes.MakeEndpoints(shapesEcho{}))
	serveNATS(t, srv, connect())
	c := shapes.NewClient(shapes.NewNATSClient(connect()))
	var local shapes.Service = shapesEcho{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	check := func(method string, got, want any, err error) {
		t.Helper()
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v, %v\nwant %+v", method, got, err, want)
		}
	}
	got, err := c.Get(ctx, shapes.GetRequest{ID: "p1"})
	want, _ := local.Get(ctx, shapes.GetRequest{ID: "p1"})
	check("Get", got, want, err)
	in := rtProfile("p2")
	put, err := c.Put(ctx, &in)
	check("Put", put, in, err)
	page, err := c.List(ctx, 2, "cursor")
	wantPage, _ := local.List(ctx, 2, "cursor")
	check("List", page, wantPage, err)
	colors, err := c.Colors(ctx, []shapes.Color{shapes.Red, shapes.Red, shapes.Green}, map[string]shared.Level{"blue": shared.LevelLow})
	check("Colors", colors, map[shapes.Color]int64{shapes.Red: 2, shapes.Green: 1, "blue": 100}, err)
	addr, err := c.Where(ctx, "w")
	wantAddr, _ := local.Where(ctx, "w")
	check("Where", addr, wantAddr, err)
}

// TestNATSAddsvc serves the regenerated examples/addsvc over NATS: a value, its business
// errors with their kinds, and Range, which streams and so is not served over NATS.
func TestNATSAddsvc(t *testing.T) {
	_, connect := startNATS(t)
	srv := natsrpc.NewServer(addsvc.GRPCService)
	addsvc.RegisterNATS(srv, addsvc.MakeEndpoints(addsvc.New()))
	serveNATS(t, srv, connect())
	c := addsvc.NewClient(addsvc.NewNATSClient(connect()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if v, err := c.Sum(ctx, 2, 3); err != nil || v != 5 {
		t.Fatalf("Sum(2, 3) = %d, %v", v, err)
	}
	if v, err := c.Concat(ctx, "a", "b"); err != nil || v != "ab" {
		t.Fatalf("Concat(a, b) = %q, %v", v, err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want *svcerr.Error
	}{
		{"two zeroes", func() error { _, err := c.Sum(ctx, 0, 0); return err }(), addsvc.ErrTwoZeroes},
		{"overflow", func() error { _, err := c.Sum(ctx, 1<<62, 1<<62); return err }(), addsvc.ErrIntOverflow},
		{"range", func() error { _, err := c.Range(ctx, 0, 3); return err }(),
			svcerr.New(svcerr.Unimplemented, "Service.Range is served over gRPC only")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var se *svcerr.Error
			if !errors.As(tc.err, &se) || se.Kind != tc.want.Kind || se.Message != tc.want.Message {
				t.Fatalf("error %v, want %v", tc.err, tc.want)
			}
		})
	}
}
