package compat

import (
	"fmt"
	"slices"
	"strings"
)

// Finding is one difference between two contracts.
type Finding struct {
	Pos   Pos    // the new side's declaration; for a removal, the old side's
	Break bool   // the change breaks callers on the wire
	What  string // what changed
}

// String is "file:line: what", as compilers write their errors.
func (f Finding) String() string { return f.Pos.String() + ": " + f.What }

// Breaking returns the findings that break callers.
func Breaking(fs []Finding) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Break {
			out = append(out, f)
		}
	}
	return out
}

// Compare compares the contract deployed callers use (old) with a new one and returns
// every difference: the breaking ones (a removed or renamed service, method or field, a
// changed type or field number, a field that became required, a changed HTTP route or
// auth requirement, a method that started or stopped streaming) and the compatible
// additions (new services, methods, optional fields and routes). Findings follow the
// new contract's declarations, each removal where the comparison meets it.
func Compare(old, cur *Contract) []Finding {
	c := &comparer{http: old.HTTPKnown && cur.HTTPKnown, nats: old.NATSKnown && cur.NATSKnown, seen: map[seenKey]bool{}}
	matched := map[*Service]*Service{} // new → old
	usedOld := map[*Service]bool{}
	for _, ns := range cur.Services {
		for _, os := range old.Services {
			if !usedOld[os] && os.GRPC == ns.GRPC {
				matched[ns], usedOld[os] = os, true
				break
			}
		}
	}
	for _, ns := range cur.Services {
		if matched[ns] != nil || ns.GoName == "" {
			continue
		}
		for _, os := range old.Services {
			if !usedOld[os] && os.GoName == ns.GoName {
				matched[ns], usedOld[os] = os, true
				break
			}
		}
	}
	var oldLeft, newLeft []*Service
	for _, os := range old.Services {
		if !usedOld[os] {
			oldLeft = append(oldLeft, os)
		}
	}
	for _, ns := range cur.Services {
		if matched[ns] == nil {
			newLeft = append(newLeft, ns)
		}
	}
	if len(oldLeft) == 1 && len(newLeft) == 1 {
		matched[newLeft[0]], usedOld[oldLeft[0]] = oldLeft[0], true
		oldLeft, newLeft = nil, nil
	}
	for _, ns := range cur.Services {
		os := matched[ns]
		if os == nil {
			c.add(ns.Pos, false, "service %s added", ns.GRPC)
			continue
		}
		if os.GRPC != ns.GRPC {
			c.add(ns.Pos, true, "gRPC service %s renamed to %s: callers of %s get Unimplemented", os.GRPC, ns.GRPC, os.GRPC)
		}
		c.service(os, ns)
	}
	for _, os := range oldLeft {
		c.add(os.Pos, true, "service %s removed", os.GRPC)
	}
	return c.out
}

type seenKey struct {
	old, cur *Message
	req      bool
}

type comparer struct {
	http bool
	nats bool
	out  []Finding
	seen map[seenKey]bool
}

func (c *comparer) add(p Pos, brk bool, format string, args ...any) {
	f := Finding{Pos: p, Break: brk, What: fmt.Sprintf(format, args...)}
	if !slices.Contains(c.out, f) {
		c.out = append(c.out, f)
	}
}

