package deploy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/svckit/svckit/mtls"
)

// natsPodConf writes an overlay's NATS configuration where nats-server can read it, sets
// the NATS pod's environment as Kubernetes would (each password, from passwords by
// Secret, expanded into the quoted $(RAW) values) and returns nats-server's options as
// it parses them. TLS files are issued by a new CA into a temporary directory.
func natsPodConf(t *testing.T, objs []Object, passwords map[string]string) *server.Options {
	t.Helper()
	dir := t.TempDir()
	text := asMap(find(objs, "ConfigMap/nats-config")["data"])["nats.conf"].(string)
	if strings.Contains(text, natsTLSDir) {
		ca, err := mtls.NewCA()
		if err != nil {
			t.Fatal(err)
		}
		is, err := ca.Issue("nats")
		if err != nil {
			t.Fatal(err)
		}
		for name, b := range map[string][]byte{"tls.crt": is.CertPEM, "tls.key": is.KeyPEM, "ca.crt": ca.CertPEM()} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		text = strings.ReplaceAll(text, natsTLSDir, dir)
	}
	p := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	raw := map[string]string{}
	for _, x := range asList(containers(find(objs, "StatefulSet/nats"))[0]["env"]) {
		e := asMap(x)
		name := e["name"].(string)
		if ref := asMap(asMap(e["valueFrom"])["secretKeyRef"]); ref != nil {
			pw, ok := passwords[ref["name"].(string)]
			if !ok {
				t.Fatalf("no password for Secret %v", ref["name"])
			}
			raw[name] = pw
			continue
		}
		if v, ok := e["value"].(string); ok {
			for r, pw := range raw {
				v = strings.ReplaceAll(v, "$("+r+")", pw)
			}
			t.Setenv(name, v)
		}
	}
	t.Setenv("POD_NAME", "nats-0")
	opts, err := server.ProcessConfigFile(p)
	if err != nil {
		t.Fatalf("nats-server refuses the rendered nats.conf: %v\n%s", err, text)
	}
	return opts
}

// TestNATSConf parses each overlay's NATS configuration with nats-server, with the
// passwords in the pod's environment as Kubernetes puts them there: one user per
// service with the password of its Secret (digits only, which nats-server would read as
// a number unless quoted), and in prod TLS on the client port and the routes.
func TestNATSConf(t *testing.T) {
	sys := testSystem(t)
	tests := []struct {
		overlay  string
		tls      bool
		replicas int
	}{
		{Dev, false, 1},
		{Prod, true, 3},
	}
	for _, tt := range tests {
		t.Run(tt.overlay, func(t *testing.T) {
			objs := renderObjects(t, sys, tt.overlay)
			pw := map[string]string{natsAdminSecret: "0001", "stock-nats": "0123", "front-nats": "4567"}
			opts := natsPodConf(t, objs, pw)
			users := map[string]*server.User{}
			for _, u := range opts.Users {
				users[u.Username] = u
			}
			for name, want := range map[string]string{"svckit-admin": "0001", "stock": "0123", "front": "4567"} {
				if u := users[name]; u == nil || u.Password != want {
					t.Errorf("user %s: %+v, want password %q", name, u, want)
				}
			}
			if len(users) != 3 || opts.NoAuthUser != "" {
				t.Errorf("users %v, no_auth_user %q: want the admin and one user per service, no anonymous user", users, opts.NoAuthUser)
			}
			if u := users["stock"]; u != nil && (u.Permissions == nil || u.Permissions.Publish == nil ||
				!strings.Contains(strings.Join(u.Permissions.Publish.Allow, " "), "*.stock.>")) {
				t.Errorf("stock's permissions %+v: want publish on *.stock.>", u.Permissions)
			}
			if (opts.TLSConfig != nil) != tt.tls || (opts.Cluster.TLSConfig != nil) != (tt.tls && tt.replicas > 1) {
				t.Errorf("TLS on the client port %v, on the routes %v; want %v", opts.TLSConfig != nil, opts.Cluster.TLSConfig != nil, tt.tls)
			}
		})
	}
}

