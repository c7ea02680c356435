// Command relay is a tiny test service for the dashboard: POST /add {"a":1,"b":2} calls
// addsvc's Sum over gRPC with svckit's client, so that a trace spans two processes
// (relay's server span → its client span → addsvc's server span).
package main

import (
	"context"
	"errors"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/examples/addsvc/addsvc"
	sgrpc "github.com/svckit/svckit/transport/grpc"
	shttp "github.com/svckit/svckit/transport/http"
)

// AddRequest is the request of Add.
type AddRequest struct {
	A int64 `json:"a"`
	B int64 `json:"b"`
}

// AddResponse is the response of Add.
type AddResponse struct {
	Sum int64 `json:"sum"`
}

func main() {
	svckit.Main("relay", &svckit.Config{}, func(_ context.Context, app *svckit.App) error {
		addr, _, _ := strings.Cut(os.Getenv("ADDSVC_GRPC_ADDRS"), ",")
		if addr == "" {
			return errors.New("ADDSVC_GRPC_ADDRS is not set")
		}
		cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		app.OnClose("addsvc client", func(context.Context) error { return cc.Close() })
		add := addsvc.NewGRPCClient(cc, sgrpc.WithClientMiddleware(app.Middleware()...),
			sgrpc.WithClientServiceLabel("addsvc"))
		log := app.Logger()
		shttp.Handle(app.HTTP(), "POST /add", "Add", func(ctx context.Context, req AddRequest) (AddResponse, error) {
			log.InfoContext(ctx, "relaying to addsvc", "a", req.A, "b", req.B)
			resp, err := add.Sum(ctx, addsvc.SumRequest{A: req.A, B: req.B})
			if err != nil {
				return AddResponse{}, err
			}
			return AddResponse{Sum: resp.V}, nil
		})
		return nil
	})
}
