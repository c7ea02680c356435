package gen

import (
	"fmt"
	"strings"
)

// The NATS request/reply transport (package transport/natsrpc): the directive that sets a
// method's subject, its checks, and the Register…NATS and New…NATSClient functions.

// noNATS is Method.NATS for a method that //svckit:nats - leaves off NATS.
const noNATS = "-"

// natsDirective parses //svckit:nats SUBJECT | - on a method and returns Method.NATS.
func (p *parser2) natsDirective(m *Method, d directive, where string) string {
	if d.args == noNATS {
		return noNATS
	}
	dpos := p.pos(d.pos)
	if m.Stream != nil {
		p.errs.add(dpos, where, "//svckit:nats %s: streaming methods are not served over NATS; drop the directive or use //svckit:nats -", d.args)
		return noNATS
	}
	if d.args == "" {
		p.errs.add(dpos, where, "//svckit:nats needs a subject, such as shop.orders.place, or -")
		return ""
	}
	if err := natsSubjectProblem(d.args); err != "" {
		p.errs.add(dpos, where, "//svckit:nats %s: %s; want a subject such as shop.orders.place, or -", d.args, err)
		return ""
	}
	return d.args
}

// natsSubjectProblem says what keeps s from being a literal NATS subject, as
// transport/natsrpc checks it when the method is registered; "" if nothing does.
func natsSubjectProblem(s string) string {
	if s == "" {
		return "the subject is missing"
	}
	for _, tok := range strings.Split(s, ".") {
		switch tok {
		case "":
			return "the subject has an empty token"
		case "*", ">":
			return "the subject has a wildcard"
		}
		for _, c := range tok {
			if c <= ' ' || c == 0x7f {
				return "the subject has whitespace or a control character"
			}
		}
	}
	return ""
}

// natsServed reports whether m is served over NATS: a unary method without //svckit:nats -.
func natsServed(m *Method) bool { return m.Stream == nil && m.NATS != noNATS }

// natsSubject is the subject m is served on by a server of the service's gRPC name with
// the default prefix.
func natsSubject(m *Method) string {
	if m.NATS != "" && m.NATS != noNATS {
		return m.NATS
	}
	return "svc." + m.Svc.GRPCName + "." + m.Name
}

// natsIdempotent reports whether retries of m are safe, as transport/http and the .proto
// (which transport/grpc reads) decide it.
func natsIdempotent(m *Method) bool {
	return m.Idempotent || m.HTTPMethod == "GET" || m.HTTPMethod == "PUT" || m.HTTPMethod == "DELETE"
}

// checkNATS reports two methods of the package on one NATS subject. It runs after the
// services' gRPC names are known; a service whose gRPC name another has is reported for
// that already, and its default subjects are not checked again.
func (p *parser2) checkNATS() {
	subjects := map[string]string{}
	grpcNames := map[string]bool{}
	for _, s := range p.pkg.Services {
		dupName := grpcNames[s.GRPCName]
		grpcNames[s.GRPCName] = true
		for _, m := range s.Methods {
			if !natsServed(m) || (dupName && m.NATS == "") {
				continue
			}
			subj := natsSubject(m)
			if prev, dup := subjects[subj]; dup {
				p.errs.add(m.Pos, s.Name+"."+m.Name, "NATS subject %s is taken by %s", subj, prev)
				continue
			}
			subjects[subj] = s.Name + "." + m.Name
		}
	}
}

// natsrpc returns "natsrpc." for the generated file.
func (g *goFile) natsrpc() string {
	return g.q("github.com/svckit/svckit/transport/natsrpc", "natsrpc")
}

// nats writes Register…NATS and New…NATSClient.
func (w *svcGen) nats() {
	g := w.g
	var served, notServed []*Method
	for _, m := range w.s.Methods {
		if natsServed(m) {
			served = append(served, m)
		} else {
			notServed = append(notServed, m)
		}
	}

	g.docf("Register%sNATS serves the endpoints over NATS request/reply (package transport/natsrpc) on the server's service, in its queue group. For a server of %s, such as app.NATSRPC(%s), the subjects are:",
		w.s.Prefix, w.x("GRPCService"), w.x("GRPCService"))
	g.p("//")
	width := 0
	for _, m := range served {
		width = max(width, len(natsSubject(m)))
	}
	for _, m := range served {
		g.p("//\t%-*s  %s", width, natsSubject(m), m.Name)
	}
	for _, m := range notServed {
		g.p("//")
		g.p("// %s is %s.", m.Name, w.natsReason(m))
	}
	g.p("func Register%sNATS(s *%sServer, e %s) {", w.s.Prefix, g.natsrpc(), w.x("Endpoints"))
	for _, m := range served {
		g.p("\t%sHandle(s, %q, e.%s%s)", g.natsrpc(), m.Name, m.Name, w.natsOptions(m))
	}
	g.p("}\n")

	doc := fmt.Sprintf("New%sNATSClient returns %s that call the service %s (%q) over NATS request/reply on nc, on the subjects of Register%sNATS.",
		w.s.Prefix, w.x("Endpoints"), w.x("GRPCService"), w.s.GRPCName, w.s.Prefix)
	switch len(notServed) {
	case 0:
	case 1:
		doc += fmt.Sprintf(" %s is not served over NATS; its endpoint fails with svcerr.Unimplemented.", notServed[0].Name)
	default:
		names := make([]string, len(notServed))
		for i, m := range notServed {
			names[i] = m.Name
		}
		doc += fmt.Sprintf(" %s are not served over NATS; their endpoints fail with svcerr.Unimplemented.", strings.Join(names, ", "))
	}
	g.docf("%s", doc)
	g.p("func New%sNATSClient(nc *%sConn, opts ...%sClientOption) %s {", w.s.Prefix,
		g.q("github.com/nats-io/nats.go", "nats"), g.natsrpc(), w.x("Endpoints"))
	g.p("\tc := %sNewClient(nc, %s, opts...)", g.natsrpc(), w.x("GRPCService"))
	g.p("\treturn %s{", w.x("Endpoints"))
	for _, m := range w.s.Methods {
		if !natsServed(m) {
			g.p("\t\t%s: func(%s, %s) (resp %s, err error) {", m.Name, g.ctx(), w.reqType(m), w.respType(m))
			g.p("\t\t\treturn resp, %sNew(%sUnimplemented, %q)", g.svcerr(), g.svcerr(), w.s.Name+"."+m.Name+" is "+w.natsReason(m))
			g.p("\t\t},")
			continue
		}
		g.p("\t\t%s: %sCall[%s, %s](c, %q%s),", m.Name, g.natsrpc(), w.reqType(m), w.respType(m), m.Name, w.natsOptions(m))
	}
	g.p("\t}")
	g.p("}\n")
}

// natsReason says why m is not served over NATS.
func (w *svcGen) natsReason(m *Method) string {
	if m.Stream != nil {
		return "served over gRPC only"
	}
	return "not served over NATS"
}

// natsOptions are the natsrpc.MethodOptions of m, each after ", ".
func (w *svcGen) natsOptions(m *Method) string {
	var opts string
	if m.NATS != "" {
		opts += fmt.Sprintf(", %sWithSubject(%q)", w.g.natsrpc(), m.NATS)
	}
	if natsIdempotent(m) {
		opts += ", " + w.g.natsrpc() + "Idempotent()"
	}
	return opts
}
