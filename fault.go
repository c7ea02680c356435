package svckit

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svckit/svckit/config"
	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/fault"
)

// FaultConfig holds the settings of fault injection (package fault); [Config] embeds it.
// Fault injection is off unless one of FAULT_TOKEN and FAULTS is set: then no fault
// middleware is in the chains, and the admin listener has no /faults.
//
// With FAULT_TOKEN, every endpoint, served and called, goes through the fault middleware
// (one atomic load per call while no rule is set), and the admin listener serves the
// control at /faults for requests with "Authorization: Bearer FAULT_TOKEN": GET lists the
// rules, PUT replaces them, POST adds one, DELETE clears them (see [fault.Injector.Handler]).
// FAULTS sets rules at start, in [fault.ParseRules]' text form; a "for" counts from the
// start. FAULT_HEADER lets a caller that sends X-Svckit-Fault-Token: FAULT_TOKEN ask for a
// fault on one call with X-Svckit-Fault (see [fault.WithHeader]).
type FaultConfig struct {
	FaultToken  config.Secret `flag:"fault-token" env:"FAULT_TOKEN" help:"bearer token of the fault injection control on the admin listener (/faults); empty: no control (svckit dev sets one)"`
	Faults      string        `flag:"faults" env:"FAULTS" help:"fault rules applied from the start, e.g. 'catalog.Reserve abort=unavailable abort_percent=20 for=10m; payments.Charge delay=300ms' (empty: none)"`
	FaultHeader bool          `flag:"fault-header" env:"FAULT_HEADER" help:"honour the X-Svckit-Fault header of callers that send the FAULT_TOKEN in X-Svckit-Fault-Token"`
}

// Validate checks the rules of FAULTS and that FAULT_HEADER has a token to check.
func (c *FaultConfig) Validate() error {
	if _, err := fault.ParseRules(c.Faults); err != nil {
		return &config.FieldError{Field: "Faults", Err: err}
	}
	if c.FaultHeader && c.FaultToken == "" {
		return &config.FieldError{Field: "FaultHeader", Err: errors.New("needs FAULT_TOKEN: the header is honoured only for callers that send the token")}
	}
	return nil
}

// newFaults returns the fault injector that c asks for, with its counter registered on
// reg, or nil when fault injection is off.
func newFaults(c *FaultConfig, reg prometheus.Registerer) (*fault.Injector, error) {
	if err := c.Validate(); err != nil { // the loader does not reach it in every config shape
		return nil, fmt.Errorf("config: %w", err)
	}
	if c.FaultToken == "" && c.Faults == "" {
		return nil, nil
	}
	var opts []fault.Option
	if c.FaultHeader {
		opts = append(opts, fault.WithHeader(c.FaultToken.Reveal()))
	}
	inj := fault.New(opts...)
	rules, _ := fault.ParseRules(c.Faults) // checked by Validate
	if err := inj.Set(rules...); err != nil {
		return nil, &config.FieldError{Field: "Faults", Err: err}
	}
	if err := reg.Register(inj.Collector()); err != nil {
		return nil, fmt.Errorf("svckit: fault metrics: %w", err)
	}
	return inj, nil
}

// faultMiddleware returns the fault middleware, or nil when fault injection is off.
func (a *App) faultMiddleware() endpoint.Middleware {
	if a.faults == nil {
		return nil
	}
	return a.faults.Middleware()
}

// Faults returns the App's fault injector, or nil when fault injection is off (neither
// FAULT_TOKEN nor FAULTS set). Rules set on it apply at once to every endpoint.
func (a *App) Faults() *fault.Injector { return a.faults }

// adminFaults adds the fault control to the admin mux when FAULT_TOKEN is set.
func (a *App) adminFaults(mux *http.ServeMux) *http.ServeMux {
	if a.faults != nil && a.cfg.FaultToken != "" {
		mux.Handle("/faults", a.faults.Handler(a.cfg.FaultToken.Reveal()))
	}
	return mux
}

// addFaults puts the fault middleware into the chains when fault injection is on: on
// servers inside tracing, logging, metrics and the request timeout, so that a fault shows
// in the span and the metrics and a delay counts against the deadline, and outside
// recovery; on clients innermost, next to the call.
func (a *App) addFaults() {
	fm := a.faultMiddleware()
	if fm == nil {
		return
	}
	n := len(a.mws) - 1 // recovery, innermost
	a.mws = append(a.mws[:n:n], fm, a.mws[n])
	a.client = append(a.client, fm)
}
