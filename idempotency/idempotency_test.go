package idempotency_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/idempotency"
	"github.com/svckit/svckit/store"
	"github.com/svckit/svckit/svcerr"
	shttp "github.com/svckit/svckit/transport/http"
)

func openSQL(t *testing.T) *idempotency.SQL {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "idem.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := idempotency.NewSQL(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var stores = []struct {
	name string
	open func(t *testing.T) idempotency.Store
}{
	{"Memory", func(*testing.T) idempotency.Store { return idempotency.NewMemory() }},
	{"SQL", func(t *testing.T) idempotency.Store { return openSQL(t) }},
}

func TestStore(t *testing.T) {
	for _, sc := range stores {
		t.Run(sc.name, func(t *testing.T) { testStore(t, sc.open(t)) })
	}
}

func testStore(t *testing.T, s idempotency.Store) {
	ctx := context.Background()
	if _, ok, err := s.Get(ctx, "sc", "k"); ok || err != nil {
		t.Fatalf("Get on empty: %v %v", ok, err)
	}
	r, ok, err := s.Begin(ctx, "sc", "k", "fp", time.Minute)
	if !ok || err != nil || r.State != idempotency.InProgress || r.Claim == "" {
		t.Fatalf("Begin: %+v %v %v", r, ok, err)
	}
	claim := r.Claim
	r, ok, err = s.Begin(ctx, "sc", "k", "other", time.Minute)
	if ok || err != nil || r.State != idempotency.InProgress || r.Fingerprint != "fp" || r.Claim != claim {
		t.Fatalf("second Begin: %+v %v %v", r, ok, err)
	}
	if r, ok, _ := s.Begin(ctx, "other-scope", "k", "fp", time.Minute); !ok || r.Claim == claim {
		t.Fatalf("scopes are not separate, or claims share an id: %+v %v", r, ok)
	}
	if err := s.Complete(ctx, "sc", "k", "not-the-claim", idempotency.KindResponse, []byte(`{"a":2}`), time.Hour); !errors.Is(err, idempotency.ErrClaimLost) {
		t.Fatalf("Complete with another claim: %v, want ErrClaimLost", err)
	}
	if err := s.Release(ctx, "sc", "k", "not-the-claim"); err != nil {
		t.Fatal(err)
	}
	if r, ok, _ := s.Get(ctx, "sc", "k"); !ok || r.State != idempotency.InProgress || r.Claim != claim {
		t.Fatalf("another claim's Complete or Release changed the record: %+v %v", r, ok)
	}
	if err := s.Complete(ctx, "sc", "k", claim, idempotency.KindResponse, []byte(`{"a":1}`), time.Hour); err != nil {
		t.Fatal(err)
	}
	r, ok, err = s.Get(ctx, "sc", "k")
	if !ok || err != nil || r.State != idempotency.Completed || string(r.Response) != `{"a":1}` || r.Kind != idempotency.KindResponse {
		t.Fatalf("Get after Complete: %+v %v %v", r, ok, err)
	}
	if err := s.Complete(ctx, "sc", "k", claim, idempotency.KindResponse, []byte(`{"a":3}`), time.Hour); !errors.Is(err, idempotency.ErrClaimLost) {
		t.Fatalf("second Complete: %v, want ErrClaimLost", err)
	}
	if err := s.Release(ctx, "sc", "k", claim); err != nil { // completed records stay
		t.Fatal(err)
	}
	if r, ok, _ := s.Get(ctx, "sc", "k"); !ok || string(r.Response) != `{"a":1}` {
		t.Fatalf("Release or a second Complete changed a completed record: %+v %v", r, ok)
	}
	// In-progress records are released, and expire.
	r, _, _ = s.Begin(ctx, "sc", "rel", "fp", time.Minute)
	s.Release(ctx, "sc", "rel", r.Claim)
	if _, ok, _ := s.Begin(ctx, "sc", "rel", "fp", time.Minute); !ok {
		t.Fatal("released key not free")
	}
	old, _, _ := s.Begin(ctx, "sc", "exp", "fp", time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	r, ok, _ = s.Begin(ctx, "sc", "exp", "fp2", time.Minute)
	if !ok || r.Claim == old.Claim {
		t.Fatalf("expired key not free, or the new claim has the old id: %+v %v", r, ok)
	}
	// The expired claim settles nothing of the new one.
	if err := s.Complete(ctx, "sc", "exp", old.Claim, idempotency.KindResponse, []byte(`{}`), time.Hour); !errors.Is(err, idempotency.ErrClaimLost) {
		t.Fatalf("Complete of an expired claim taken over: %v, want ErrClaimLost", err)
	}
	s.Release(ctx, "sc", "exp", old.Claim)
	if got, ok, _ := s.Get(ctx, "sc", "exp"); !ok || got.Claim != r.Claim || got.State != idempotency.InProgress {
		t.Fatalf("an expired claim's Release or Complete changed the new claim: %+v %v", got, ok)
	}
	// An expired claim that nobody took over may still complete.
	old, _, _ = s.Begin(ctx, "sc", "late", "fp", time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	if err := s.Complete(ctx, "sc", "late", old.Claim, idempotency.KindResponse, []byte(`{}`), time.Hour); err != nil {
		t.Fatalf("Complete of an expired claim not taken over: %v", err)
	}
}

func TestConcurrentBegin(t *testing.T) {
	for _, sc := range stores {
		t.Run(sc.name, func(t *testing.T) { testConcurrentBegin(t, sc.open(t)) })
	}
}

func testConcurrentBegin(t *testing.T, s idempotency.Store) {
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, ok, err := s.Begin(context.Background(), "sc", "same", "fp", time.Minute); err != nil {
				t.Error(err)
			} else if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d winners", wins.Load())
	}
}

type ChargeRequest struct {
	Account string `json:"account"`
	Amount  int    `json:"amount"`
}

type ChargeResponse struct {
	ChargeID string `json:"charge_id"`
	Amount   int    `json:"amount"`
}

// paymentServer serves POST /charge with the idempotency middleware in front of an
// endpoint that counts its runs.
type paymentServer struct {
	url   string
	runs  atomic.Int32
	gate  chan struct{} // when non-nil, each run waits for a value
	entry chan struct{}
}

func newPaymentServer(t *testing.T, s idempotency.Store, opts ...idempotency.Option) *paymentServer {
	p := &paymentServer{}
	srv := shttp.NewServer("payments", shttp.WithMiddleware(idempotency.Middleware(s, opts...)))
	shttp.Handle(srv, "POST /charge", "Charge", func(ctx context.Context, req ChargeRequest) (ChargeResponse, error) {
		n := p.runs.Add(1)
		if p.entry != nil {
			p.entry <- struct{}{}
		}
		if p.gate != nil {
			<-p.gate
		}
		switch {
		case req.Amount <= 0:
			return ChargeResponse{}, svcerr.Invalid("amount", "must be positive")
		case req.Amount == 999:
			return ChargeResponse{}, svcerr.New(svcerr.Unavailable, "bank down")
		}
		return ChargeResponse{ChargeID: "ch_" + string(rune('0'+n)), Amount: req.Amount}, nil
	})
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	p.url = hs.URL
	return p
}

func charge(t *testing.T, url, key string, req ChargeRequest) (int, string) {
	t.Helper()
	body, _ := json.Marshal(req)
	r, _ := http.NewRequest("POST", url+"/charge", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if key != "" {
		r.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(bytes.TrimSpace(b))
}

func TestMiddlewareHTTP(t *testing.T) {
	for _, sc := range stores {
		t.Run(sc.name, func(t *testing.T) { testMiddlewareHTTP(t, sc.open(t)) })
	}
}

func testMiddlewareHTTP(t *testing.T, s idempotency.Store) {
	p := newPaymentServer(t, s)
	c1, b1 := charge(t, p.url, "k1", ChargeRequest{"acc", 10})
	c2, b2 := charge(t, p.url, "k1", ChargeRequest{"acc", 10})
	if c1 != 200 || c2 != 200 || b1 != b2 || p.runs.Load() != 1 {
		t.Fatalf("repeat: %d %s / %d %s, %d runs", c1, b1, c2, b2, p.runs.Load())
	}
	if c, b := charge(t, p.url, "k1", ChargeRequest{"acc", 11}); c != 400 || !bytes.Contains([]byte(b), []byte("different request")) {
		t.Errorf("same key, other body: %d %s", c, b)
	}
	charge(t, p.url, "", ChargeRequest{"acc", 10})
	charge(t, p.url, "", ChargeRequest{"acc", 10})
	if p.runs.Load() != 3 {
		t.Errorf("calls without key: %d runs, want 3", p.runs.Load())
	}
	// A deterministic error is stored and replayed; a transient one is not.
	c1, b1 = charge(t, p.url, "bad", ChargeRequest{"acc", -1})
	c2, b2 = charge(t, p.url, "bad", ChargeRequest{"acc", -1})
	same := bytes.Contains([]byte(b1), []byte("must be positive")) && bytes.Contains([]byte(b2), []byte("must be positive"))
	if c1 != 400 || c2 != 400 || !same || p.runs.Load() != 4 {
		t.Errorf("stored error: %d %s / %d %s, %d runs", c1, b1, c2, b2, p.runs.Load())
	}
	charge(t, p.url, "down", ChargeRequest{"acc", 999})
	if c, _ := charge(t, p.url, "down", ChargeRequest{"acc", 999}); c != 503 || p.runs.Load() != 6 {
		t.Errorf("transient error: %d, %d runs", c, p.runs.Load())
	}
}

// TestConcurrentDuplicates: a repeat that arrives while the first request runs waits for
// its result; with a short wait it gets a conflict.
func TestConcurrentDuplicates(t *testing.T) {
	for _, sc := range stores {
		t.Run(sc.name, func(t *testing.T) {
			s := sc.open(t)
			p := newPaymentServer(t, s)
			p.gate, p.entry = make(chan struct{}), make(chan struct{}, 1)
			results := make(chan string, 2)
			go func() { _, b := charge(t, p.url, "dup", ChargeRequest{"acc", 5}); results <- b }()
			<-p.entry // the first request runs
			go func() { _, b := charge(t, p.url, "dup", ChargeRequest{"acc", 5}); results <- b }()
			// The second request waits; let it poll a few times, then let the first finish.
			for range 3 {
				if r, ok, _ := s.Get(context.Background(), "payments.Charge", "dup"); !ok || r.State != idempotency.InProgress {
					t.Fatalf("record %+v %v", r, ok)
				}
				time.Sleep(10 * time.Millisecond)
			}
			p.gate <- struct{}{}
			a, b := <-results, <-results
			if a != b || p.runs.Load() != 1 {
				t.Fatalf("results %s / %s, %d runs", a, b, p.runs.Load())
			}

			short := newPaymentServer(t, s, idempotency.WithWait(20*time.Millisecond))
			short.gate, short.entry = make(chan struct{}), make(chan struct{}, 1)
			done := make(chan struct{})
			go func() { charge(t, short.url, "dup2", ChargeRequest{"acc", 5}); close(done) }()
			<-short.entry
			if c, b := charge(t, short.url, "dup2", ChargeRequest{"acc", 5}); c != 409 || !bytes.Contains([]byte(b), []byte("in progress")) {
				t.Errorf("conflict: %d %s", c, b)
			}
			short.gate <- struct{}{}
			<-done
		})
	}
}

// TestReplayAfterRestart replays a response stored by another middleware instance,
// as after a restart, and reads the key from gRPC metadata.
func TestReplayAfterRestart(t *testing.T) {
	ctx := context.Background()
	s := openSQL(t)
	info := endpoint.Info{Service: "payments", Method: "Charge", Transport: "grpc"}
	var runs int
	e := func(ctx context.Context, req ChargeRequest) (*ChargeResponse, error) {
		runs++
		return &ChargeResponse{ChargeID: "ch_1", Amount: req.Amount}, nil
	}
	grpcCtx := metadata.NewIncomingContext(ctx, metadata.Pairs("idempotency-key", "g1"))
	first := endpoint.Wrap(info, e, idempotency.Middleware(s))
	if _, err := first(grpcCtx, ChargeRequest{"a", 7}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		mw   endpoint.Middleware
		ok   bool
	}{
		{"type unknown", idempotency.Middleware(s), false},
		{"WithResponseType", idempotency.Middleware(s, idempotency.WithResponseType("payments.Charge", (*ChargeResponse)(nil))), true},
		{"For", idempotency.For[*ChargeResponse](s), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			restarted := endpoint.Wrap(info, e, tc.mw)
			resp, err := restarted(grpcCtx, ChargeRequest{"a", 7})
			if !tc.ok {
				if svcerr.KindOf(err) != svcerr.Internal {
					t.Fatalf("err %v", err)
				}
				return
			}
			if err != nil || resp == nil || resp.ChargeID != "ch_1" || resp.Amount != 7 {
				t.Fatalf("replay: %+v, %v", resp, err)
			}
		})
	}
	if runs != 1 {
		t.Errorf("%d runs", runs)
	}
	// WithKey takes precedence over the header.
	if _, err := first(idempotency.WithKey(grpcCtx, "other"), ChargeRequest{"a", 7}); err != nil || runs != 2 {
		t.Errorf("WithKey: %v, %d runs", err, runs)
	}
	// Required keys.
	req := endpoint.Wrap(info, e, idempotency.Middleware(s, idempotency.WithRequired()))
	if _, err := req(ctx, ChargeRequest{}); svcerr.KindOf(err) != svcerr.InvalidArgument {
		t.Errorf("missing key: %v", err)
	}
}

func TestOnce(t *testing.T) { testOnce(t, openSQL(t)) }

func testOnce(t *testing.T, s *idempotency.SQL) {
	ctx := context.Background()
	st := s.Store()
	if _, err := st.DB().Exec(`CREATE TABLE balances (account TEXT PRIMARY KEY, amount INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	st.DB().Exec(`INSERT INTO balances VALUES ('a', 0)`)
	credit := func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE balances SET amount = amount + 10 WHERE account = 'a'`)
		return err
	}
	failing := func(tx *sql.Tx) error {
		credit(tx)
		return errors.New("consumer failed")
	}
	deliveries := []struct {
		msg  string
		fn   func(*sql.Tx) error
		ran  bool
		fail bool
	}{
		{"m1", failing, false, true}, // fails: nothing recorded, effect rolled back
		{"m1", credit, true, false},  // redelivered: runs
		{"m1", credit, false, false}, // duplicate: skipped
		{"m2", credit, true, false},
		{"m1", credit, false, false},
	}
	for i, d := range deliveries {
		ran, err := idempotency.Once(ctx, s, "credits", d.msg, d.fn)
		if ran != d.ran || (err != nil) != d.fail {
			t.Errorf("delivery %d (%s): ran %v, err %v", i, d.msg, ran, err)
		}
	}
	var amount int
	st.DB().QueryRow(`SELECT amount FROM balances`).Scan(&amount)
	if amount != 20 {
		t.Errorf("balance %d, want 20", amount)
	}
	// Concurrent redeliveries.
	var wg sync.WaitGroup
	var ran atomic.Int32
	for range 10 {
		wg.Go(func() {
			if ok, err := idempotency.Once(ctx, s, "credits", "m3", credit); err != nil {
				t.Error(err)
			} else if ok {
				ran.Add(1)
			}
		})
	}
	wg.Wait()
	st.DB().QueryRow(`SELECT amount FROM balances`).Scan(&amount)
	if ran.Load() != 1 || amount != 30 {
		t.Errorf("concurrent: %d ran, balance %d", ran.Load(), amount)
	}
}
