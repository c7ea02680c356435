package deploy

import (
	"fmt"
	"strings"

	"github.com/svckit/svckit/internal/devrun"
	"github.com/svckit/svckit/natsserver"
)

// The settings of svckit.NATSConfig that carry a service's NATS identity and TLS.
const (
	envNATSUser     = "NATS_USER"
	envNATSPassword = "NATS_PASSWORD"
	envNATSTLSCA    = "NATS_TLS_CA"
)

// natsIdentityEnv are the other identities of svckit.NATSConfig: a service whose
// svckit.yaml env sets one (an operator's .creds file, say) gets no NATS_USER from the
// renderer, as only one identity may be set.
var natsIdentityEnv = []string{"NATS_CREDS", "NATS_NKEY", "NATS_TOKEN", envNATSUser, envNATSPassword}

// Where the NATS server's TLS files are mounted: the Secret of its cert-manager
// Certificate (tls.crt, tls.key, ca.crt).
const natsTLSDir = "/etc/nats-tls"

// natsAdminSecret holds the password of the NATS admin user (natsserver.AdminUser),
// key natsAdminKey: for operators and the nats CLI, never for services.
const (
	natsAdminSecret = "nats-admin"
	natsAdminKey    = "NATS_ADMIN_PASSWORD"
)

// natsSecret is the Secret holding a service's NATS password, key NATS_PASSWORD.
func natsSecret(svc string) string { return svc + "-nats" }

// natsTLSSecret is the Secret cert-manager writes the NATS servers' certificate to.
const natsTLSSecret = "nats-tls"

// natsPasswordVar is the environment variable of the NATS pod holding a service's
// password, quoted for the configuration file's $VAR reference.
func natsPasswordVar(svc string) string {
	return "NATS_PASSWORD_" + strings.ToUpper(strings.ReplaceAll(svc, "-", "_"))
}

// natsUser reports whether the renderer gives the service a NATS user of its own: it
// reads NATS_URL, has the NATS_USER and NATS_PASSWORD settings, and svckit.yaml sets no
// other identity.
func natsUser(s *Service) bool {
	for _, env := range []string{envNATSURL, envNATSUser, envNATSPassword} {
		if _, ok := s.Setting(env); !ok {
			return false
		}
	}
	for _, env := range natsIdentityEnv {
		if _, ok := s.Env[env]; ok {
			return false
		}
	}
	return true
}

// publishSubjects returns the subjects the service may publish its events on, as
// `svckit dev` derives them: svckit.yaml's publish, or NAME.> and *.NAME.>.
func (s *Service) publishSubjects() []string {
	d := devrun.Service{Name: s.Name, Publish: s.Publish}
	return d.PublishSubjects()
}

// natsUsers returns the NATS users of the system's services, with the permissions of
// natsserver.ServiceUser and, as password, the reference to the NATS pod's environment
// variable that holds it.
func natsUsers(sys *System) []natsserver.User {
	var users []natsserver.User
	for i := range sys.Services {
		s := &sys.Services[i]
		if natsUser(s) {
			users = append(users, natsserver.ServiceUser(s.Name, "$"+natsPasswordVar(s.Name), s.publishSubjects(), s.Subscribe))
		}
	}
	return users
}

// natsAuthConf is the authorization block of the NATS configuration: the admin and one
// user per service, every password a $VAR reference to the pod's environment, which
// holds it from a Secret. nats-server reads a variable's value as configuration text,
// so the pod's variables hold the password in double quotes (natsEnv).
func natsAuthConf(sys *System) string {
	users := natsUsers(sys)
	conf := natsserver.AuthConfig("$"+natsAdminKey, users)
	// A quoted "$VAR" is a string; unquoted it is a variable reference.
	conf = strings.ReplaceAll(conf, `"$`+natsAdminKey+`"`, "$"+natsAdminKey)
	for _, u := range users {
		conf = strings.ReplaceAll(conf, `"`+u.Password+`"`, u.Password)
	}
	return conf
}

