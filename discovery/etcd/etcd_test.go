//go:build integration && linux

package etcd_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/svckit/svckit/discovery"
	"github.com/svckit/svckit/discovery/discoverytest"
	"github.com/svckit/svckit/discovery/etcd"
	"github.com/svckit/svckit/internal/testnet"
)

// etcdServer is a real etcd (the etcd binary on PATH, as Debian's etcd-server installs it)
// on loopback ports with its data in a temporary directory.
type etcdServer struct {
	t      testing.TB
	dir    string
	client string
	peer   string
	cmd    *exec.Cmd
	exited chan struct{}
}

func startEtcd(t testing.TB) *etcdServer {
	t.Helper()
	_, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatalf("etcd not installed (apt-get install etcd-server): %v", err)
	}
	s := &etcdServer{t: t, dir: t.TempDir()}
	client := testnet.LowAddr(t)
	s.client = "http://" + client
	s.peer = "http://" + testnet.LowAddr(t, client)
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *etcdServer) start() {
	t := s.t
	t.Helper()
	s.cmd = exec.Command("etcd",
		"--name", "test",
		"--data-dir", filepath.Join(s.dir, "data"),
		"--listen-client-urls", s.client, "--advertise-client-urls", s.client,
		"--listen-peer-urls", s.peer, "--initial-advertise-peer-urls", s.peer,
		"--initial-cluster", "test="+s.peer,
		"--log-level", "error")
	logf, err := os.Create(filepath.Join(s.dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	// etcd dies with the test binary even if the test is killed before its cleanup.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); logf.Close(); close(s.exited) }()
	c := s.newClient(t)
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Get(ctx, "health")
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "etcd.log"))
			t.Fatalf("etcd not ready: %v\n%s", err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *etcdServer) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

func (s *etcdServer) newClient(t testing.TB) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{s.client}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSuite(t *testing.T) {
	s := startEtcd(t)
	discoverytest.Run(t, discoverytest.Backend{
		New: func(t *testing.T) discovery.Registry {
			c := s.newClient(t)
			t.Cleanup(func() { _ = c.Close() })
			return etcd.New(c)
		},
		NewCrashable: func(t *testing.T) (discovery.Registry, func()) {
			c := s.newClient(t)
			return etcd.New(c), func() { _ = c.Close() }
		},
		TTL: 2 * time.Second,
	})
}

// TestOutage kills etcd for longer than the TTL and starts it again with its data: the
// registration survives or comes back, and the watcher follows changes made afterwards.
func TestOutage(t *testing.T) {
	s := startEtcd(t)
	ctx := t.Context()
	c1, c2 := s.newClient(t), s.newClient(t)
	defer c1.Close()
	defer c2.Close()
	r := etcd.New(c1, etcd.WithKeepOptions(discovery.KeepOptions{MaxBackoff: 200 * time.Millisecond}))
	reg, err := r.Register(ctx, discovery.Instance{Service: "addsvc", ID: "a", Addr: "127.0.0.1:1"}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := etcd.New(c2).Watch(ctx, "addsvc")
	if err != nil {
		t.Fatal(err)
	}
	w := discoverytest.Follow(ch)
	w.Expect(t, 10*time.Second, "a")

	s.stop()
	time.Sleep(3 * time.Second)
	s.start()
	w.Expect(t, 30*time.Second, "a")
	regB, err := r.Register(ctx, discovery.Instance{Service: "addsvc", ID: "b", Addr: "127.0.0.1:2"}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	w.Expect(t, 30*time.Second, "a", "b")
	// Several TTLs later both are still there: heartbeats work after the outage.
	time.Sleep(5 * time.Second)
	w.Expect(t, 10*time.Second, "a", "b")
	if err := reg.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	if err := regB.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	w.Expect(t, 10*time.Second)
}
