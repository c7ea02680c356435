package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/svckit/svckit/internal/devrun"
)

// System is what the renderer needs to know of a system of services: what `svckit dev`
// reads from svckit.yaml, and each service's settings.
type System struct {
	// Name names the system ("shop"); it prefixes image names and names the shared
	// ConfigMap.
	Name string
	// Services lists the services in start order.
	Services []Service
}

// Service is one service of a System.
type Service struct {
	// Name is the service name: its Deployment, Services and container are named after it.
	Name string
	// Package is the service's main package, relative to the system's directory.
	Package string
	// Replicas is the number of replicas in svckit.yaml (at least 1).
	Replicas int
	// Public marks the service that takes traffic from outside the cluster.
	Public bool
	// Env holds extra environment variables from svckit.yaml; each must name a setting.
	Env map[string]string
	// Args are extra command-line arguments from svckit.yaml.
	Args []string
	// Settings are the service's settings, as its -help lists them.
	Settings []Setting
	// Publish are the NATS subjects the service publishes its events on, from
	// svckit.yaml's publish; empty means NAME.> and *.NAME.>, as `svckit dev` has it.
	Publish []string
	// Subscribe are the core NATS subjects the service subscribes to beyond its reply
	// inboxes, from svckit.yaml's subscribe.
	Subscribe []string
}

// Setting returns the service's setting read from the environment variable env.
func (s *Service) Setting(env string) (Setting, bool) {
	for _, st := range s.Settings {
		if st.Env == env {
			return st, true
		}
	}
	return Setting{}, false
}

// Port returns the port of the listener whose address setting is env (HTTP_ADDR,
// GRPC_ADDR, ADMIN_ADDR), from the setting's default; 0 if there is none.
func (s *Service) Port(env string) int {
	st, ok := s.Setting(env)
	if !ok || st.Default == "" {
		return 0
	}
	_, p, err := net.SplitHostPort(st.Default)
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return 0
	}
	return n
}

// Service returns the service named name, or nil.
func (s *System) Service(name string) *Service {
	for i := range s.Services {
		if s.Services[i].Name == name {
			return &s.Services[i]
		}
	}
	return nil
}

// LoadSystem describes the system in dir: the services of dir/svckit.yaml (the file
// `svckit dev` reads), or, without one, every main package under dir/cmd (the layout
// `svckit new` writes). It builds each service with the go command into a temporary
// directory and runs it with -help to learn its settings.
func LoadSystem(ctx context.Context, dir string) (*System, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	sys, err := describe(abs)
	if err != nil {
		return nil, err
	}
	bin, err := os.MkdirTemp("", "svckit-deploy-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(bin)
	// One go build for all: it builds the packages in parallel.
	args := []string{"build", "-o", bin + string(filepath.Separator)}
	for _, s := range sys.Services {
		args = append(args, s.Package)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = abs
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("deploy: building the services: %w\n%s", err, out)
	}
	for i := range sys.Services {
		s := &sys.Services[i]
		exe := filepath.Join(bin, path.Base(strings.TrimSuffix(s.Package, "/")))
		if s.Settings, err = Inspect(ctx, exe); err != nil {
			return nil, fmt.Errorf("deploy: service %s: %w", s.Name, err)
		}
	}
	return sys, nil
}

// describe reads the system's manifest or finds its commands, without building them.
func describe(dir string) (*System, error) {
	m, err := devrun.LoadManifest(dir)
	if err == nil {
		sys := &System{Name: m.Name}
		for _, s := range m.Services {
			sys.Services = append(sys.Services, Service{Name: s.Name, Package: s.Package, Replicas: s.Replicas,
				Public: s.Public, Env: s.Env, Args: s.Args, Publish: s.Publish, Subscribe: s.Subscribe})
		}
		return sys, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	mains, _ := filepath.Glob(filepath.Join(dir, "cmd", "*", "main.go"))
	if len(mains) == 0 {
		return nil, fmt.Errorf("deploy: %s has neither %s nor cmd/NAME/main.go", dir, devrun.ManifestFile)
	}
	sys := &System{Name: filepath.Base(dir)}
	for _, m := range mains {
		name := filepath.Base(filepath.Dir(m))
		sys.Services = append(sys.Services, Service{Name: name, Package: "./cmd/" + name, Replicas: 1, Public: len(mains) == 1})
	}
	return sys, nil
}

// validate checks what the renderer relies on: names usable as Kubernetes names, and
// extra environment variables that name real settings.
func (s *System) validate() error {
	if s.Name == "" {
		return errors.New("deploy: the system has no name")
	}
	if len(s.Services) == 0 {
		return errors.New("deploy: the system has no services")
	}
	for _, svc := range s.Services {
		if len(svc.Settings) == 0 {
			return fmt.Errorf("deploy: service %s: no settings (was it inspected?)", svc.Name)
		}
		if svc.Port(envAdminAddr) == 0 {
			return fmt.Errorf("deploy: service %s: no admin port (%s has no host:port default)", svc.Name, envAdminAddr)
		}
		for _, k := range slices.Sorted(maps.Keys(svc.Env)) {
			if _, ok := svc.Setting(k); !ok && !isPlatformEnv(k) {
				return fmt.Errorf("deploy: service %s: env %s in %s is not one of its settings", svc.Name, k, devrun.ManifestFile)
			}
		}
		if reserved := map[string]bool{"nats": true, "nats-headless": true, "postgres": true, "otel-collector": true, "jaeger": true}; reserved[svc.Name] || strings.HasSuffix(svc.Name, "-headless") {
			return fmt.Errorf("deploy: service name %q clashes with a name the manifests use", svc.Name)
		}
	}
	return nil
}