// natsTLSConf is a tls block of the NATS configuration with the mounted certificate.
func natsTLSConf(indent string) string {
	return fmt.Sprintf("%stls {\n%s  cert_file: %q\n%s  key_file: %q\n%s  ca_file: %q\n%s  timeout: 5\n%s}\n",
		indent, indent, natsTLSDir+"/tls.crt", indent, natsTLSDir+"/tls.key", indent, natsTLSDir+"/ca.crt", indent, indent)
}

// natsEnv returns the NATS container's environment for authorization: each password
// read from its Secret into a raw variable, then quoted (Kubernetes expands $(VAR) in a
// value) into the variable the configuration refers to.
func natsEnv(sys *System) []any {
	var env []any
	add := func(v, secret, key string) {
		raw := v + "_RAW"
		env = append(env,
			omap{{"name", raw}, {"valueFrom", omap{{"secretKeyRef", omap{{"name", secret}, {"key", key}}}}}},
			omap{{"name", v}, {"value", `"$(` + raw + `)"`}})
	}
	add(natsAdminKey, natsAdminSecret, natsAdminKey)
	for i := range sys.Services {
		s := &sys.Services[i]
		if natsUser(s) {
			add(natsPasswordVar(s.Name), natsSecret(s.Name), envNATSPassword)
		}
	}
	return env
}

// natsUserEnv returns a service's NATS identity: its name as NATS_USER, and
// NATS_PASSWORD from its Secret.
func natsUserEnv(s *Service) []any {
	return []any{
		omap{{"name", envNATSUser}, {"value", s.Name}},
		omap{{"name", envNATSPassword}, {"valueFrom", omap{{"secretKeyRef", omap{{"name", natsSecret(s.Name)}, {"key", envNATSPassword}}}}}},
	}
}

// natsSecretDocs returns the Secrets of the NATS passwords: in the dev overlay committed
// development values, in prod ExternalSecrets that External Secrets fills from the
// store's keys SYSTEM-SERVICE-nats-password and SYSTEM-nats-admin-password.
func natsSecretDocs(sys *System, o Options, p profile) []omap {
	var docs []omap
	one := func(name, key, remote, dev string, l omap) {
		if p.overlay == Dev {
			docs = append(docs, omap{{"apiVersion", "v1"}, {"kind", "Secret"}, {"metadata", meta(name, l)},
				{"type", "Opaque"}, {"stringData", omap{{key, dev}}}})
			return
		}
		docs = append(docs, externalSecret(sys, o, name, key, remote, l))
	}
	one(natsAdminSecret, natsAdminKey, sys.Name+"-nats-admin-password", "nats-dev-admin-password", labels(sys, "nats", "messaging"))
	for i := range sys.Services {
		s := &sys.Services[i]
		if natsUser(s) {
			one(natsSecret(s.Name), envNATSPassword, sys.Name+"-"+s.Name+"-nats-password", s.Name+"-dev-nats-password", labels(sys, s.Name, "service"))
		}
	}
	return docs
}

// natsCertificate is the NATS servers' certificate, for the client port and the routes
// between them (server and client authentication), from the services' issuer: the
// services verify it with the CA bundle of their own mTLS Secret.
func natsCertificate(sys *System, o Options) omap {
	kind, name := issuerRef(sys, o)
	hl := headless("nats")
	return omap{{"apiVersion", "cert-manager.io/v1"}, {"kind", "Certificate"},
		{"metadata", meta(natsTLSSecret, labels(sys, "nats", "messaging"))},
		{"spec", omap{
			{"secretName", natsTLSSecret},
			{"duration", mtlsCertDuration},
			{"privateKey", omap{{"algorithm", "ECDSA"}, {"size", 256}, {"encoding", "PKCS8"}, {"rotationPolicy", "Always"}}},
			{"usages", []any{"digital signature", "server auth", "client auth"}},
			{"dnsNames", []any{"nats", hl, "*." + hl, "nats." + o.Namespace + ".svc", hl + "." + o.Namespace + ".svc", "*." + hl + "." + o.Namespace + ".svc"}},
			{"issuerRef", omap{{"group", "cert-manager.io"}, {"kind", kind}, {"name", name}}},
		}}}
}
