package fault

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/svckit/svckit/svcerr"
)

// Limits on what a rule and a set of rules may hold; rules from the admin API, a setting
// or a header beyond them are refused.
const (
	// MaxRules is the most rules an Injector holds.
	MaxRules = 64
	// MaxDelay is the longest delay a rule may inject.
	MaxDelay = 5 * time.Minute
	// MaxFor is the longest time a rule may last when it is given a duration.
	MaxFor = 7 * 24 * time.Hour
	// maxMethod bounds the length of a rule's method pattern.
	maxMethod = 200
	// maxSpec bounds the text that ParseRules and ParseSpec read.
	maxSpec = 8 << 10
)

// Side says which calls of a process a rule applies to.
type Side string

// The sides. The zero Side, Both, applies to served and made calls alike.
const (
	Both       Side = ""       // served calls and calls to other services
	ServerSide Side = "server" // calls this process serves
	ClientSide Side = "client" // calls this process makes to other services
)

func (s Side) valid() bool { return s == Both || s == ServerSide || s == ClientSide }

func (s Side) matches(client bool) bool {
	switch s {
	case ServerSide:
		return !client
	case ClientSide:
		return client
	}
	return true
}

// Rule delays and/or aborts a share of the calls of the methods it names.
//
// Method is matched against "Service.Method" of the endpoint (endpoint.Info.FullName) with
// path.Match: "payments.Charge", "payments.*", "*.Charge", "*". On the server side the
// service is the service's name ("payments"); on the client side it is what the client
// names it: for a generated gRPC client the protobuf service's full name
// ("payments.Payments.Charge"), so "*.Charge" with Side ClientSide reaches it.
//
// A call that a rule picks for a delay waits Delay (or until its context ends) before it
// goes on; a call picked for an abort fails at once with an *svcerr.Error of kind Kind and
// the message "injected fault", without reaching the endpoint. Both happen before the
// call: an aborted call has no effect, as when a request is refused.
type Rule struct {
	// Method is the pattern of "Service.Method" names the rule applies to.
	Method string
	// Side limits the rule to served calls or to calls made; the zero value is both.
	Side Side
	// Delay is how long a picked call waits, at most MaxDelay.
	Delay time.Duration
	// DelayPercent is the share of calls delayed, 0–100. With a Delay, 0 means every call.
	DelayPercent float64
	// AbortPercent is the share of calls aborted, 0–100 (0: none).
	AbortPercent float64
	// Kind is the kind of the error of an aborted call; Unknown means Unavailable.
	Kind svcerr.Kind
	// For, if positive and Until is zero, ends the rule that long after it is set. Rules
	// that an Injector returns have For zero and Until set instead.
	For time.Duration
	// Until, if not zero, is when the rule ends by itself.
	Until time.Time
}

// normalize fills the defaults of r and checks it; now turns For into Until.
func (r Rule) normalize(now time.Time) (Rule, error) {
	r.Method = strings.TrimSpace(r.Method)
	switch {
	case r.Method == "":
		return r, errors.New("method is empty: give a pattern of Service.Method such as payments.Charge or payments.*")
	case len(r.Method) > maxMethod:
		return r, fmt.Errorf("method is longer than %d bytes", maxMethod)
	}
	if _, err := path.Match(r.Method, ""); err != nil {
		return r, fmt.Errorf("method %q is not a valid pattern: %w", r.Method, err)
	}
	if !r.Side.valid() {
		return r, fmt.Errorf("%s: side %q is not server or client", r.Method, r.Side)
	}
	if r.Delay < 0 || r.Delay > MaxDelay {
		return r, fmt.Errorf("%s: delay %s is not between 0 and %s", r.Method, r.Delay, MaxDelay)
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"delay_percent", r.DelayPercent}, {"abort_percent", r.AbortPercent}} {
		if math.IsNaN(p.v) || p.v < 0 || p.v > 100 {
			return r, fmt.Errorf("%s: %s %v is not between 0 and 100", r.Method, p.name, p.v)
		}
	}
	if r.Delay > 0 && r.DelayPercent == 0 {
		r.DelayPercent = 100
	}
	if r.Delay == 0 {
		r.DelayPercent = 0
	}
	if r.Kind == svcerr.Unknown {
		r.Kind = svcerr.Unavailable
	}
	if _, ok := svcerr.ParseKind(r.Kind.String()); !ok {
		return r, fmt.Errorf("%s: error kind %s is not a svcerr kind", r.Method, r.Kind)
	}
	if r.DelayPercent == 0 && r.AbortPercent == 0 {
		return r, fmt.Errorf("%s: the rule does nothing: give a delay or an abort_percent", r.Method)
	}
	if r.For < 0 || r.For > MaxFor {
		return r, fmt.Errorf("%s: for %s is not between 0 and %s", r.Method, r.For, MaxFor)
	}
	if r.For > 0 && r.Until.IsZero() {
		r.Until = now.Add(r.For)
	}
	r.For = 0
	return r, nil
}

