// Package devrun runs a whole system of svckit services on one machine, as `svckit dev`
// does: it reads a manifest (or discovers the services of a module without one), builds
// every service, starts an embedded NATS server and each service as its own supervised OS
// process on automatically assigned loopback ports, restarts crashed processes with
// backoff (a process that reports a configuration error waits for a rebuild instead), and
// gathers every process's log lines, OTLP traces and metrics in one place for the
// terminal and the dashboard.
package devrun

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ManifestFile is the name of the manifest in a system's directory.
const ManifestFile = "svckit.yaml"

// Manifest describes a system of services.
type Manifest struct {
	// Name names the system, for example "shop".
	Name string `yaml:"name"`
	// Services lists the services in start order.
	Services []Service `yaml:"services"`
	// MTLS makes the services call each other over mutual TLS: `svckit dev` keeps a
	// development CA in the state directory, issues every service a certificate at each
	// start and passes it in TLS_CERT, TLS_KEY and TLS_CA. Off by default.
	MTLS bool `yaml:"mtls"`
	// Dir is the directory the manifest was read from; packages are relative to it.
	Dir string `yaml:"-"`
	// Discovered is set when there was no svckit.yaml and Discover made the manifest.
	Discovered bool `yaml:"-"`
}

// Service describes one service of the system.
type Service struct {
	// Name is the service name, also the prefix of its log lines.
	Name string `yaml:"name"`
	// Package is the Go main package of the service, relative to the manifest's directory
	// ("./gateway") or a full import path.
	Package string `yaml:"package"`
	// Replicas is the number of processes to run (default 1).
	Replicas int `yaml:"replicas"`
	// Public marks the service whose HTTP address is printed as the system's entry point.
	Public bool `yaml:"public"`
	// Env sets extra environment variables for the service's processes.
	Env map[string]string `yaml:"env"`
	// Args are extra command-line arguments.
	Args []string `yaml:"args"`
	// Publish are the NATS subjects the service publishes its events on (wildcards
	// allowed). The embedded NATS server refuses its publishes on any other subject.
	// Default: NAME.> and *.NAME.> — events named for the service, such as
	// shop.orders.confirmed for orders.
	Publish []string `yaml:"publish"`
	// Subscribe are core NATS subjects the service subscribes to beyond its reply inboxes
	// (JetStream consumers need none: their messages arrive on the inbox). Default none.
	Subscribe []string `yaml:"subscribe"`
}

// PublishSubjects returns the subjects the service may publish its events on: Publish, or
// the default NAME.> and *.NAME.>.
func (s *Service) PublishSubjects() []string {
	if len(s.Publish) > 0 {
		return s.Publish
	}
	return []string{s.Name + ".>", "*." + s.Name + ".>"}
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,30}$`)

// LoadManifest reads dir/svckit.yaml. Every error names the file and the offending field.
func LoadManifest(dir string) (*Manifest, error) {
	path := filepath.Join(dir, ManifestFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return ParseManifest(path, b)
}

// ParseManifest parses manifest bytes read from path.
func ParseManifest(path string, b []byte) (*Manifest, error) {
	var m Manifest
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		// yaml lists several problems on separate lines; keep the error on one line.
		msg := strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n")
		msg = strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", "; ")), " ")
		return nil, fmt.Errorf("manifest %s: %s", path, msg)
	}
	m.Dir = filepath.Dir(path)
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	return &m, nil
}

func (m *Manifest) validate() error {
	if m.Name == "" {
		return errors.New("name: is required")
	}
	if len(m.Services) == 0 {
		return errors.New("services: at least one service is required")
	}
	seen := map[string]bool{}
	for i := range m.Services {
		s := &m.Services[i]
		where := fmt.Sprintf("services[%d]", i)
		if !nameRE.MatchString(s.Name) {
			return fmt.Errorf("%s.name: %q must be lower-case letters, digits and dashes, starting with a letter", where, s.Name)
		}
		if seen[s.Name] {
			return fmt.Errorf("%s.name: %q appears twice", where, s.Name)
		}
		seen[s.Name] = true
		if s.Package == "" {
			return fmt.Errorf("%s (%s).package: is required", where, s.Name)
		}
		if s.Replicas < 0 || s.Replicas > 32 {
			return fmt.Errorf("%s (%s).replicas: %d is not between 1 and 32", where, s.Name, s.Replicas)
		}
		if s.Replicas == 0 {
			s.Replicas = 1
		}
	}
	return nil
}

// Service returns the service named name, or nil.
func (m *Manifest) Service(name string) *Service {
	for i := range m.Services {
		if m.Services[i].Name == name {
			return &m.Services[i]
		}
	}
	return nil
}

// SetReplicas applies "NAME=N" overrides such as those given with -replicas.
func (m *Manifest) SetReplicas(specs []string) error {
	for _, spec := range specs {
		name, n, ok := strings.Cut(spec, "=")
		var count int
		if _, err := fmt.Sscan(n, &count); !ok || err != nil || count < 1 || count > 32 {
			return fmt.Errorf("-replicas %q: want NAME=N with N between 1 and 32", spec)
		}
		s := m.Service(name)
		if s == nil {
			return fmt.Errorf("-replicas %q: no service %q in the manifest", spec, name)
		}
		s.Replicas = count
	}
	return nil
}
