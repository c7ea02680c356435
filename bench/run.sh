#!/usr/bin/env bash
# bench/run.sh — svckit's full production stack against bare net/http and bare grpc-go,
# measured side by side in one run. The server is pinned to CPU 0 and the load generator
# (and the OTLP sink receiving svckit's spans) to CPU 1. Rounds alternate between the
# servers; the script prints each round and the median requests/s and ratio.
#
# It also prints the server's CPU time per request (user + system, from /proc), which is
# steadier than requests/s on a shared, noisy machine: other tenants steal wall-clock time
# from both servers, but not CPU time per request. Both ratios are printed.
#
#   bench/run.sh              # HTTP and gRPC, 5 rounds of 10s each
#   ROUNDS=3 DURATION=5s bench/run.sh http
#   GRPC_PORT=28081 ADMIN_PORT=29090 SINK_PORT=24318 bench/run.sh grpc   # beside another run
#   REQUEST_ID=1 bench/run.sh grpc   # every gRPC call carries an x-request-id, as svckit's
#                                    # client sends; the default sends none, as bare grpc-go
#                                    # does, and a svckit server makes one up (and returns
#                                    # it only with a failed call)
#   SIMUL=1 bench/run.sh             # each round runs bare and svckit at the same time, both
#                                    # on the server CPU, each with its own load generator:
#                                    # both see the same noise from other tenants, so the
#                                    # per-round ratios spread far less than alternated ones
#                                    # (each server gets about half the CPU, a different
#                                    # operating point from the default mode's)
#   RATE=9600 bench/run.sh http      # HTTP at a fixed offered rate (hey, CONNS workers)
#                                    # instead of wrk's closed loop: both servers then serve
#                                    # the same requests/s, and the CPU per request compares
#                                    # work at equal load (at saturation the slower server's
#                                    # load generator idles, and each of its writes also
#                                    # pays for waking it)
#
# Needs: wrk, taskset and bc (Debian: apt-get install -y wrk util-linux bc); hey for RATE.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
WHAT=${1:-all}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
# Ports, so that two runs on one machine do not collide.
HTTP_PORT=${HTTP_PORT:-18080}
GRPC_PORT=${GRPC_PORT:-18081}
ADMIN_PORT=${ADMIN_PORT:-19090}
SINK_PORT=${SINK_PORT:-14318}
GRPCLOAD_ARGS=()
[ -n "${REQUEST_ID:-}" ] && GRPCLOAD_ARGS+=(-request-id)
RATE=${RATE:-}
if [ -n "$RATE" ] && [ "$WHAT" != http ]; then
	echo "bench: RATE applies to HTTP only: bench/run.sh http"; exit 2
fi

for tool in wrk taskset ${RATE:+hey}; do
	command -v $tool >/dev/null || { echo "bench: $tool is not installed (apt-get install -y wrk hey)"; exit 1; }
done

bin=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$bin"' EXIT
go build -o "$bin/benchserver" ./bench/cmd/benchserver
go build -o "$bin/grpcload" ./bench/cmd/grpcload

# The OTLP sink receives the svckit servers' batched span exports.
taskset -c "$LOAD_CPU" "$bin/benchserver" -mode otlp-sink -addr "127.0.0.1:$SINK_PORT" &
export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$SINK_PORT
export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf
export OTEL_TRACES_SAMPLER=always_on

wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened"; exit 1; }

start_server() { # mode port [admin-port]
	# Log lines go to /dev/null: the write syscall per access-log line is still paid.
	taskset -c "$SERVER_CPU" "$bin/benchserver" -mode "$1" -addr "127.0.0.1:$2" -admin "127.0.0.1:${3:-$ADMIN_PORT}" >/dev/null 2>&1 &
	server_pid=$!
	wait_port "$2"
}

