package binding

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/svckit/svckit/pubsub"
	"github.com/svckit/svckit/secrets"
	"github.com/svckit/svckit/store"
	"github.com/svckit/svckit/svcerr"
)

// Mux is where webhooks are mounted; *http.ServeMux is one, and svckit.App's
// app.HTTP().Mux() gives the service's.
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Deps are what bindings use, passed explicitly. Only what the configured types need
// must be set.
type Deps struct {
	// Service names the service; it prefixes default queue groups.
	Service string
	// Logger logs failures with the binding's name; default nothing.
	Logger *slog.Logger
	// Registerer, if set, gets svckit_binding_events_total{binding, outcome},
	// svckit_binding_invocations_total{binding, outcome} and
	// svckit_binding_invoke_seconds{binding}.
	Registerer prometheus.Registerer
	// Mux gets the webhooks.
	Mux Mux
	// NATS is the connection of core NATS subscriptions and publishes; default
	// Bus.Conn().
	NATS *nats.Conn
	// Bus is the JetStream bus of jetstream subscriptions and publishes and of cron
	// claims in NATS KV.
	Bus *pubsub.Bus
	// Store is the store of sql outputs without a DSN and of cron claims "store".
	Store *store.Store
	// Secrets resolves secret references of the form secret:NAME.
	Secrets secrets.Store
	// Env looks up environment variables for env: secret references; default
	// os.LookupEnv.
	Env func(string) (string, bool)
	// HTTPClient makes http-call requests; default a client without a timeout of its
	// own (each output has one).
	HTTPClient *http.Client
	// Now is the clock of signatures and secret caching; default time.Now.
	Now func() time.Time
}

func (d *Deps) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Deps) nats() *nats.Conn {
	if d.NATS == nil && d.Bus != nil {
		return d.Bus.Conn()
	}
	return d.NATS
}

// Set is the bindings built from a Config.
type Set struct {
	inputs    map[string]Input
	outputs   map[string]Output
	names     []string
	pipelines []Pipeline
	obs       *observer
	closers   []func() error
	hooks     []hook
}

// Open builds the bindings and pipelines of cfg with deps: it checks every setting,
// resolves secrets, opens stores named by a DSN and mounts webhooks on deps.Mux.
// Nothing runs until an input's Run or the Set's Run. Configuration errors are
// *ConfigError values naming the binding and field; webhooks are mounted only when
// everything else is valid. Close the Set to close the stores it opened.
func Open(ctx context.Context, cfg Config, deps Deps) (*Set, error) {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	obs, err := newObserver(deps.Logger, deps.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Set{inputs: map[string]Input{}, outputs: map[string]Output{}, obs: obs}
	for _, spec := range cfg.Bindings {
		if err := s.add(ctx, spec, &deps); err != nil {
			s.Close()
			return nil, err
		}
	}
	for i, p := range cfg.Pipelines {
		if err := s.checkPipeline(p); err != nil {
			s.Close()
			return nil, inBinding(fmt.Sprintf("pipeline %d", i+1), 0, err)
		}
		s.pipelines = append(s.pipelines, p)
	}
	for _, h := range s.hooks { // only once everything else is valid: a mux cannot forget
		if err := mount(deps.Mux, h.w); err != nil {
			s.Close()
			return nil, inBinding(h.w.Name(), h.line, err)
		}
	}
	return s, nil
}

// hook is a webhook to mount.
type hook struct {
	w    *Webhook
	line int
}

// mount mounts w on mux, turning the panic of a conflicting pattern into an error.
func mount(mux Mux, w *Webhook) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = invalid("path", "cannot mount %s: it conflicts with a route on the mux", w.Pattern())
		}
	}()
	mux.Handle(w.Pattern(), w)
	return nil
}

