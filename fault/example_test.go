package fault_test

import (
	"context"
	"fmt"
	"time"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/fault"
	"github.com/svckit/svckit/svcerr"
)

// An Injector's middleware wraps the endpoints; rules change while they serve and end by
// themselves.
func Example() {
	inj := fault.New()
	reserve := endpoint.Wrap(endpoint.Info{Service: "catalog", Method: "Reserve"},
		func(_ context.Context, sku string) (string, error) { return "reserved " + sku, nil },
		inj.Middleware())

	fmt.Println(reserve(context.Background(), "sku-1"))

	// Abort every call of catalog.Reserve with Unavailable for a minute.
	if err := inj.Add(fault.Rule{Method: "catalog.Reserve", AbortPercent: 100, Kind: svcerr.Unavailable, For: time.Minute}); err != nil {
		fmt.Println(err)
		return
	}
	_, err := reserve(context.Background(), "sku-1")
	fmt.Println(svcerr.KindOf(err), err)

	inj.Clear()
	fmt.Println(reserve(context.Background(), "sku-1"))
	// Output:
	// reserved sku-1 <nil>
	// unavailable unavailable: injected fault
	// reserved sku-1 <nil>
}

// The FAULTS setting holds rules as text.
func ExampleParseRules() {
	rules, err := fault.ParseRules("catalog.Reserve abort=unavailable abort_percent=20; payments.Charge delay=300ms for=1m")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range rules {
		fmt.Printf("%s delay=%s (%v%%) abort=%s (%v%%) for=%s\n", r.Method, r.Delay, r.DelayPercent, r.Kind, r.AbortPercent, r.For)
	}
	// Output:
	// catalog.Reserve delay=0s (0%) abort=unavailable (20%) for=0s
	// payments.Charge delay=300ms (100%) abort=unknown (0%) for=1m0s
}
