package gen

import (
	"fmt"
	"go/token"
	"os"
	"path/filepath"
	"strings"
)

// Error is one problem with the input: a position, the service method (or interface) it
// concerns, and the reason.
type Error struct {
	Pos    token.Position
	Where  string // "Service.Method", "Service" or ""
	Reason string
}

// Error returns "file:line: Service.Method: reason", with the file relative to the
// working directory when it is below it.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Pos.Filename != "" {
		b.WriteString(relPath(e.Pos.Filename))
		fmt.Fprintf(&b, ":%d: ", e.Pos.Line)
	}
	if e.Where != "" {
		b.WriteString(e.Where)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// ErrorList is every problem found in one run; generation stops only after all of the
// input has been checked.
type ErrorList []*Error

// Error returns the errors, one a line.
func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// errs collects errors without duplicates.
type errs struct {
	list ErrorList
	seen map[string]bool
}

func (c *errs) add(pos token.Position, where, format string, args ...any) {
	e := &Error{Pos: pos, Where: where, Reason: fmt.Sprintf(format, args...)}
	k := e.Error()
	if c.seen == nil {
		c.seen = make(map[string]bool)
	}
	if c.seen[k] {
		return
	}
	c.seen[k] = true
	c.list = append(c.list, e)
}

func (c *errs) err() error {
	if len(c.list) == 0 {
		return nil
	}
	return c.list
}

// relPath returns name relative to the working directory if it is below it.
func relPath(name string) string {
	wd, err := os.Getwd()
	if err != nil || !filepath.IsAbs(name) {
		return name
	}
	if r, err := filepath.Rel(wd, name); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return name
}