// active reports whether r has not ended at now.
func (r *Rule) active(now time.Time) bool { return r.Until.IsZero() || now.Before(r.Until) }

// ruleJSON is a Rule as the admin API reads and writes it.
type ruleJSON struct {
	Method       string     `json:"method"`
	Side         Side       `json:"side,omitempty"`
	Delay        string     `json:"delay,omitempty"`
	DelayPercent *float64   `json:"delay_percent,omitempty"`
	Abort        string     `json:"abort,omitempty"`
	AbortPercent *float64   `json:"abort_percent,omitempty"`
	For          string     `json:"for,omitempty"`
	Until        *time.Time `json:"until,omitempty"`
}

// MarshalJSON writes r as the admin API shows it:
//
//	{"method":"catalog.Reserve","abort":"unavailable","abort_percent":20,"until":"2026-…"}
//	{"method":"payments.Charge","side":"server","delay":"500ms","delay_percent":100}
func (r Rule) MarshalJSON() ([]byte, error) {
	j := ruleJSON{Method: r.Method, Side: r.Side}
	if r.Delay > 0 {
		j.Delay, j.DelayPercent = r.Delay.String(), &r.DelayPercent
	}
	if r.AbortPercent > 0 {
		k := r.Kind
		if k == svcerr.Unknown {
			k = svcerr.Unavailable
		}
		j.Abort, j.AbortPercent = k.String(), &r.AbortPercent
	}
	if r.For > 0 {
		j.For = r.For.String()
	}
	if !r.Until.IsZero() {
		u := r.Until.UTC()
		j.Until = &u
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads a rule in the form MarshalJSON writes, where "for" (a Go duration)
// may stand for "until"; unknown members are refused. An "abort" without "abort_percent" aborts every call, and a
// "delay" without "delay_percent" delays every call.
func (r *Rule) UnmarshalJSON(b []byte) error {
	var j ruleJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return err
	}
	nr := Rule{Method: j.Method, Side: j.Side}
	var err error
	if j.Delay != "" {
		if nr.Delay, err = time.ParseDuration(j.Delay); err != nil {
			return fmt.Errorf("delay: %w", err)
		}
	}
	if j.DelayPercent != nil {
		nr.DelayPercent = *j.DelayPercent
	}
	if j.Abort != "" {
		k, ok := svcerr.ParseKind(j.Abort)
		if !ok {
			return fmt.Errorf("abort: %q is not an error kind (unavailable, deadline_exceeded, internal, resource_exhausted, …)", j.Abort)
		}
		nr.Kind, nr.AbortPercent = k, 100
	}
	if j.AbortPercent != nil {
		nr.AbortPercent = *j.AbortPercent
	}
	if j.For != "" {
		if nr.For, err = time.ParseDuration(j.For); err != nil {
			return fmt.Errorf("for: %w", err)
		}
	}
	if j.Until != nil {
		nr.Until = *j.Until
	}
	*r = nr
	return nil
}

// ParseRules reads rules in the text form of the FAULTS setting: rules separated by ";",
// each a method pattern followed by KEY=VALUE fields separated by spaces — the keys of the
// admin API's JSON (see [ParseSpec]):
//
//	catalog.Reserve abort=unavailable abort_percent=20 for=10m; payments.Charge delay=300ms
//
// Empty rules are skipped. The rules are checked as an Injector checks them.
func ParseRules(s string) ([]Rule, error) {
	if len(s) > maxSpec {
		return nil, fmt.Errorf("fault: rules are longer than %d bytes", maxSpec)
	}
	var rules []Rule
	for part := range strings.SplitSeq(s, ";") {
		fields := strings.Fields(part)
		if len(fields) == 0 {
			continue
		}
		if strings.Contains(fields[0], "=") {
			return nil, fmt.Errorf("fault: rule %q: starts with %q, not a method pattern", strings.TrimSpace(part), fields[0])
		}
		r, err := parseFields(fields[0], fields[1:])
		if err != nil {
			return nil, err
		}
		if _, err := r.normalize(time.Now()); err != nil {
			return nil, fmt.Errorf("fault: %w", err)
		}
		rules = append(rules, r)
	}
	if len(rules) > MaxRules {
		return nil, fmt.Errorf("fault: %d rules, more than %d", len(rules), MaxRules)
	}
	return rules, nil
}

// ParseSpec reads one rule's fields without a method, as the X-Svckit-Fault header
// carries them, for the method method:
//
//	delay=300ms delay_percent=50 abort=unavailable abort_percent=20 side=server for=1m
//
// abort names an svcerr kind (unavailable, deadline_exceeded, internal, …); an abort
// without abort_percent aborts every call, a delay without delay_percent delays every call.
func ParseSpec(method, spec string) (Rule, error) {
	if len(spec) > maxSpec {
		return Rule{}, fmt.Errorf("fault: spec is longer than %d bytes", maxSpec)
	}
	r, err := parseFields(method, strings.FieldsFunc(spec, func(c rune) bool { return c == ' ' || c == ',' || c == '\t' }))
	if err != nil {
		return Rule{}, err
	}
	return r, nil
}

func parseFields(method string, fields []string) (Rule, error) {
	r := Rule{Method: method}
	var delayPct, abortPct bool
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok || v == "" {
			return r, fmt.Errorf("fault: %s: %q is not KEY=VALUE", method, f)
		}
		var err error
		switch k {
		case "delay":
			r.Delay, err = time.ParseDuration(v)
		case "delay_percent":
			r.DelayPercent, err = parsePercent(v)
			delayPct = true
		case "abort":
			kind, ok := svcerr.ParseKind(v)
			if !ok {
				err = fmt.Errorf("%q is not an error kind (unavailable, deadline_exceeded, internal, resource_exhausted, …)", v)
			}
			r.Kind = kind
		case "abort_percent":
			r.AbortPercent, err = parsePercent(v)
			abortPct = true
		case "side":
			r.Side = Side(v)
			if !r.Side.valid() {
				err = fmt.Errorf("%q is not server or client", v)
			}
		case "for":
			r.For, err = time.ParseDuration(v)
		default:
			err = errors.New("unknown key; the keys are delay, delay_percent, abort, abort_percent, side and for")
		}
		if err != nil {
			return r, fmt.Errorf("fault: %s: %s: %w", method, k, err)
		}
	}
	if r.Kind != svcerr.Unknown && !abortPct {
		r.AbortPercent = 100
	}
	if r.Delay > 0 && !delayPct {
		r.DelayPercent = 100
	}
	return r, nil
}

func parsePercent(v string) (float64, error) {
	p, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
	if err != nil {
		return 0, errors.New("not a number")
	}
	return p, nil
}