func (c *comparer) service(os, ns *Service) {
	oldBy := map[string]*Method{}
	for _, m := range os.Methods {
		oldBy[m.Name] = m
	}
	var added []*Method
	for _, nm := range ns.Methods {
		om := oldBy[nm.Name]
		if om == nil {
			added = append(added, nm)
			continue
		}
		delete(oldBy, nm.Name)
		c.method(ns, om, nm)
	}
	var removed []*Method
	for _, om := range os.Methods {
		if oldBy[om.Name] != nil {
			removed = append(removed, om)
		}
	}
	// A method removed and one added with the same messages is a rename.
	renamedTo := map[*Method]*Method{}
	for _, om := range removed {
		for _, nm := range added {
			if renamedTo[nm] == nil && sameShape(om, nm) {
				renamedTo[nm] = om
				break
			}
		}
	}
	for _, nm := range added {
		if om := renamedTo[nm]; om != nil {
			c.add(nm.Pos, true, "method %s.%s renamed to %s: callers of %s get Unimplemented (gRPC) or 404 (HTTP)", ns.GRPC, om.Name, nm.Name, om.Name)
			continue
		}
		c.add(nm.Pos, false, "method %s.%s added", ns.GRPC, nm.Name)
	}
	for _, om := range removed {
		if slices.ContainsFunc(added, func(nm *Method) bool { return renamedTo[nm] == om }) {
			continue
		}
		c.add(om.Pos, true, "method %s.%s removed", os.GRPC, om.Name)
	}
}

// sameShape reports whether two methods carry the same messages on the wire.
func sameShape(a, b *Method) bool {
	if a.Stream != b.Stream {
		return false
	}
	probe := &comparer{seen: map[seenKey]bool{}}
	probe.message(a.Req, b.Req, true, "")
	probe.message(a.Resp, b.Resp, false, "")
	return len(Breaking(probe.out)) == 0
}

func (c *comparer) method(s *Service, om, nm *Method) {
	where := s.GRPC + "." + nm.Name
	if om.Stream != nm.Stream {
		if nm.Stream {
			c.add(nm.Pos, true, "method %s now streams its response; callers expect one message", where)
		} else {
			c.add(nm.Pos, true, "method %s no longer streams its response; callers expect a stream", where)
		}
	}
	c.message(om.Req, nm.Req, true, where+" request")
	c.message(om.Resp, nm.Resp, false, where+" response")
	if c.nats {
		switch {
		case om.NATS != "" && nm.NATS == "":
			c.add(nm.Pos, true, "method %s is no longer served over NATS (was %s)", where, om.NATS)
		case om.NATS == "" && nm.NATS != "":
			c.add(nm.Pos, false, "method %s is now served over NATS at %s", where, nm.NATS)
		case om.NATS != nm.NATS:
			c.add(nm.Pos, true, "method %s: NATS subject changed from %s to %s", where, om.NATS, nm.NATS)
		}
	}
	if !c.http {
		return
	}
	switch {
	case om.Route != "" && nm.Route == "":
		c.add(nm.Pos, true, "method %s is no longer served over HTTP (was %s)", where, om.Route)
	case om.Route == "" && nm.Route != "":
		c.add(nm.Pos, false, "method %s is now served over HTTP at %s", where, nm.Route)
	case om.Route != nm.Route:
		c.add(nm.Pos, true, "method %s: HTTP route changed from %s to %s", where, om.Route, nm.Route)
	}
	if om.Auth != "" && nm.Auth != "" && om.Auth != nm.Auth {
		if stricter(om.Auth, nm.Auth) {
			c.add(nm.Pos, true, "method %s: callers must now present %s (was %s)", where, nm.Auth, om.Auth)
		} else {
			c.add(nm.Pos, false, "method %s: auth relaxed from %s to %s", where, om.Auth, nm.Auth)
		}
	}
}

// stricter reports whether auth b may refuse a caller that a accepted: a token where
// none was needed, or another list of roles or scopes. //svckit:auth lists roles (a
// token needs any one) or scopes (it needs all), so with both lists non-empty any change
// may refuse someone; only dropping the list, or the token, relaxes for certain.
func stricter(a, b string) bool {
	switch {
	case b == "public":
		return false
	case a == "public":
		return true
	}
	as, bs := strings.Fields(a)[1:], strings.Fields(b)[1:]
	if len(bs) == 0 {
		return false
	}
	slices.Sort(as)
	slices.Sort(bs)
	return !slices.Equal(as, bs)
}

