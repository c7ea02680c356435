package deploy

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/nats-io/nats-server/v2/conf"
)

// natsVarRE matches a $VAR reference where a value starts (after "key:"), the only place
// the renderer writes one; quoted subjects such as "$JS.API.>" are not references.
var natsVarRE = regexp.MustCompile(`(:\s*)\$([A-Za-z_][A-Za-z0-9_]*)`)

// natsVarMark stands, in a parsed configuration, for a $VAR reference: the variable's
// name follows it.
const natsVarMark = "svckit-nats-var:"

// parseNATSConf parses a nats-server configuration with nats-server's own parser, its
// $VAR references kept as natsVarMark+VAR strings (their values are in the pod's
// environment, not here).
func parseNATSConf(text string) (map[string]any, error) {
	m, err := conf.Parse(natsVarRE.ReplaceAllString(text, `$1"`+natsVarMark+`$2"`))
	if err != nil {
		return nil, fmt.Errorf("nats.conf: %w", err)
	}
	return m, nil
}

// nats checks the NATS servers and their clients: every service that reads NATS_URL
// logs in as its own user, with NATS_PASSWORD from a Secret made in the cluster (or
// NATS_CREDS / NATS_NKEY, files of a mounted Secret), and verifies the servers with
// NATS_TLS_CA, a file of a mounted Secret; the servers' configuration has an
// authorization block with that user for each (its password the same Secret's value,
// through the pod's environment; publishing only where its permissions allow, never
// everywhere) and no anonymous user, and TLS on the client port and, in a cluster, on
// the routes, with certificate files of a mounted Secret that a Certificate writes.
func (c *prodCheck) nats() {
	if !usesNATS(c.sys) {
		return
	}
	sts, ok := c.get("StatefulSet", "nats")
	if !ok {
		c.errf("no StatefulSet nats, though services read %s", envNATSURL)
		return
	}
	var nc map[string]any
	for _, ct := range containers(sts) {
		if ct["name"] == "nats" {
			nc = ct
		}
	}
	cm, ok := c.get("ConfigMap", "nats-config")
	text, _ := asMap(cm["data"])["nats.conf"].(string)
	if !ok || text == "" || nc == nil {
		c.errf("StatefulSet/nats: no container nats or no ConfigMap nats-config with nats.conf")
		return
	}
	cfg, err := parseNATSConf(text)
	if err != nil {
		c.errf("ConfigMap/nats-config: %v", err)
		return
	}
	// The NATS pod's environment: variable → the Secret and key its value comes from,
	// directly or quoted through $(RAW).
	natsEnv := map[string][2]string{}
	raw := map[string][2]string{}
	for _, x := range asList(nc["env"]) {
		e := asMap(x)
		name := fmt.Sprint(e["name"])
		if ref := asMap(asMap(e["valueFrom"])["secretKeyRef"]); ref != nil {
			raw[name] = [2]string{fmt.Sprint(ref["name"]), fmt.Sprint(ref["key"])}
			natsEnv[name] = raw[name]
		}
		if v, ok := e["value"].(string); ok && strings.HasPrefix(v, `"$(`) && strings.HasSuffix(v, `)"`) {
			if r, ok := raw[strings.TrimSuffix(strings.TrimPrefix(v, `"$(`), `)"`)]; ok {
				natsEnv[name] = r
			}
		}
	}

	// Authorization.
	if _, ok := cfg["no_auth_user"]; ok {
		c.errf("ConfigMap/nats-config: no_auth_user lets anonymous clients in")
	}
	auth := asMap(cfg["authorization"])
	if auth == nil {
		c.errf("ConfigMap/nats-config: no authorization block: NATS takes anonymous clients")
	}
	users := map[string]map[string]any{}
	for _, x := range asList(auth["users"]) {
		u := asMap(x)
		users[fmt.Sprint(u["user"])] = u
	}
	if auth != nil && len(users) == 0 && auth["token"] == nil && auth["user"] == nil {
		c.errf("ConfigMap/nats-config: the authorization block has no users")
	}
	for i := range c.sys.Services {
		s := &c.sys.Services[i]
		if _, ok := s.Setting(envNATSURL); ok {
			c.natsClient(s, users, natsEnv)
		}
	}

	// TLS on the client port and the routes.
	c.natsTLS(sts, nc, "client port", asMap(cfg["tls"]))
	if natsReplicasOf(c.verifier) > 1 {
		cl := asMap(cfg["cluster"])
		if cl == nil {
			c.errf("ConfigMap/nats-config: %d replicas but no cluster block", natsReplicasOf(c.verifier))
		} else {
			c.natsTLS(sts, nc, "routes (cluster)", asMap(cl["tls"]))
		}
	}
}

