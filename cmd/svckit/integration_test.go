//go:build integration

package main

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/svckit/svckit/internal/deploy"
)

// TestNewWithBatteries is TestNewOutsideModule with every battery: the new service's test
// runs its store on a SQLite file and its bus on an embedded NATS server and receives the
// event that the outbox relays; its command runs with those settings.
func TestNewWithBatteries(t *testing.T) {
	newOutsideModule(t, "store,bus,outbox,peer:users")
}

// TestNewWithBatteriesInsideModule is TestNewInsideModule with a service with a store and
// one with a bus and a peer beside the plain one.
func TestNewWithBatteriesInsideModule(t *testing.T) {
	newInsideModule(t, []string{"-with store payments", "-with bus,peer:orders notifier"})
}

// TestNewDockerBuild builds a new service's command with its Dockerfile's go build line
// (CGO_ENABLED=0, -trimpath, -ldflags "-s -w": every dependency compiled anew), checks
// that the binary is static and stripped, and runs it.
func TestNewDockerBuild(t *testing.T) {
	root := moduleRoot(t)
	dir := t.TempDir()
	t.Chdir(dir)
	var out, errb bytes.Buffer
	if code := run([]string{"new", "-svckit", root, "greeter"}, &out, &errb); code != 0 {
		t.Fatalf("svckit new: code %d\n%s%s", code, out.String(), errb.String())
	}
	svc := filepath.Join(dir, "greeter")
	runScaffold(t, svc, filepath.Join(svc, "Dockerfile"), true)
}

// TestDeployRenderShop runs svckit deploy render -check on the shop, and renders the prod
// overlay as one stream. It builds the five shop services (internal/deploy's TestShop,
// which runs with every go test, checks the same manifests against them).
func TestDeployRenderShop(t *testing.T) {
	root := moduleRoot(t)
	var out, errb bytes.Buffer
	if code := run([]string{"deploy", "render", "-check", "-o", filepath.Join(root, "deploy", "k8s"), filepath.Join(root, "examples", "shop")}, &out, &errb); code != 0 {
		t.Fatalf("deploy render -check: code %d\n%s", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"deploy", "render", "-overlay", "prod", "-registry", "ghcr.io/acme", "-tag", "v1", filepath.Join(root, "examples", "shop")}, &out, &errb); code != 0 {
		t.Fatalf("deploy render -overlay prod: code %d\n%s", code, errb.String())
	}
	objs, err := deploy.ReadObjects(&out)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.Kind()]++
		if o.ID() == "Deployment/orders" {
			c := o.Get("spec", "template", "spec", "containers").([]any)[0].(map[string]any)
			if c["image"] != "ghcr.io/acme/shop-orders:v1" {
				t.Errorf("orders image %v", c["image"])
			}
		}
	}
	if kinds["Deployment"] != 6 || kinds["HorizontalPodAutoscaler"] != 5 || kinds["StatefulSet"] != 1 || objs[0].Kind() != "Namespace" {
		t.Errorf("prod overlay: kinds %v, first %s", kinds, objs[0].ID())
	}
}
