package devrun

import (
	"os"
	"strings"
	"sync"
	"time"
)

// stamp identifies one version of a file.
type stamp struct {
	mod  time.Time
	size int64
	ok   bool
}

func stampOf(path string) stamp {
	st, err := os.Stat(path)
	if err != nil {
		return stamp{}
	}
	return stamp{mod: st.ModTime(), size: st.Size(), ok: true}
}

// buildProgress reports a build while it runs. It prints one line when the build starts
// (warning that a first build compiles every dependency), one line per service when the
// go command writes its binary, and one when the build ends, naming the services whose
// binaries were already up to date. When the output is a terminal it also prints, every
// heartbeat, how long the build has been running; piped output gets no such lines.
type buildProgress struct {
	s        *System
	services []Service
	bins     map[string]string // service → binary
	before   map[string]stamp  // binary → stamp before the build
	start    time.Time

	mu    sync.Mutex
	built map[string]bool // services reported built

	stopc chan struct{}
	done  chan struct{}
}

// startProgress prints the build's first line and watches the binaries of services
// until finish.
func (s *System) startProgress(services []Service, bins map[string]string, heartbeat time.Duration) *buildProgress {
	p := &buildProgress{s: s, services: services, bins: bins, before: map[string]stamp{}, start: time.Now(),
		built: map[string]bool{}, stopc: make(chan struct{}), done: make(chan struct{})}
	first := false
	for _, bin := range bins {
		p.before[bin] = stampOf(bin)
		first = first || !p.before[bin].ok
	}
	if first {
		s.printf("building %s: a first build compiles every dependency too, "+
			"which can take a minute or more; later builds take seconds", plural(len(services), "service"))
	} else {
		s.printf("building %s", plural(len(services), "service"))
	}
	go p.watch(heartbeat)
	return p
}

func (p *buildProgress) watch(heartbeat time.Duration) {
	defer close(p.done)
	poll := time.NewTicker(200 * time.Millisecond)
	defer poll.Stop()
	var beat <-chan time.Time
	if p.s.opts.Interactive && heartbeat > 0 {
		t := time.NewTicker(heartbeat)
		defer t.Stop()
		beat = t.C
	}
	for {
		select {
		case <-p.stopc:
			return
		case <-poll.C:
			p.check()
		case <-beat:
			p.mu.Lock()
			n := len(p.built)
			p.mu.Unlock()
			p.s.printf("still building after %s: %d of %d services built", time.Since(p.start).Round(time.Second), n, len(p.services))
		}
	}
}

// check prints a line for every service whose binary has been written since the start.
func (p *buildProgress) check() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, svc := range p.services {
		bin := p.bins[svc.Name]
		if p.built[svc.Name] {
			continue
		}
		if now := stampOf(bin); now.ok && now != p.before[bin] {
			p.built[svc.Name] = true
			p.s.printf("%s: built (%s)", svc.Name, time.Since(p.start).Round(100*time.Millisecond))
		}
	}
}

// finish stops watching and, after a successful build, reports the services whose
// binaries were already up to date and the build's duration.
func (p *buildProgress) finish(ok bool) {
	close(p.stopc)
	<-p.done
	if !ok {
		return
	}
	p.check()
	var current []string
	for _, svc := range p.services {
		if !p.built[svc.Name] {
			current = append(current, svc.Name)
		}
	}
	took := time.Since(p.start).Round(100 * time.Millisecond)
	switch {
	case len(current) == 0:
		p.s.printf("build done in %s", took)
	case len(current) == len(p.services):
		p.s.printf("build done in %s: every binary was up to date", took)
	default:
		p.s.printf("build done in %s; up to date: %s", took, strings.Join(current, ", "))
	}
}
