// Package natsserver runs a NATS server with JetStream inside the process: the message bus
// of `svckit dev` and the engine of tests. A service never starts one by itself; it is
// always an explicit choice of the program that calls [Start].
//
// [Start] starts one server on a loopback port (random unless given) with JetStream storing
// in a directory, and returns once it accepts connections. [StartCluster] starts N servers
// routed into one JetStream cluster on loopback, for tests that stop and restart nodes.
//
// Authorization is on: anonymous clients are refused. Every server has an admin user
// ([AdminUser], a random password unless [WithAdmin] sets one), which [Server.ClientURL]
// and [Server.Connect] carry, and the users of [WithUsers], typically one
// [ServiceUser] per service, each allowed to publish only its own events.
package natsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Option configures a server started by Start.
type Option func(*config)

type config struct {
	host       string
	port       int
	name       string
	logger     *slog.Logger
	noListen   bool
	readyWait  time.Duration
	maxStore   int64
	clusterOpt *server.ClusterOpts
	routes     []string
	users      []User
	adminPass  string
	noAuth     bool
	sync       time.Duration // JetStream sync interval; 0 the server's default, SyncAlways every write
}

// WithPort sets the client port; 0 (the default) picks a free one.
func WithPort(port int) Option { return func(c *config) { c.port = port } }

// WithHost sets the listen host; default 127.0.0.1.
func WithHost(host string) Option { return func(c *config) { c.host = host } }

// WithName sets the server name; default a name made from the store directory.
func WithName(name string) Option { return func(c *config) { c.name = name } }

// WithLogger logs the server's notices, warnings and errors to l; by default the server
// does not log.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithoutListener starts the server without a network listener: only in-process
// connections made with [Server.Connect] reach it.
func WithoutListener() Option { return func(c *config) { c.noListen = true } }

// WithReadyTimeout sets how long Start waits for the server to accept connections;
// default 10s.
func WithReadyTimeout(d time.Duration) Option { return func(c *config) { c.readyWait = d } }

// WithMaxStore limits the JetStream file store in bytes; default no limit.
func WithMaxStore(n int64) Option { return func(c *config) { c.maxStore = n } }

// SyncAlways, given to [WithSync], makes JetStream sync every write to disk before it
// acknowledges it.
const SyncAlways time.Duration = -1

// DefaultSyncInterval is how often JetStream syncs its files to disk when [WithSync] is not
// given: nats-server's default.
const DefaultSyncInterval = 2 * time.Minute

// WithSync sets when JetStream forces what it stored to disk (fsync). By default it
// syncs every [DefaultSyncInterval] (2 minutes), so an acknowledged message survives a
// crash of the server process (it is in the OS's page cache) but not an OS crash or
// power loss within the interval. A positive d syncs every d; [SyncAlways] syncs each
// write before acknowledging it, so an acknowledged message survives power loss too, at
// the cost of one fsync per write. 0 keeps the default.
func WithSync(d time.Duration) Option { return func(c *config) { c.sync = d } }

// ParseSync parses a sync policy for [WithSync]: "always", a duration such as "1s", or
// empty (or "default") for the server's default.
func ParseSync(s string) (time.Duration, error) {
	switch s {
	case "", "default":
		return 0, nil
	case "always":
		return SyncAlways, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("natsserver: sync %q: must be always, a positive duration such as 1s, or default", s)
	}
	return d, nil
}

// Server is a running embedded NATS server with JetStream.
type Server struct {
	ns        *server.Server
	storeDir  string
	opts      *server.Options
	adminPass string
}

