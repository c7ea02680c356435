package devrun

import (
	"bufio"
	"bytes"
	"context"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// watcher brings back instances that failed with a configuration error (StateFailed) and,
// with Options.Reload, replaces running instances whose sources changed.
// While some do, it checks every Options.SourcePoll whether a file in a source directory
// of their services (the directories of the packages of the main module, or of a module
// replaced by a local directory, that the service's main package depends on) is newer
// than their last build; if so it rebuilds those services and starts their failed
// instances again. A changed env or args entry in svckit.yaml starts them again too.
// Nothing is polled while no instance has failed.
type watcher struct {
	s      *System
	binDir string

	builtAt map[string]time.Time // service → its sources were built as of then
	dirs    map[string][]string  // service → its source directories, until its next build
	newest  map[string]time.Time // service → newest modification seen in its sources

	manifest stamp               // svckit.yaml as last read
	applied  map[string]*Service // service → the manifest entry its instances run with
}

func (s *System) newWatcher(binDir string) *watcher {
	w := &watcher{s: s, binDir: binDir, builtAt: map[string]time.Time{}, dirs: map[string][]string{},
		newest: map[string]time.Time{}, applied: map[string]*Service{}}
	now := time.Now()
	for i := range s.Manifest.Services {
		svc := &s.Manifest.Services[i]
		w.builtAt[svc.Name] = now
		w.applied[svc.Name] = svc
	}
	if !s.Manifest.Discovered {
		w.manifest = stampOf(filepath.Join(s.Manifest.Dir, ManifestFile))
	}
	return w
}

func (w *watcher) run(ctx context.Context) {
	t := time.NewTicker(w.s.opts.SourcePoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.tick(ctx)
		}
	}
}

// tick looks for changes that concern failed instances — or, with Options.Reload, any
// instance — and acts on them.
func (w *watcher) tick(ctx context.Context) {
	failed := map[string][]*Instance{}
	for _, in := range w.s.Instances {
		if in.Status().State == StateFailed {
			failed[in.Service] = append(failed[in.Service], in)
		}
	}
	reload := w.s.opts.Reload
	if len(failed) == 0 && !reload {
		return
	}
	var changed []Service
	for _, svc := range w.s.Manifest.Services {
		if (reload || failed[svc.Name] != nil) && w.sourcesChanged(ctx, svc) {
			changed = append(changed, svc)
		}
	}
	wake := w.manifestChanged(failed)
	if len(changed) > 0 {
		names := serviceNames(changed)
		w.s.printf("source of %s changed: rebuilding", names)
		start := time.Now()
		_, err := w.s.build(ctx, w.binDir, changed)
		for _, svc := range changed {
			w.builtAt[svc.Name] = start
			if w.newest[svc.Name].After(start) { // a file dated in the future
				w.builtAt[svc.Name] = w.newest[svc.Name]
			}
			delete(w.dirs, svc.Name) // its imports may have changed
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			w.s.printf("%v", err)
			w.s.printf("waiting for the next change to %s", names)
		default:
			for _, svc := range changed {
				wake[svc.Name] = true
				if reload {
					w.replace(ctx, svc.Name)
				}
			}
		}
	}
	for name := range wake {
		for _, in := range failed[name] {
			w.restart(ctx, in)
		}
	}
}

// replace puts the rebuilt program of service in place of its running instances, one at
// a time, each without a gap (Instance.Restart).
func (w *watcher) replace(ctx context.Context, service string) {
	for _, in := range w.s.Instances {
		if in.Service != service || in.Status().State != StateRunning {
			continue
		}
		before := in.Status().PID
		if err := in.Restart(ctx); err != nil {
			w.s.printf("%s: not replaced: %v", in.ID, err)
			continue
		}
		if len(in.sockets) > 0 {
			w.s.printf("%s: rebuilt program serving (pid %d replaced pid %d without a gap)", in.ID, in.Status().PID, before)
		} else {
			w.s.printf("%s: stopped to run the rebuilt program (its program binds its own sockets: a short gap)", in.ID)
		}
	}
}