// natsClient checks one service's NATS identity and TLS, and its user on the server.
func (c *prodCheck) natsClient(s *Service, users map[string]map[string]any, natsEnv map[string][2]string) {
	where := "Deployment/" + s.Name
	dep, ok := c.get("Deployment", s.Name)
	if !ok {
		return // mtls reports it
	}
	var ct map[string]any
	for _, x := range containers(dep) {
		if x["name"] == s.Name {
			ct = x
		}
	}
	env := map[string]map[string]any{}
	for _, x := range asList(ct["env"]) {
		env[fmt.Sprint(asMap(x)["name"])] = asMap(x)
	}
	value := func(name string) string {
		e, ok := env[name]
		if !ok {
			return ""
		}
		v, _ := c.resolve(where, e)
		return v
	}
	mounted := func(name string) bool {
		f := value(name)
		secret, _ := c.mountedSecret(dep, ct, f)
		if f != "" && secret == "" {
			c.errf("%s: %s=%s is not a file of a mounted Secret", where, name, f)
		}
		return f != "" && secret != ""
	}
	if value(envNATSTLSCA) == "" {
		c.errf("%s: %s is not set: the service talks to NATS without TLS", where, envNATSTLSCA)
	} else {
		mounted(envNATSTLSCA)
	}
	if value("NATS_CREDS") != "" || value("NATS_NKEY") != "" {
		// An operator's identity (JWT or nkey): the server's accounts are the operator's.
		mounted("NATS_CREDS")
		mounted("NATS_NKEY")
		return
	}
	user := value(envNATSUser)
	if user == "" {
		c.errf("%s: %s is not set: the service has no NATS identity of its own", where, envNATSUser)
		return
	}
	pw := env[envNATSPassword]
	ref := asMap(asMap(pw["valueFrom"])["secretKeyRef"])
	if ref == nil {
		c.errf("%s: %s does not come from a Secret", where, envNATSPassword)
		return
	}
	secret := [2]string{fmt.Sprint(ref["name"]), fmt.Sprint(ref["key"])}
	if v, _ := c.resolve(where, pw); v != madeValue {
		c.errf("%s: %s comes from Secret %s, which is not made in the cluster (External Secrets)", where, envNATSPassword, secret[0])
	}
	u, ok := users[user]
	if !ok {
		c.errf("ConfigMap/nats-config: no user %s for %s", user, s.Name)
		return
	}
	p, _ := u["password"].(string)
	v, isVar := strings.CutPrefix(p, natsVarMark)
	switch {
	case !isVar:
		c.errf("ConfigMap/nats-config: user %s: the password is written in the configuration, not taken from its Secret", user)
	case natsEnv[v] != secret:
		c.errf("ConfigMap/nats-config: user %s: password $%s is not the value of Secret %s key %s that %s logs in with", user, v, secret[0], secret[1], s.Name)
	}
	pub := asMap(asMap(u["permissions"])["publish"])
	allow := asList(pub["allow"])
	if pub == nil || allow == nil || slices.Contains(allow, any(">")) {
		c.errf("ConfigMap/nats-config: user %s may publish on every subject: another service's events could be forged", user)
	}
}

// natsTLS checks a tls block of the NATS configuration: its certificate, key and CA are
// files of a mounted Secret that a Certificate writes.
func (c *prodCheck) natsTLS(sts Object, nc map[string]any, what string, tls map[string]any) {
	if tls == nil {
		c.errf("ConfigMap/nats-config: no TLS on the %s", what)
		return
	}
	for _, k := range []string{"cert_file", "key_file", "ca_file"} {
		f, _ := tls[k].(string)
		secret, _ := c.mountedSecret(sts, nc, f)
		if secret == "" {
			c.errf("ConfigMap/nats-config: TLS on the %s: %s %q is not a file of a mounted Secret", what, k, f)
			continue
		}
		found := false
		for _, o := range c.order {
			found = found || (o.Kind() == "Certificate" && o.str("spec", "secretName") == secret)
		}
		if !found {
			c.errf("ConfigMap/nats-config: TLS on the %s: no Certificate writes Secret %s (%s)", what, secret, path.Base(f))
		}
	}
}
