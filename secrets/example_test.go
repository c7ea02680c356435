package secrets_test

import (
	"context"
	"fmt"

	"github.com/svckit/svckit/secrets"
)

// A chain reads a secret from the environment first and from a mounted directory next;
// the value prints masked until revealed.
func ExampleChain() {
	env := map[string]string{"SHOP_DB_PASSWORD": "correct horse"}
	store := secrets.Chain{
		secrets.Env{Prefix: "shop", Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }},
		secrets.NewDir("/var/run/secrets/shop", 0),
	}
	pw, err := store.Get(context.Background(), "db-password")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(pw, len(pw.Reveal()))
	// Output: ****** 13
}
