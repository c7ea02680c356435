package resilience_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/resilience"
	"github.com/svckit/svckit/svcerr"
)

func ExampleRecover() {
	// A JSON logger as in production, without the time and the stack, which change from
	// run to run.
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "stack" {
				return slog.Attr{}
			}
			return a
		},
	}))
	lookup := func(_ context.Context, id int) (string, error) {
		names := []string{"ada", "grace"}
		return names[id], nil // panics for an unknown id
	}
	info := endpoint.Info{Service: "users", Method: "Name", Transport: "http"}
	e := endpoint.Wrap(info, lookup, resilience.Recover(logger))

	_, err := e(context.Background(), 5)
	fmt.Println(svcerr.KindOf(err), svcerr.From(err).Message)
	name, err := e(context.Background(), 1)
	fmt.Println(name, err)
	// Output:
	// {"level":"ERROR","msg":"panic in endpoint","service":"users","method":"Name","transport":"http","panic":"runtime error: index out of range [5] with length 2"}
	// internal internal error
	// grace <nil>
}

func ExampleTimeout() {
	// slow honours its context, as every endpoint should.
	slow := func(ctx context.Context, _ struct{}) (string, error) {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Minute):
			return "done", nil
		}
	}
	info := endpoint.Info{Service: "report", Method: "Build"}
	e := endpoint.Wrap(info, slow, resilience.Timeout(10*time.Millisecond))

	_, err := e(context.Background(), struct{}{})
	fmt.Println(svcerr.KindOf(err))
	fmt.Println(svcerr.From(err).Message) // what callers see
	fmt.Println(err)                      // what the logs see
	// Output:
	// deadline_exceeded
	// report.Build timed out after 10ms
	// deadline_exceeded: report.Build timed out after 10ms: context deadline exceeded
}
