package gen_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/nats-io/nats.go"

	"github.com/svckit/svckit/examples/addsvc/addsvc"
	"github.com/svckit/svckit/natsserver"
	"github.com/svckit/svckit/svcerr"
	"github.com/svckit/svckit/transport/natsrpc"
)

// Example_nats serves examples/addsvc over NATS request/reply with the generated
// RegisterNATS and calls it with the generated NewNATSClient. In a service, app.NATSRPC
// and app.NATS give the server (with the App's middleware) and the connection.
func Example_nats() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "natsexample")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ns, err := natsserver.Start(ctx, dir)
	if err != nil {
		log.Fatal(err)
	}
	defer ns.Shutdown(ctx)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()

	srv := natsrpc.NewServer(addsvc.GRPCService) // subjects svc.addsvc.Add.<Method>
	addsvc.RegisterNATS(srv, addsvc.MakeEndpoints(addsvc.New()))
	sv, err := srv.Subscribe(nc)
	if err != nil {
		log.Fatal(err)
	}
	defer sv.Drain(ctx)
	fmt.Println(srv.Subjects())

	c := addsvc.NewClient(addsvc.NewNATSClient(nc))
	v, err := c.Sum(ctx, 2, 3)
	fmt.Println(v, err)
	_, err = c.Sum(ctx, 0, 0)
	var se *svcerr.Error
	if errors.As(err, &se) {
		fmt.Println(se.Kind, se.Message)
	}
	_, err = c.Range(ctx, 0, 10)
	fmt.Println(svcerr.KindOf(err))
	// Output:
	// [svc.addsvc.Add.Sum svc.addsvc.Add.Concat]
	// 5 <nil>
	// invalid_argument can't sum two zeroes
	// unimplemented
}
