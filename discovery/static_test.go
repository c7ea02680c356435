package discovery_test

import (
	"time"

	"testing"

	"github.com/svckit/svckit/discovery"
	"github.com/svckit/svckit/discovery/discoverytest"
)

func TestStaticSuite(t *testing.T) {
	r := discovery.NewStatic()
	discoverytest.Run(t, discoverytest.Backend{
		New: func(*testing.T) discovery.Registry { return r },
		TTL: 100 * time.Millisecond,
	})
}
