package run

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"google.golang.org/grpc"
)

// HTTPServer returns the run and stop funcs of an actor serving srv on ln, for
// [Group.Add]. run serves until the server is shut down, treating http.ErrServerClosed as
// a clean exit. stop calls srv.Shutdown, which closes the listener and idle connections and
// waits for in-flight requests to finish; if ctx's deadline passes first, stop closes every
// connection with srv.Close and returns the deadline error. Shutdown does not wait for
// hijacked connections such as WebSockets; register their closing with
// srv.RegisterOnShutdown.
func HTTPServer(srv *http.Server, ln net.Listener) (run, stop func(ctx context.Context) error) {
	run = func(context.Context) error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	}
	stop = func(ctx context.Context) error {
		if err := srv.Shutdown(ctx); err != nil {
			return errors.Join(fmt.Errorf("http server shutdown: %w", err), srv.Close())
		}
		return nil
	}
	return run, stop
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
