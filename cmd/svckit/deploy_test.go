package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/svckit/svckit/internal/deploy"
)

func TestDeployUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"deploy"}, 2, "usage: svckit deploy render"},
		{[]string{"deploy", "apply"}, 2, "usage: svckit deploy render"},
		{[]string{"deploy", "render", "-overlay", "staging"}, 2, `-overlay "staging"`},
		{[]string{"deploy", "render", "-check", "-overlay", "dev"}, 2, "-check compares a kustomize tree"},
		{[]string{"deploy", "render", "a", "b"}, 2, "usage: svckit deploy render"},
		{[]string{"deploy", "render", t.TempDir()}, 1, "neither svckit.yaml nor cmd/NAME/main.go"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tt.args, &out, &errb); code != tt.code || !strings.Contains(errb.String(), tt.want) {
				t.Errorf("code %d, stderr %q; want %d and %q", code, errb.String(), tt.code, tt.want)
			}
		})
	}
}

// TestDeployNewService renders manifests for a service made by svckit new and checks them
// against its settings (the integration test TestNewDockerBuild runs its Dockerfile's
// build line).
func TestDeployNewService(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("builds a new service")
	}
	root := moduleRoot(t)
	dir := t.TempDir()
	t.Chdir(dir)
	var out, errb bytes.Buffer
	if code := run([]string{"new", "-svckit", root, "greeter"}, &out, &errb); code != 0 {
		t.Fatalf("svckit new: code %d\n%s%s", code, out.String(), errb.String())
	}
	svc := filepath.Join(dir, "greeter")
	k8s := filepath.Join(svc, "deploy", "k8s")
	if code := run([]string{"deploy", "render", "-o", k8s, svc}, &out, &errb); code != 0 {
		t.Fatalf("deploy render: code %d\n%s", code, errb.String())
	}
	sys, err := deploy.LoadSystem(context.Background(), svc)
	if err != nil {
		t.Fatal(err)
	}
	for _, ov := range deploy.Overlays {
		objs, err := deploy.BuildTree(filepath.Join(k8s, "overlays", ov))
		if err != nil {
			t.Fatal(err)
		}
		if err := deploy.Verify(objs, sys); err != nil {
			t.Errorf("%s overlay of a new service: %v", ov, err)
		}
	}
}

// TestDockerfilesAgree checks that svckit new's Dockerfile builds as the shop's does.
func TestDockerfilesAgree(t *testing.T) {
	shop, err := os.ReadFile(filepath.Join(moduleRoot(t), "examples", "shop", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	dockerfile, err := execTemplate("Dockerfile.tmpl", scaffoldData{Name: "greeter", RelDir: "services/greeter"})
	if err != nil {
		t.Fatal(err)
	}
	pick := func(text string) map[string]string {
		m := map[string]string{}
		for _, l := range strings.Split(strings.ReplaceAll(text, "\\\n", " "), "\n") {
			f := strings.Fields(l)
			if len(f) == 0 {
				continue
			}
			switch f[0] {
			case "FROM", "USER", "EXPOSE", "ENTRYPOINT":
				m[f[0]+" "+strings.Join(f[1:], " ")] = "present"
			case "RUN":
				if i := strings.Index(l, "CGO_ENABLED=0"); i >= 0 {
					m["build flags"] = regexp.MustCompile(` -o \S+ \S+$`).ReplaceAllString(strings.TrimSpace(l[i:]), "")
				}
			}
		}
		delete(m, "ENTRYPOINT [\"/service\"]")
		delete(m, "ENTRYPOINT [\"/greeter\"]")
		return m
	}
	s, n := pick(string(shop)), pick(string(dockerfile))
	if len(s) < 5 {
		t.Fatalf("the shop's Dockerfile parsed to %v", s)
	}
	for k, v := range s {
		if n[k] != v {
			t.Errorf("shop Dockerfile has %s = %q; svckit new's has %q", k, v, n[k])
		}
	}
	for k := range n {
		if _, ok := s[k]; !ok {
			t.Errorf("svckit new's Dockerfile has %s; the shop's has not", k)
		}
	}
}