// restart wakes a failed instance and, in the background, says when it is ready.
func (w *watcher) restart(ctx context.Context, in *Instance) {
	before := in.Status().Restarts
	if !in.wake() {
		return
	}
	w.s.printf("%s: starting again", in.ID)
	w.s.wg.Add(1)
	go func() {
		defer w.s.wg.Done()
		client := &http.Client{Timeout: time.Second}
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			st := in.Status()
			if st.Restarts == before {
				continue // not started yet
			}
			if st.State == StateFailed || st.State == StateStopped {
				return // says so itself
			}
			if st.State == StateRunning && answersReady(client, in) {
				w.s.printf("%s: ready (%s after its start)", in.ID, in.Status().Uptime.Round(10*time.Millisecond))
				return
			}
		}
	}()
}

// sourcesChanged reports whether a source file of svc is newer than its last build.
func (w *watcher) sourcesChanged(ctx context.Context, svc Service) bool {
	dirs, ok := w.dirs[svc.Name]
	if !ok {
		dirs = w.sourceDirs(ctx, svc.Package)
		w.dirs[svc.Name] = dirs
	}
	var newest time.Time
	for _, dir := range dirs {
		// The directory's own time changes when a file is added, removed or renamed
		// (editors that save by renaming a new file into place).
		if st, err := os.Stat(dir); err == nil && st.ModTime().After(newest) {
			newest = st.ModTime()
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			if info, err := e.Info(); err == nil && info.ModTime().After(newest) {
				newest = info.ModTime()
			}
		}
	}
	w.newest[svc.Name] = newest
	return newest.After(w.builtAt[svc.Name])
}

// sourceDirs lists the directories of the packages pkg depends on (itself included) that
// belong to the main module, or a workspace's modules, or a module replaced by a local
// directory: the code being worked on.
func (w *watcher) sourceDirs(ctx context.Context, pkg string) []string {
	const tmpl = `{{with .Module}}{{if .Main}}{{$.Dir}}{{else}}{{with .Replace}}{{if not .Version}}{{$.Dir}}{{end}}{{end}}{{end}}{{end}}`
	cmd := exec.CommandContext(ctx, "go", "list", "-e", "-deps", "-f", tmpl, pkg)
	cmd.Dir = w.s.Manifest.Dir
	out, err := cmd.Output()
	if err != nil && len(out) == 0 {
		return nil
	}
	var dirs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if d := strings.TrimSpace(sc.Text()); d != "" {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// manifestChanged reads svckit.yaml again if it changed and gives the failed instances
// of every service whose env or args changed their new settings. It returns those
// services. Other changes take effect when svckit dev is started again.
func (w *watcher) manifestChanged(failed map[string][]*Instance) map[string]bool {
	wake := map[string]bool{}
	if w.s.Manifest.Discovered {
		return wake
	}
	path := filepath.Join(w.s.Manifest.Dir, ManifestFile)
	now := stampOf(path)
	if !now.ok || now == w.manifest {
		return wake
	}
	w.manifest = now
	m, err := LoadManifest(w.s.Manifest.Dir)
	if err != nil {
		w.s.printf("%v; not applied", err)
		return wake
	}
	var names []string
	for name, ins := range failed {
		svc, old := m.Service(name), w.applied[name]
		if svc == nil || (maps.Equal(svc.Env, old.Env) && slices.Equal(svc.Args, old.Args)) {
			continue
		}
		w.applied[name] = svc
		for _, in := range ins {
			in.reconfigure(svc)
		}
		wake[name] = true
		names = append(names, name)
	}
	if len(names) > 0 {
		slices.Sort(names)
		w.s.printf("%s changed: %s runs with its new env and args (other changes take effect when svckit dev starts again)",
			ManifestFile, strings.Join(names, ", "))
	}
	return wake
}

func serviceNames(services []Service) string {
	names := make([]string, len(services))
	for i, svc := range services {
		names[i] = svc.Name
	}
	return strings.Join(names, ", ")
}