func (s *Set) add(ctx context.Context, spec Spec, d *Deps) error {
	if !validName.MatchString(spec.Name) {
		return &ConfigError{Binding: spec.Name, Field: "name", Line: spec.Line, Err: errors.New("use letters, digits, - and _")}
	}
	if slices.Contains(s.names, spec.Name) {
		return &ConfigError{Binding: spec.Name, Field: "name", Line: spec.Line, Err: errors.New("used by another binding")}
	}
	typ, set, err := spec.settings()
	if err != nil {
		return inBinding(spec.Name, spec.Line, err)
	}
	var in Input
	var out Output
	switch c := set.(type) {
	case *CronConfig:
		in, err = newCron(ctx, spec.Name, c, d, s.obs)
	case *WebhookConfig:
		var w *Webhook
		if w, err = newWebhook(ctx, spec.Name, c, d, s.obs); err == nil {
			if d.Mux == nil {
				err = fieldErr("path", errors.New("Deps.Mux is not set"))
			} else {
				in = w
				s.hooks = append(s.hooks, hook{w, spec.Line})
			}
		}
	case *NATSSubscribeConfig:
		in, err = newNATSSubscribe(spec.Name, c, d, s.obs)
	case *HTTPCallConfig:
		out, err = newHTTPCall(ctx, spec.Name, c, d)
	case *NATSPublishConfig:
		out, err = newNATSPublish(spec.Name, c, d)
	case *SQLConfig:
		var closer func() error
		out, closer, err = newSQL(ctx, spec.Name, c, d)
		if closer != nil {
			s.closers = append(s.closers, closer)
		}
	default:
		err = fmt.Errorf("type %s is not supported", typ)
	}
	if err != nil {
		return inBinding(spec.Name, spec.Line, err)
	}
	s.names = append(s.names, spec.Name)
	if in != nil {
		s.inputs[spec.Name] = in
	} else {
		s.outputs[spec.Name] = observedOutput{Output: out, o: s.obs}
	}
	return nil
}

func (s *Set) checkPipeline(p Pipeline) error {
	if p.From == "" {
		return required("from")
	}
	if _, ok := s.inputs[p.From]; !ok {
		if _, isOut := s.outputs[p.From]; isOut {
			return invalid("from", "%q is an output binding; want an input", p.From)
		}
		return invalid("from", "no input binding %q", p.From)
	}
	for _, q := range s.pipelines {
		if q.From == p.From {
			return invalid("from", "input %q is in another pipeline already", p.From)
		}
	}
	if len(p.To) == 0 {
		return required("to")
	}
	for _, t := range p.To {
		if _, ok := s.outputs[t]; !ok {
			if _, isIn := s.inputs[t]; isIn {
				return invalid("to", "%q is an input binding; want an output", t)
			}
			return invalid("to", "no output binding %q", t)
		}
	}
	if p.Timeout < 0 {
		return invalid("timeout", "must not be negative")
	}
	return nil
}

// Input returns the input binding called name.
func (s *Set) Input(name string) (Input, bool) {
	in, ok := s.inputs[name]
	return in, ok
}

// Output returns the output binding called name; its invocations are logged and
// counted.
func (s *Set) Output(name string) (Output, bool) {
	out, ok := s.outputs[name]
	return out, ok
}

// Names returns the names of all bindings in configuration order.
func (s *Set) Names() []string { return slices.Clone(s.names) }

// Handler returns the handler of a pipeline: it invokes the outputs to, in order, with
// the request RequestFrom(e), and fails with the first error.
func (s *Set) Handler(p Pipeline) Handler {
	outs := make([]Output, len(p.To))
	for i, t := range p.To {
		outs[i] = s.outputs[t]
	}
	return func(ctx context.Context, e Event) error {
		if p.Timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, p.Timeout)
			defer cancel()
		}
		req := RequestFrom(e)
		for i, out := range outs {
			if out == nil {
				return svcerr.Errorf(svcerr.FailedPrecondition, "pipeline %s: no output %q", p.From, p.To[i])
			}
			if _, err := out.Invoke(ctx, req); err != nil {
				return fmt.Errorf("pipeline %s → %s: %w", p.From, p.To[i], err)
			}
		}
		return nil
	}
}

// Run runs the pipelines until ctx ends and returns when their inputs have returned.
// If one input fails, the others are stopped and its error is returned. Inputs that are
// in no pipeline are not run. Run fits svckit.App.Go.
func (s *Set) Run(ctx context.Context) error {
	if len(s.pipelines) == 0 {
		<-ctx.Done()
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errs := make(chan error, len(s.pipelines))
	for _, p := range s.pipelines {
		in, h := s.inputs[p.From], s.Handler(p)
		go func() {
			err := in.Run(ctx, h)
			if err != nil {
				err = fmt.Errorf("binding %s: %w", p.From, err)
				cancel(err)
			}
			errs <- err
		}()
	}
	var first error
	for range s.pipelines {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Close closes the stores the Set opened.
func (s *Set) Close() error {
	var errs []error
	for _, c := range s.closers {
		errs = append(errs, c())
	}
	s.closers = nil
	return errors.Join(errs...)
}

func kindOf(err error) string { return svcerr.KindOf(err).String() }