// Start starts a NATS server with JetStream storing in storeDir (created if missing) and
// waits until it accepts connections or ctx ends.
func Start(ctx context.Context, storeDir string, opts ...Option) (*Server, error) {
	c := config{host: "127.0.0.1", readyWait: 10 * time.Second}
	for _, o := range opts {
		o(&c)
	}
	if storeDir == "" {
		return nil, errors.New("natsserver: store directory is empty")
	}
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		return nil, fmt.Errorf("natsserver: %w", err)
	}
	port := c.port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	so := &server.Options{
		ServerName:        c.name,
		Host:              c.host,
		Port:              port,
		DontListen:        c.noListen,
		JetStream:         true,
		StoreDir:          storeDir,
		JetStreamMaxStore: c.maxStore,
		NoSigs:            true,
		NoLog:             c.logger == nil,
		MaxPayload:        8 << 20,
	}
	switch {
	case c.sync == SyncAlways:
		so.SyncAlways, so.SyncInterval = true, DefaultSyncInterval
	case c.sync > 0:
		so.SyncInterval = c.sync
	case c.sync < 0:
		return nil, fmt.Errorf("natsserver: sync interval %v: must be positive or SyncAlways", c.sync)
	}
	if !c.noAuth {
		if c.adminPass == "" {
			c.adminPass = RandomPassword()
		}
		so.Users = c.serverUsers()
	}
	if c.clusterOpt != nil {
		so.Cluster = *c.clusterOpt
		so.Routes = server.RoutesFromStr(joinComma(c.routes))
	}
	ns, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("natsserver: %w", err)
	}
	if c.logger != nil {
		ns.SetLoggerV2(slogAdapter{c.logger}, false, false, false)
	}
	ns.Start()
	deadline := time.Now().Add(c.readyWait)
	for !ns.ReadyForConnections(50 * time.Millisecond) {
		if err := ctx.Err(); err != nil || time.Now().After(deadline) {
			ns.Shutdown()
			ns.WaitForShutdown()
			if err == nil {
				err = errors.New("timed out")
			}
			return nil, fmt.Errorf("natsserver: server not ready: %w", err)
		}
	}
	srv := &Server{ns: ns, storeDir: storeDir, opts: so}
	if !c.noAuth {
		srv.adminPass = c.adminPass
	}
	return srv, nil
}

// ClientURL returns the nats:// URL a trusted client (a test, the dev runner) connects
// with: it carries the admin user's name and password. It is empty for a server started
// WithoutListener. Hand other clients [Server.PlainURL] and their own credentials.
func (s *Server) ClientURL() string {
	if s.opts.DontListen {
		return ""
	}
	if s.adminPass == "" {
		return s.ns.ClientURL()
	}
	return WithUserInfo(s.ns.ClientURL(), AdminUser, s.adminPass)
}

// PlainURL returns the server's nats:// URL without credentials.
func (s *Server) PlainURL() string {
	if s.opts.DontListen {
		return ""
	}
	return s.ns.ClientURL()
}

// AdminPassword returns the admin user's password; empty for a server started
// [WithoutAuth].
func (s *Server) AdminPassword() string { return s.adminPass }

// StoreDir returns the JetStream store directory.
func (s *Server) StoreDir() string { return s.storeDir }

// Server returns the underlying nats-server.
func (s *Server) Server() *server.Server { return s.ns }

// Connect returns an in-process client connection to the server as the admin user: no
// TCP, no port.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	base := []nats.Option{nats.InProcessServer(s.ns)}
	if s.adminPass != "" {
		base = append(base, nats.UserInfo(AdminUser, s.adminPass))
	}
	opts = append(base, opts...)
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, fmt.Errorf("natsserver: connect: %w", err)
	}
	return nc, nil
}

// Shutdown stops the server and waits until it has stopped or ctx ends. It is safe to call
// more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("natsserver: shutdown: %w", ctx.Err())
	}
}

// Running reports whether the server runs.
func (s *Server) Running() bool { return s.ns.Running() }

func joinComma(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ","
		}
		out += s
	}
	return out
}

// freePort returns a loopback TCP port that was free a moment ago, drawn from
// 10000–19999: below the kernel's ephemeral range, so that no outgoing connection can
// take it before the server binds it (and below svckit dev's 20000–32000).
func freePort() (int, error) {
	var err error
	for range 200 {
		port := 10000 + rand.IntN(10000)
		var ln net.Listener
		if ln, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			ln.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free port in 10000-19999: %w", err)
}

// slogAdapter adapts a slog.Logger to the nats-server logger interface.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Noticef(format string, v ...any) { a.l.Info(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Fatalf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Errorf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Debugf(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Tracef(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
