package observe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/observe"
	"github.com/svckit/svckit/svcerr"
	"github.com/svckit/svckit/transport/meta"
)

func ExampleNewLogger() {
	var buf bytes.Buffer // os.Stdout in a service
	logger := observe.NewLogger(&buf, observe.LogOptions{Service: "greeter", Level: slog.LevelInfo})

	// A transport puts the request id (and the span) into the context of each call.
	ctx := meta.WithRequestID(context.Background(), "req-42")
	logger.InfoContext(ctx, "user created", "user", "bob")

	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		fmt.Println(err)
	}
	fmt.Println(line["level"], line["msg"], line["service"], line["user"], line["request_id"])
	// Output: INFO user created greeter bob req-42
}

func ExampleMetrics_Middleware() {
	reg := observe.NewRegistry() // serve it with observe.MetricsHandler(reg) on /metrics
	metrics, err := observe.NewMetrics(reg)
	if err != nil {
		fmt.Println(err)
		return
	}

	hello := func(_ context.Context, name string) (string, error) {
		if name == "" {
			return "", svcerr.Invalid("name", "is required")
		}
		return "hello " + name, nil
	}
	info := endpoint.Info{Service: "greeter", Method: "Hello", Transport: "http"}
	e := endpoint.Wrap(info, hello, metrics.Middleware())

	ctx := context.Background()
	for _, name := range []string{"bob", "alice", ""} {
		_, _ = e(ctx, name)
	}

	fams, _ := reg.Gather()
	for _, f := range fams {
		switch f.GetName() {
		case "svckit_requests_total", "svckit_request_errors_total":
			for _, m := range f.GetMetric() {
				fmt.Print(f.GetName())
				for _, l := range m.GetLabel() {
					fmt.Printf(" %s=%s", l.GetName(), l.GetValue())
				}
				fmt.Println(" :", m.GetCounter().GetValue())
			}
		}
	}
	// Output:
	// svckit_request_errors_total kind=invalid_argument method=Hello service=greeter side=server transport=http : 1
	// svckit_requests_total method=Hello service=greeter side=server transport=http : 3
}

// Example wires the whole observability stack for one endpoint, as a service's main does.
func Example() {
	ctx := context.Background()
	logger := observe.NewLogger(os.Stderr, observe.LogOptions{Service: "greeter"})

	// Configured by OTEL_* variables; with none set, nothing is exported.
	tp, err := observe.NewTracerProvider(ctx, observe.TracingOptions{Service: "greeter", Version: "1.0.0"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = tp.Shutdown(ctx) }() // flushes buffered spans

	metrics, err := observe.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		fmt.Println(err)
		return
	}

	hello := func(_ context.Context, name string) (string, error) { return "hello " + name, nil }
	info := endpoint.Info{Service: "greeter", Method: "Hello", Transport: "http"}
	e := endpoint.Wrap(info, hello,
		observe.Tracing(tp),       // outermost: the span covers the rest
		observe.AccessLog(logger), // its line carries the span's ids
		metrics.Middleware(),
	)

	// A transport sets the request id and the remote parent before calling e.
	ctx = meta.WithRequestID(ctx, meta.NewRequestID())
	greeting, err := e(ctx, "bob")
	fmt.Println(greeting, err)
	// Output: hello bob <nil>
}
