#!/usr/bin/env bash
# bench/client.sh — svckit's client stack against a bare grpc-go call, measured at the same
# time. Each round starts two processes at once: one makes bare grpc-go calls to a bare
# server, the other makes the same calls through svckit's client stack (discovery,
# balancer, retry, breaker, tracing; balancer's BenchmarkClient/stack-* runs), each one
# call at a time for DURATION. Both then see the same noise from the machine's other
# tenants, which on a shared machine moves whole in-process runs of the alternated
# comparison (BenchmarkClient/ratio-*) by ±0.1 between one minute and the next. The
# figure is each process's CPU time per call (client and server both, from getrusage),
# and their ratio, bare over stack; the script prints each round and the medians.
# Two processes share the two cores, an operating point different from the in-process
# benchmark's: quote the two side by side, not mixed.
#
#   bench/client.sh                                   # 7 rounds of 5 s, unsampled, one instance
#   STACK=stack-sampled-1instance bench/client.sh     # every call sampled and exported over OTLP
#   STACK=stack-unsampled ROUNDS=5 DURATION=10s bench/client.sh   # two instances, P2C
#   STACK=grpc-go-headers bench/client.sh             # the floor: bare grpc-go carrying the
#                                                     # traceparent the stack sends
#
# Needs Go, taskset (util-linux) and bc.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-7}
DURATION=${DURATION:-5s}
STACK=${STACK:-stack-unsampled-1instance}
BARE=${BARE:-grpc-go}

for tool in taskset bc; do
	command -v $tool >/dev/null || { echo "bench: $tool is not installed (apt-get install -y util-linux bc)"; exit 1; }
done

bin=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$bin"' EXIT
go test -c -o "$bin/balancer.test" ./balancer

# one NAME OUT CPU: runs BenchmarkClient/NAME alone for DURATION on CPU, its output to OUT.
one() {
	(cd "$bin" && taskset -c "$3" ./balancer.test -test.run '^$' -test.bench "^BenchmarkClient/$1\$" \
		-test.benchtime "$DURATION" -test.count 1) >"$2" 2>&1
}

# cpu OUT: the cpu-µs/call of one run's output.
cpu() {
	awk '/^BenchmarkClient/ {for (i = 2; i <= NF; i++) if ($i == "cpu-µs/call") print $(i-1)}' "$1"
}

median() { sort -n | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# half BARE-CPU STACK-CPU: runs both at once, the bare process on BARE-CPU and the stack's on
# STACK-CPU, and sets cb and cs to their CPU µs per call.
half() {
	one "$BARE" "$bin/bare" "$1" & local b=$!
	one "$STACK" "$bin/stack" "$2" & local s=$!
	wait $b || { echo "bench: $BARE failed:"; cat "$bin/bare"; exit 1; }
	wait $s || { echo "bench: $STACK failed:"; cat "$bin/stack"; exit 1; }
	cb=$(cpu "$bin/bare"); cs=$(cpu "$bin/stack")
	if [ -z "$cb" ] || [ -z "$cs" ]; then
		echo "bench: no cpu-µs/call in the output:"; cat "$bin/bare" "$bin/stack"; exit 1
	fi
}

echo "== client: bare ($BARE) and svckit ($STACK) at the same time, one CPU each, $ROUNDS rounds of 2 × $DURATION, load average $(cut -d' ' -f1-3 /proc/loadavg)"
ratios=() bares=() stacks=()
for r in $(seq "$ROUNDS"); do
	# Each round runs twice, the CPUs swapped: the two CPUs of a shared machine often run at
	# different speeds (one's sibling busy with another tenant), and the geometric mean of
	# the two halves' ratios cancels that factor.
	half 0 1; cb1=$cb cs1=$cs
	half 1 0; cb2=$cb cs2=$cs
	ratio=$(echo "sqrt(($cb1 / $cs1) * ($cb2 / $cs2))" | bc -l)
	cb=$(echo "sqrt($cb1 * $cb2)" | bc -l); cs=$(echo "sqrt($cs1 * $cs2)" | bc -l)
	printf '  round %d: µs-cpu/call on CPU 0 / CPU 1: bare %6.1f / %6.1f | svckit %6.1f / %6.1f | ratio %.3f\n' \
		"$r" "$cb1" "$cb2" "$cs2" "$cs1" "$ratio"
	ratios+=("$ratio") bares+=("$cb") stacks+=("$cs")
done
mb=$(printf '%s\n' "${bares[@]}" | median)
ms=$(printf '%s\n' "${stacks[@]}" | median)
printf '  median: bare %.1f µs, svckit %.1f µs of CPU per call; ratio of the medians %.3f\n' "$mb" "$ms" "$(echo "$mb / $ms" | bc -l)"
printf '  median of the per-round ratios: %.3f\n' "$(printf '%s\n' "${ratios[@]}" | median)"
