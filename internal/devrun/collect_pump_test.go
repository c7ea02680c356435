package devrun

import (
	"io"
	"strings"
)

// pumpBench reads lines into logs as the supervisor's pump does.
func pumpBench(r io.Reader, logs *LogStore) {
	scanLines(r, func(line string) {
		logs.Add("gateway", "gateway-1", "stdout", line)
		_ = readyLine(line)
		_ = strings.TrimSpace(line)
	})
}
