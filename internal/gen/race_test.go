//go:build race

package gen

// raceEnabled skips the tests that only drive the go command in subprocesses: the race
// detector has nothing to watch there, and they are slow.
const raceEnabled = true