stop_server() { kill -TERM "$server_pid"; wait "$server_pid" 2>/dev/null || true; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/${1:-$server_pid}/stat"; }
hz=$(getconf CLK_TCK)

http_load() { # port duration -> wrk's output, or hey's at a fixed RATE
	if [ -n "$RATE" ]; then
		# hey's -q is per worker.
		taskset -c "$LOAD_CPU" hey -z "$2" -c "$CONNS" -q "$(((RATE + CONNS - 1) / CONNS))" \
			-m POST -T application/json -d '{"a":1,"b":2}' "http://127.0.0.1:$1/sum"
		return
	fi
	taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"$2" --latency -s bench/sum.lua "http://127.0.0.1:$1"
}

grpc_load() { # port duration -> grpcload's output
	taskset -c "$LOAD_CPU" "$bin/grpcload" "${GRPCLOAD_ARGS[@]}" -addr "127.0.0.1:$1" -c "$CONNS" -conns 4 -d "$2"
}

http_summary() { # mode wrk-output ticks -> "requests/s us-cpu/req latency"
	[ -n "$RATE" ] && { hey_summary "$@"; return; }
	if grep -q "Non-2xx" <<<"$2"; then echo "bench: $1 returned errors:" >&2; echo "$2" >&2; return 1; fi
	local n
	n=$(awk '/requests in/ {print $1}' <<<"$2")
	printf '%s %.2f %s\n' "$(awk '/Requests\/sec/ {print $2}' <<<"$2")" "$(echo "$3 * 1000000 / $hz / $n" | bc -l)" \
		"$(awk '$1=="50%" {p50=$2} $1=="99%" {p99=$2} END {print "p50=" p50 " p99=" p99}' <<<"$2")"
}

hey_summary() { # mode hey-output ticks -> "requests/s us-cpu/req latency"
	local n
	n=$(awk '$1 == "[200]" {print $2}' <<<"$2")
	if [ -z "$n" ] || awk '$1 ~ /^\[[0-9]+\]$/ && $1 != "[200]" {bad=1} END {exit !bad}' <<<"$2"; then
		echo "bench: $1 returned errors:" >&2; echo "$2" >&2; return 1
	fi
	printf '%s %.2f %s\n' "$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$2")" "$(echo "$3 * 1000000 / $hz / $n" | bc -l)" \
		"$(awk '$1=="50%%" || $1=="50%" {p50=$3 "s"} $1=="99%%" || $1=="99%" {p99=$3 "s"} END {print "p50=" p50 " p99=" p99}' <<<"$2")"
}

grpc_summary() { # mode grpcload-output ticks -> "requests/s us-cpu/req latency"
	if ! grep -q "failed: 0 " <<<"$2"; then echo "bench: $1 had failures: $2" >&2; return 1; fi
	local n
	n=$(awk '{print $4}' <<<"$2")
	printf '%s %.2f %s\n' "$(awk '{print $2}' <<<"$2")" "$(echo "$3 * 1000000 / $hz / $n" | bc -l)" \
		"$(awk '{print "p50=" $8 " p99=" $10}' <<<"$2")"
}

# simul_round KIND BARE-MODE SVCKIT-MODE: both servers on the server CPU at once, each
# loaded by its own generator on the load CPU; prints the bare line, then the svckit line.
simul_round() {
	local kind=$1 port p1 p2 t1a t1b t2a t2b o1 o2 tmp
	port=$HTTP_PORT
	[ "$kind" = grpc ] && port=$GRPC_PORT
	start_server "$2" "$port"; p1=$server_pid
	start_server "$3" "$((port + 1))" "$((ADMIN_PORT + 1))"; p2=$server_pid
	"${kind}_load" "$port" 2s >/dev/null & local w=$!
	"${kind}_load" "$((port + 1))" 2s >/dev/null
	wait $w
	tmp=$(mktemp -d)
	t1a=$(cpu_ticks $p1); t2a=$(cpu_ticks $p2)
	"${kind}_load" "$port" "$DURATION" >"$tmp/1" & w=$!
	"${kind}_load" "$((port + 1))" "$DURATION" >"$tmp/2"
	wait $w
	t1b=$(cpu_ticks $p1); t2b=$(cpu_ticks $p2)
	o1=$(cat "$tmp/1"); o2=$(cat "$tmp/2"); rm -rf "$tmp"
	server_pid=$p1 stop_server; server_pid=$p2 stop_server
	"${kind}_summary" "$2" "$o1" "$((t1b - t1a))" || exit 1
	"${kind}_summary" "$3" "$o2" "$((t2b - t2a))" || exit 1
}

