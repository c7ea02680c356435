package natsserver

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// AdminUser is the name of the user every embedded server has unless started
// [WithoutAuth]: it may do anything, and [Server.ClientURL] and [Server.Connect] use it.
const AdminUser = "svckit-admin"

// User is a NATS user of an embedded server: a name, a password and the subjects it may
// publish to and subscribe to. A nil Publish or Subscribe list allows every subject; a
// Deny list refuses subjects even where an Allow pattern matches. Wildcards (* and >)
// work as in NATS subjects. Responses to requests the user received are always allowed
// (once each, within a minute), so a service can answer requests without a publish
// permission on reply inboxes.
type User struct {
	Name          string
	Password      string
	Publish       []string
	DenyPublish   []string
	Subscribe     []string
	DenySubscribe []string
}

// WithUsers adds users to the server beside the admin user. Every client must log in as
// one of them: anonymous connections are refused.
func WithUsers(users ...User) Option {
	return func(c *config) { c.users = append(c.users, users...) }
}

// WithAdmin sets the admin user's password; by default Start makes a random one. The
// nodes of a [Cluster] share one.
func WithAdmin(password string) Option { return func(c *config) { c.adminPass = password } }

// WithoutAuth starts the server with authorization off: any client may connect and do
// anything. Only for measuring NATS itself; svckit's tools never use it.
func WithoutAuth() Option { return func(c *config) { c.noAuth = true } }

// ServiceUser returns the user of one service of a svckit system on the embedded server:
// it may publish events only on the subjects of publish (its own events), dead letters
// (dlq.>), and the JetStream and KV API a svckit service uses (streams, consumers, acks,
// key-value buckets) — but never delete or purge a stream; it may subscribe to reply
// inboxes and to the core subjects of subscribe. Events reach a service's JetStream
// consumers through its inbox, so subscribe only matters for core NATS subscriptions.
// publish holds NATS subject patterns such as "shop.orders.>".
func ServiceUser(name, password string, publish, subscribe []string) User {
	pub := append([]string{"dlq.>", "$JS.API.>", "$JS.ACK.>", "$JS.FC.>", "$KV.>",
		// The reachability probe of a stream just created (internal/jsx): a publish the
		// stream refuses by its expected last sequence, so nothing is stored.
		"svckit-probe", "*.svckit-probe", "*.*.svckit-probe", "*.*.*.svckit-probe"}, publish...)
	sub := append([]string{"_INBOX.>"}, subscribe...)
	return User{
		Name:     name,
		Password: password,
		Publish:  pub,
		DenyPublish: []string{
			"$JS.API.STREAM.DELETE.>", "$JS.API.STREAM.PURGE.>", "$JS.API.STREAM.MSG.DELETE.>",
			"$JS.API.ACCOUNT.>", "$JS.API.META.>", "$JS.API.SERVER.>",
		},
		Subscribe: sub,
	}
}

// RandomPassword returns a password of 24 random bytes, hex-encoded.
func RandomPassword() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// serverUsers converts the users of c, with the admin first, for the server's options.
func (c *config) serverUsers() []*server.User {
	out := []*server.User{{Username: AdminUser, Password: c.adminPass}}
	for _, u := range c.users {
		su := &server.User{Username: u.Name, Password: u.Password, Permissions: &server.Permissions{
			Response: &server.ResponsePermission{MaxMsgs: 1},
		}}
		if u.Publish != nil || u.DenyPublish != nil {
			su.Permissions.Publish = &server.SubjectPermission{Allow: u.Publish, Deny: u.DenyPublish}
		}
		if u.Subscribe != nil || u.DenySubscribe != nil {
			su.Permissions.Subscribe = &server.SubjectPermission{Allow: u.Subscribe, Deny: u.DenySubscribe}
		}
		out = append(out, su)
	}
	return out
}

// WithUserInfo returns the nats:// URL u (or comma-separated URLs) with user and
// password in each.
func WithUserInfo(urls, user, password string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if pu, err := url.Parse(strings.TrimSpace(p)); err == nil && pu.Host != "" {
			pu.User = url.UserPassword(user, password)
			parts[i] = pu.String()
		}
	}
	return strings.Join(parts, ",")
}

// AuthConfig returns the authorization block of a nats-server configuration file with the
// admin user (password adminPassword) and users, as a production NATS server or cluster
// is configured for a svckit system: every client logs in, each service as its own user
// with the permissions of [ServiceUser]. Passwords may be written as they are or as
// bcrypt hashes ("$2a$…"), which nats-server accepts too.
func AuthConfig(adminPassword string, users []User) string {
	var b strings.Builder
	b.WriteString("authorization {\n  users: [\n")
	fmt.Fprintf(&b, "    {user: %s, password: %s}\n", quote(AdminUser), quote(adminPassword))
	for _, u := range users {
		fmt.Fprintf(&b, "    {user: %s, password: %s, permissions: {", quote(u.Name), quote(u.Password))
		var parts []string
		if u.Publish != nil || u.DenyPublish != nil {
			parts = append(parts, "publish: "+permBlock(u.Publish, u.DenyPublish))
		}
		if u.Subscribe != nil || u.DenySubscribe != nil {
			parts = append(parts, "subscribe: "+permBlock(u.Subscribe, u.DenySubscribe))
		}
		parts = append(parts, "allow_responses: {max: 1}")
		b.WriteString(strings.Join(parts, ", "))
		b.WriteString("}}\n")
	}
	b.WriteString("  ]\n}\n")
	return b.String()
}

func permBlock(allow, deny []string) string {
	var parts []string
	if allow != nil {
		parts = append(parts, "allow: "+quoteList(allow))
	}
	if deny != nil {
		parts = append(parts, "deny: "+quoteList(deny))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// quote writes s as a double-quoted string of the nats-server configuration format,
// whose only escapes are \xXX, \t, \n, \r, \" and \\.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if c < 0x20 || c == 0x7f {
				fmt.Fprintf(&b, `\x%02x`, c)
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
