// Command startup measures a service binary's time from exec to ready (/readyz answers
// 200) and its resident memory once idle, over several runs, and prints the medians.
//
//	go build -o /tmp/addsvc ./examples/addsvc
//	go run ./bench/cmd/startup -bin /tmp/addsvc -runs 10
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	bin := flag.String("bin", "", "service binary (flags -http-addr, -grpc-addr, -admin-addr)")
	runs := flag.Int("runs", 10, "runs")
	idle := flag.Duration("idle", 2*time.Second, "idle time before reading RSS")
	flag.Parse()
	if *bin == "" {
		log.Fatal("-bin is required")
	}
	var ready []time.Duration
	var rss []int
	for i := 0; i < *runs; i++ {
		ports := freePorts(3)
		cmd := exec.Command(*bin, "-http-addr", ports[0], "-grpc-addr", ports[1], "-admin-addr", ports[2])
		cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
		start := time.Now()
		if err := cmd.Start(); err != nil {
			log.Fatal(err)
		}
		url := "http://" + ports[2] + "/readyz"
		client := &http.Client{Timeout: time.Second}
		for {
			resp, err := client.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Since(start) > 10*time.Second {
				log.Fatal("not ready after 10s")
			}
			time.Sleep(time.Millisecond)
		}
		ready = append(ready, time.Since(start))
		time.Sleep(*idle)
		rss = append(rss, rssKiB(cmd.Process.Pid))
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
	slices.Sort(ready)
	slices.Sort(rss)
	fmt.Printf("runs: %d\nstart to ready: median %v (min %v, max %v)\nidle RSS: median %.1f MiB (min %.1f, max %.1f)\n",
		*runs, ready[len(ready)/2].Round(100*time.Microsecond), ready[0].Round(100*time.Microsecond), ready[len(ready)-1].Round(100*time.Microsecond),
		float64(rss[len(rss)/2])/1024, float64(rss[0])/1024, float64(rss[len(rss)-1])/1024)
}

func freePorts(n int) []string {
	var out []string
	var lns []net.Listener
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

func rssKiB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		log.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}
