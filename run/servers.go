package run

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"

	"google.golang.org/grpc"
)

// HTTPServer returns the run and stop funcs of an actor serving srv on ln, for
// [Group.Add]. run serves until the server is shut down, treating http.ErrServerClosed as
// a clean exit. stop calls srv.Shutdown, which closes the listener and idle connections and
// waits for in-flight requests to finish; if ctx's deadline passes first, stop closes every
// connection with srv.Close and returns the deadline error. Shutdown does not wait for
// hijacked connections such as WebSockets; register their closing with
// srv.RegisterOnShutdown.
//
// If ln is an [IdleCloser] (transport/http's ProblemListener, with srv.ConnState set to
// its TrackConnState), stop first closes ln and lets it close the idle connections
// itself, answering first a request that has begun on one: Shutdown would drop it.
func HTTPServer(srv *http.Server, ln net.Listener) (run, stop func(ctx context.Context) error) {
	var stopping atomic.Bool
	run = func(context.Context) error {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) || (stopping.Load() && errors.Is(err, net.ErrClosed)) {
			return nil
		}
		return fmt.Errorf("http server: %w", err)
	}
	stop = func(ctx context.Context) error {
		var err error
		if ic, ok := ln.(IdleCloser); ok {
			stopping.Store(true)
			_ = ln.Close() // Shutdown closes it too, and reports an error of Close
			err = ic.CloseIdle(ctx)
		}
		if err == nil {
			err = srv.Shutdown(ctx)
		}
		if err != nil {
			return errors.Join(fmt.Errorf("http server shutdown: %w", err), srv.Close())
		}
		return nil
	}
	return run, stop
}

// IdleCloser is a listener that can close its server's idle connections without cutting
// off a request that has begun on one, which http.Server.Shutdown would drop. CloseIdle
// is called once the listener is closed; it returns when no idle connection has a request
// begun, or with ctx's error.
type IdleCloser interface {
	net.Listener
	CloseIdle(ctx context.Context) error
}

// GRPCServer returns the run and stop funcs of an actor serving srv on ln, for
// [Group.Add]. run serves until the server is stopped. stop calls srv.GracefulStop, which
// stops accepting connections and waits for pending RPCs to finish; if ctx's deadline
// passes first, stop cancels the remaining RPCs with srv.Stop and returns the deadline
// error. Long-lived streams, such as a client's health Watch, hold up GracefulStop until
// the deadline.
func GRPCServer(srv *grpc.Server, ln net.Listener) (run, stop func(ctx context.Context) error) {
	run = func(context.Context) error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("grpc server: %w", err)
		}
		return nil
	}
	stop = func(ctx context.Context) error {
		done := make(chan struct{})
		go func() {
			srv.GracefulStop()
			close(done)
		}()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			srv.Stop()
			<-done
			return fmt.Errorf("grpc server graceful stop: %w", ctx.Err())
		}
	}
	return run, stop
}
