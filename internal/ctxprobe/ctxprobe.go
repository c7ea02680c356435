// Package ctxprobe learns the context key another package keeps a value under when that
// key's type is unexported: it hands the package's accessor a context that records the
// first key it is asked for. Callers check what they learned (store a value with the
// package's own setter and read it back under the key) and fall back to the public API
// when the probe finds nothing or the check fails.
package ctxprobe

import "context"

// FirstKey calls ask with a probing context and returns the first key ask looked up in it,
// or nil if it looked none up. The probing context holds no values: every lookup answers
// nil.
func FirstKey(ask func(ctx context.Context)) any {
	p := &probe{Context: context.Background()}
	ask(p)
	return p.key
}

// probe is a context that records the first key it is asked for.
type probe struct {
	context.Context
	key any
}

// Value records key if it is the first asked for, and answers nil.
func (p *probe) Value(key any) any {
	if p.key == nil {
		p.key = key
	}
	return nil
}
