package devrun

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestBuildProgress watches binaries being written the way go build writes them: a line
// per service once its binary changes, one for those already up to date, and a line
// about the time taken every heartbeat only when the output is a terminal.
func TestBuildProgress(t *testing.T) {
	tests := []struct {
		name        string
		interactive bool
		existing    []string // binaries there before the build
		write       []string // binaries the build writes
		want        []string
		heartbeat   bool
	}{
		{name: "first build, piped", existing: nil, write: []string{"a", "b"},
			want: []string{"building 2 services: a first build compiles every dependency too", "a: built (", "b: built (", "build done in "}},
		{name: "first build, terminal", interactive: true, existing: nil, write: []string{"a", "b"},
			want: []string{"a first build", "a: built (", "still building after "}, heartbeat: true},
		{name: "one up to date", existing: []string{"a", "b"}, write: []string{"a"},
			want: []string{"building 2 services\n", "a: built (", "; up to date: b"}},
		{name: "all up to date, terminal", interactive: true, existing: []string{"a", "b"}, write: nil,
			want: []string{"building 2 services\n", "every binary was up to date"}, heartbeat: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out := &lockedBuffer{}
			s := &System{Logs: NewLogStore(0), opts: Options{Out: out, Interactive: tc.interactive}}
			services := []Service{{Name: "a"}, {Name: "b"}}
			bins := map[string]string{"a": filepath.Join(dir, "a"), "b": filepath.Join(dir, "b")}
			for _, name := range tc.existing {
				if err := os.WriteFile(bins[name], []byte("old"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			p := s.startProgress(services, bins, 100*time.Millisecond)
			time.Sleep(50 * time.Millisecond)
			for _, name := range tc.write {
				if err := os.WriteFile(bins[name], []byte("new binary"), 0o755); err != nil {
					t.Fatal(err)
				}
				time.Sleep(400 * time.Millisecond)
			}
			time.Sleep(300 * time.Millisecond)
			p.finish(true)
			got := out.String()
			for _, want := range tc.want {
				if !strings.Contains(got, want) {
					t.Errorf("output lacks %q:\n%s", want, got)
				}
			}
			if beat := strings.Contains(got, "still building"); beat != tc.heartbeat {
				t.Errorf("heartbeat lines: %v, want %v:\n%s", beat, tc.heartbeat, got)
			}
			for _, name := range []string{"a", "b"} {
				if n := strings.Count(got, name+": built"); n > 1 {
					t.Errorf("%s reported built %d times:\n%s", name, n, got)
				}
			}
			if n := strings.Count(got, "\n"); !tc.interactive && n > 4 {
				t.Errorf("%d lines for a piped build of two services:\n%s", n, got)
			}
		})
	}
}
