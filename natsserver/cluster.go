package natsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Cluster is a JetStream cluster of servers on loopback, started by StartCluster. Its
// nodes keep their ports and store directories across Stop and Restart, so a restarted
// node rejoins the cluster with its data.
type Cluster struct {
	mu     sync.Mutex
	name   string
	dir    string
	logger *slog.Logger
	ports  []int
	routes []int
	nodes  []*Server
	admin  string // the admin password every node shares
	users  []User
}

// ClusterOption configures StartCluster.
type ClusterOption func(*Cluster)

// WithClusterUsers gives every node the users of [WithUsers].
func WithClusterUsers(users ...User) ClusterOption {
	return func(c *Cluster) { c.users = append(c.users, users...) }
}

// WithClusterLogger logs every node's notices to l, with a "node" attribute.
func WithClusterLogger(l *slog.Logger) ClusterOption { return func(c *Cluster) { c.logger = l } }

// StartCluster starts n (at least 1) NATS servers with JetStream on loopback, routed into
// one cluster, with node i storing in dir/node-i, and waits until JetStream has a meta
// leader, so streams can be created at once. Shut it down with Shutdown.
func StartCluster(ctx context.Context, n int, dir string, opts ...ClusterOption) (*Cluster, error) {
	if n < 1 {
		return nil, errors.New("natsserver: cluster needs at least one node")
	}
	// A port found free can still be taken before a node binds it; start again on new
	// ports, a few times, before giving up.
	var err error
	for range 3 {
		var c *Cluster
		if c, err = startCluster(ctx, n, dir, opts); err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			break
		}
		// The failed attempt's nodes are shut down; their stores go too, so that the next
		// attempt forms a new cluster rather than recovering a half-formed one.
		for i := range n {
			_ = os.RemoveAll(filepath.Join(dir, "node-"+strconv.Itoa(i)))
		}
	}
	return nil, err
}

func startCluster(ctx context.Context, n int, dir string, opts []ClusterOption) (*Cluster, error) {
	c := &Cluster{name: "svckit-test", dir: dir, ports: make([]int, n), routes: make([]int, n), nodes: make([]*Server, n), admin: RandomPassword()}
	for _, o := range opts {
		o(c)
	}
	for i := range n {
		var err error
		if c.ports[i], err = freePort(); err != nil {
			return nil, fmt.Errorf("natsserver: %w", err)
		}
		if c.routes[i], err = freePort(); err != nil {
			return nil, fmt.Errorf("natsserver: %w", err)
		}
	}
	// Nodes wait for their routes before JetStream elects a leader, so start them together.
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = c.start(ctx, i) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.Shutdown(context.Background())
		return nil, err
	}
	if err := c.WaitJetStream(ctx); err != nil {
		c.Shutdown(context.Background())
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context, i int) error {
	var routes []string
	for j, p := range c.routes {
		if j != i {
			routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(p))
		}
	}
	opts := []Option{
		WithPort(c.ports[i]),
		WithName(fmt.Sprintf("n%d", i)),
		WithAdmin(c.admin),
		WithUsers(c.users...),
		func(cfg *config) {
			cfg.clusterOpt = &server.ClusterOpts{Name: c.name, Host: "127.0.0.1", Port: c.routes[i]}
			cfg.routes = routes
		},
	}
	if c.logger != nil {
		opts = append(opts, WithLogger(c.logger.With(slog.Int("node", i))))
	}
	s, err := Start(ctx, filepath.Join(c.dir, "node-"+strconv.Itoa(i)), opts...)
	if err != nil {
		return fmt.Errorf("node %d: %w", i, err)
	}
	c.mu.Lock()
	c.nodes[i] = s
	c.mu.Unlock()
	return nil
}

// Size returns the number of nodes.
func (c *Cluster) Size() int { return len(c.ports) }

// URLs returns the client URLs of all nodes, comma-separated, as nats.Connect takes them,
// with the admin user's credentials (see [Server.ClientURL]).
func (c *Cluster) URLs() string {
	return WithUserInfo(c.PlainURLs(), AdminUser, c.admin)
}

// PlainURLs returns the client URLs of all nodes without credentials.
func (c *Cluster) PlainURLs() string {
	urls := make([]string, len(c.ports))
	for i, p := range c.ports {
		urls[i] = "nats://127.0.0.1:" + strconv.Itoa(p)
	}
	return strings.Join(urls, ",")
}

// URL returns the client URL of node i, with the admin user's credentials.
func (c *Cluster) URL(i int) string {
	return WithUserInfo("nats://127.0.0.1:"+strconv.Itoa(c.ports[i]), AdminUser, c.admin)
}

// AdminPassword returns the password of the admin user all nodes share.
func (c *Cluster) AdminPassword() string { return c.admin }

// Node returns node i, or nil while it is stopped.
func (c *Cluster) Node(i int) *Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// Stop shuts node i down; its port and data are kept for Restart.
func (c *Cluster) Stop(ctx context.Context, i int) error {
	c.mu.Lock()
	s := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if s == nil {
		return nil
	}
	return s.Shutdown(ctx)
}

// Restart starts a stopped node i again on its port with its data.
func (c *Cluster) Restart(ctx context.Context, i int) error {
	if c.Node(i) != nil {
		return fmt.Errorf("natsserver: node %d runs", i)
	}
	return c.start(ctx, i)
}

// WaitJetStream waits until JetStream in the cluster can place a stream replicated on
// every running node, or ctx ends. A meta leader answers account requests before it has
// heard from every peer; until it has, streams with several replicas fail with "no
// suitable peers for placement". So WaitJetStream creates a small in-memory probe stream
// with one replica per running node, waits for its leader, and deletes it.
func (c *Cluster) WaitJetStream(ctx context.Context) error {
	nc, err := nats.Connect(c.URLs(), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("natsserver: %w", err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		return fmt.Errorf("natsserver: %w", err)
	}
	probe := &nats.StreamConfig{
		Name:     "SVCKIT_READY_PROBE",
		Subjects: []string{"svckit.ready.probe"},
		Storage:  nats.MemoryStorage,
		Replicas: min(c.running(), 5),
	}
	for {
		err = c.probe(js, probe)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("natsserver: JetStream not ready: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// probe creates the probe stream, checks that it has a leader and deletes it.
func (c *Cluster) probe(js nats.JetStreamContext, cfg *nats.StreamConfig) error {
	if !c.peersCurrent() {
		return errors.New("a peer's meta state is not current")
	}
	info, err := js.AddStream(cfg, nats.MaxWait(2*time.Second))
	if err != nil {
		return err
	}
	if info.Cluster != nil && info.Cluster.Leader == "" {
		if info, err = js.StreamInfo(cfg.Name, nats.MaxWait(time.Second)); err != nil {
			return err
		}
		if info.Cluster != nil && info.Cluster.Leader == "" {
			return errors.New("probe stream has no leader yet")
		}
	}
	return js.DeleteStream(cfg.Name, nats.MaxWait(2*time.Second))
}

// running returns the number of running nodes.
func (c *Cluster) running() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, s := range c.nodes {
		if s != nil && s.Running() {
			n++
		}
	}
	return n
}

// peersCurrent reports whether every running node's JetStream meta state is current.
func (c *Cluster) peersCurrent() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		if n != nil && n.Running() && !n.Server().JetStreamIsCurrent() {
			return false
		}
	}
	return true
}

// Shutdown stops every running node.
func (c *Cluster) Shutdown(ctx context.Context) error {
	var errs []error
	for i := range c.nodes {
		errs = append(errs, c.Stop(ctx, i))
	}
	return errors.Join(errs...)
}