round() { # kind mode -> "requests/s us-cpu/req latency" of the server alone
	local port=$HTTP_PORT out t0 t1
	[ "$1" = grpc ] && port=$GRPC_PORT
	start_server "$2" "$port"
	"${1}_load" "$port" 2s >/dev/null # warm-up
	t0=$(cpu_ticks)
	out=$("${1}_load" "$port" "$DURATION")
	t1=$(cpu_ticks)
	stop_server
	"${1}_summary" "$2" "$out" "$((t1 - t0))" || exit 1
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

compare() { # title kind bare-mode svckit-mode
	local title=$1 kind=$2 bare=$3 kit=$4
	local b=() k=() bc_=() kc=() rr=()
	echo "== $title: $bare vs $kit, $ROUNDS rounds of $DURATION, $CONNS connections${RATE:+, $RATE requests/s offered}, server on CPU $SERVER_CPU, load on CPU $LOAD_CPU${REQUEST_ID:+, callers send x-request-id}${SIMUL:+, both servers at once}, load average $(cut -d' ' -f1-3 /proc/loadavg)"
	for r in $(seq "$ROUNDS"); do
		local rb rk both
		if [ -n "${SIMUL:-}" ]; then
			both=$(simul_round "$kind" "$bare" "$kit") || exit 1
			rb=$(sed -n 1p <<<"$both"); rk=$(sed -n 2p <<<"$both")
		else
			rb=$(round "$kind" "$bare") || exit 1
			rk=$(round "$kind" "$kit") || exit 1
		fi
		read -r rb_rps rb_cpu rb_lat <<<"$rb"
		read -r rk_rps rk_cpu rk_lat <<<"$rk"
		b+=("$rb_rps"); k+=("$rk_rps"); bc_+=("$rb_cpu"); kc+=("$rk_cpu"); rr+=("$(echo "$rb_cpu / $rk_cpu" | bc -l)")
		printf '  round %d: %-11s %7.0f req/s %6.1f us-cpu/req %s | %-11s %7.0f req/s %6.1f us-cpu/req %s | ratio %.3f (cpu %.3f)\n' "$r" \
			"$bare" "$rb_rps" "$rb_cpu" "$rb_lat" "$kit" "$rk_rps" "$rk_cpu" "$rk_lat" \
			"$(echo "$rk_rps / $rb_rps" | bc -l)" "$(echo "$rb_cpu / $rk_cpu" | bc -l)"
	done
	local mb mk mbc mkc
	mb=$(printf '%s\n' "${b[@]}" | median); mk=$(printf '%s\n' "${k[@]}" | median)
	mbc=$(printf '%s\n' "${bc_[@]}" | median); mkc=$(printf '%s\n' "${kc[@]}" | median)
	printf '  median: %s %.0f req/s (%.1f us CPU/req), %s %.0f req/s (%.1f us CPU/req)\n' "$bare" "$mb" "$mbc" "$kit" "$mk" "$mkc"
	printf '  ratio svckit/bare: throughput %.3f, CPU per request %.3f\n' "$(echo "$mk / $mb" | bc -l)" "$(echo "$mbc / $mkc" | bc -l)"
	# Each round's bare and svckit ran back to back, so the median of the rounds' own
	# ratios is less exposed to a round that other tenants slowed on one side only.
	printf '  median of the per-round CPU ratios: %.3f\n' "$(printf '%s\n' "${rr[@]}" | median)"
}

case $WHAT in
http) compare HTTP http bare-http svckit-http ;;
grpc) compare gRPC grpc bare-grpc svckit-grpc ;;
all)
	compare HTTP http bare-http svckit-http
	compare gRPC grpc bare-grpc svckit-grpc
	;;
*) echo "usage: bench/run.sh [http|grpc|all]"; exit 2 ;;
esac