// message compares the messages one method sends (req) or receives. A message used in
// several places is compared once; only whether a field may be left unset depends on
// the direction.
func (c *comparer) message(om, nm *Message, req bool, where string) {
	if om == nil || nm == nil {
		return
	}
	if c.seen[seenKey{om, nm, req}] {
		return
	}
	c.seen[seenKey{om, nm, req}] = true
	first := !c.seen[seenKey{om, nm, !req}] // the direction-independent checks are made once
	in := nm.Name
	if where != "" {
		in = fmt.Sprintf("%s (%s)", nm.Name, where)
	}
	byName := map[string]*Field{}
	byNum := map[int]*Field{}
	for _, f := range nm.Fields {
		byName[f.Name] = f
		byNum[f.Number] = f
	}
	oldNames := map[string]bool{}
	for _, f := range om.Fields {
		oldNames[f.Name] = true
	}
	used := map[*Field]bool{}
	for _, of := range om.Fields {
		nf := byName[of.Name]
		switch {
		case nf != nil:
			if first && nf.Number != of.Number {
				c.add(nf.Pos, true, "%s: field %s: number changed from %d to %d (add fields at the end)", in, nf.Name, of.Number, nf.Number)
			}
			if first && nf.JSON != of.JSON {
				c.add(nf.Pos, true, "%s: field %s: JSON name changed from %q to %q", in, nf.Name, of.JSON, nf.JSON)
			}
		case byNum[of.Number] != nil && !oldNames[byNum[of.Number].Name]:
			nf = byNum[of.Number]
			if first {
				c.add(nf.Pos, true, "%s: field %s renamed to %s (JSON %q, was %q)", in, of.Name, nf.Name, nf.JSON, of.JSON)
			}
		default:
			if first {
				oin := om.Name
				if where != "" {
					oin = fmt.Sprintf("%s (%s)", om.Name, where)
				}
				c.add(of.Pos, true, "%s: field %s (number %d) removed", oin, of.Name, of.Number)
			}
			continue
		}
		used[nf] = true
		c.typ(of.Type, nf.Type, req, first, nf.Pos, in, nf.Name, where)
	}
	oldByNum := map[int]*Field{}
	for _, f := range om.Fields {
		oldByNum[f.Number] = f
	}
	for _, nf := range nm.Fields {
		if !first || used[nf] {
			continue
		}
		if of := oldByNum[nf.Number]; of != nil {
			c.add(nf.Pos, true, "%s: field %s (number %d) added with the number callers send %s with", in, nf.Name, nf.Number, of.Name)
			continue
		}
		c.add(nf.Pos, false, "%s: field %s (number %d) added", in, nf.Name, nf.Number)
	}
}

// typ compares the types of a field present on both sides.
func (c *comparer) typ(ot, nt *Type, req, first bool, p Pos, in, field, where string) {
	switch {
	case ot.List != nil && nt.List != nil:
		c.typ(ot.List, nt.List, req, first, p, in, field, where)
		return
	case ot.Map != nil && nt.Map != nil:
		c.typ(ot.Map, nt.Map, req, first, p, in, field, where)
		return
	case ot.Msg != nil && nt.Msg != nil:
		c.message(ot.Msg, nt.Msg, req, where)
		return
	case ot.List != nil || nt.List != nil || ot.Map != nil || nt.Map != nil || ot.Msg != nil || nt.Msg != nil || ot.Scalar != nt.Scalar:
		if first {
			c.add(p, true, "%s: field %s: type changed from %s to %s", in, field, ot, nt)
		}
		return
	}
	switch {
	case req && ot.Optional && !nt.Optional:
		c.add(p, true, "%s: field %s became required: it was optional (%s), now %s, so a caller that leaves it out sends the zero value", in, field, ot, nt)
	case !req && !ot.Optional && nt.Optional:
		c.add(p, true, "%s: field %s became optional (%s): callers may now get no value", in, field, nt)
	case first && ot.Optional != nt.Optional:
		c.add(p, false, "%s: field %s: %s is now %s", in, field, ot, nt)
	}
}
