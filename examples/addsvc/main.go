// Command addsvc is go-kit's canonical example service on svckit: Sum and Concat over HTTP
// and gRPC, and a server-streaming Range over gRPC, with logs, metrics, traces, health and
// graceful shutdown from svckit's defaults.
//
//	go run ./examples/addsvc -http-addr :8080 -grpc-addr :8081 -admin-addr :9090
//	curl -s -H 'Content-Type: application/json' -d '{"a":1,"b":2}' localhost:8080/sum
package main

import (
	"context"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/examples/addsvc/addsvc"
)

func main() {
	svckit.Main("addsvc", &svckit.Config{}, func(_ context.Context, app *svckit.App) error {
		e := addsvc.MakeEndpoints(addsvc.New())
		addsvc.RegisterHTTP(app.HTTP(), e)
		addsvc.RegisterGRPC(app.GRPC(addsvc.GRPCService), e)
		return nil
	})
}