// TestNATSDevServer starts nats-server with the dev overlay's configuration and the
// passwords of its Secrets: an anonymous client is refused, a service logs in with the
// password its Deployment reads from its Secret, and its publish on another service's
// subject is refused.
func TestNATSDevServer(t *testing.T) {
	sys := testSystem(t)
	objs := renderObjects(t, sys, Dev)
	pw := map[string]string{}
	for _, o := range objs {
		if o.Kind() == "Secret" {
			for k, v := range asMap(o["stringData"]) {
				if k == envNATSPassword || k == natsAdminKey {
					pw[o.Name()] = v.(string)
				}
			}
		}
	}
	opts := natsPodConf(t, objs, pw)
	opts.Port, opts.HTTPPort, opts.PidFile, opts.StoreDir = -1, 0, "", t.TempDir()
	opts.NoLog, opts.NoSigs = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	url := srv.ClientURL()
	if nc, err := nats.Connect(url); err == nil {
		nc.Close()
		t.Error("an anonymous client connected")
	}
	ref := asMap(asMap(envEntry(objs, "stock", envNATSPassword)["valueFrom"])["secretKeyRef"])
	user := envEntry(objs, "stock", envNATSUser)["value"].(string)
	denied := make(chan error, 1)
	nc, err := nats.Connect(url, nats.UserInfo(user, pw[ref["name"].(string)]),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case denied <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatalf("stock with the password of its Secret: %v", err)
	}
	defer nc.Close()
	if err := nc.Publish("demo.stock.reserved", nil); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("demo.front.ordered", nil); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	select {
	case err := <-denied:
		if !errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Errorf("error %v, want a permissions violation", err)
		} else if !strings.Contains(err.Error(), "demo.front.ordered") {
			t.Errorf("refused %v; want the publish on demo.front.ordered refused", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("stock published on front's subject demo.front.ordered")
	}
}

// TestNATSUsers checks who gets a NATS user and with which publish subjects: svckit.yaml's
// publish as `svckit dev` reads it (describe), else NAME.> and *.NAME.>; no user for a
// service without the NATS_USER setting or whose svckit.yaml sets another identity.
func TestNATSUsers(t *testing.T) {
	dir := t.TempDir()
	manifest := `name: demo
services:
  - name: stock
    package: ./cmd/stock
    publish: ["demo.inventory.>"]
    subscribe: ["demo.ping"]
  - name: front
    package: ./cmd/front
  - name: creds
    package: ./cmd/creds
    env: {NATS_CREDS: /etc/nats/user.creds}
  - name: plain
    package: ./cmd/plain
`
	if err := os.WriteFile(filepath.Join(dir, "svckit.yaml"), []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	sys, err := describe(dir)
	if err != nil {
		t.Fatal(err)
	}
	full, err := ParseUsage(strings.NewReader(commonUsage))
	if err != nil {
		t.Fatal(err)
	}
	var noUser []Setting
	for _, s := range full {
		if s.Env != envNATSUser && s.Env != envNATSPassword {
			noUser = append(noUser, s)
		}
	}
	for i := range sys.Services {
		sys.Services[i].Settings = full
	}
	sys.Service("plain").Settings = noUser
	got := map[string]natsUserPerms{}
	for _, u := range natsUsers(sys) {
		got[u.Name] = natsUserPerms{u.Password, strings.Join(u.Publish, " "), strings.Join(u.Subscribe, " ")}
	}
	tests := []struct {
		service string
		user    bool
		pub     string // the publish subjects that end the allow list
		sub     string
	}{
		{"stock", true, "demo.inventory.>", "_INBOX.> demo.ping"},
		{"front", true, "front.> *.front.>", "_INBOX.>"},
		{"creds", false, "", ""},
		{"plain", false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			u, ok := got[tt.service]
			if ok != tt.user {
				t.Fatalf("user %v, want %v", ok, tt.user)
			}
			if !ok {
				return
			}
			if u.password != "$"+natsPasswordVar(tt.service) || !strings.HasSuffix(u.pub, " "+tt.pub) || u.sub != tt.sub {
				t.Errorf("password %s, publish %s, subscribe %s; want publish ending %s, subscribe %s", u.password, u.pub, u.sub, tt.pub, tt.sub)
			}
		})
	}
}

type natsUserPerms struct{ password, pub, sub string }
