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
#                                    # does, and a svckit server then returns the one it made
#
# Needs: wrk and taskset (Debian: apt-get install -y wrk util-linux).
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

for tool in wrk taskset; do
	command -v $tool >/dev/null || { echo "bench: $tool is not installed (apt-get install -y wrk)"; exit 1; }
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

start_server() { # mode port
	# Log lines go to /dev/null: the write syscall per access-log line is still paid.
	taskset -c "$SERVER_CPU" "$bin/benchserver" -mode "$1" -addr "127.0.0.1:$2" -admin "127.0.0.1:$ADMIN_PORT" >/dev/null 2>&1 &
	server_pid=$!
	wait_port "$2"
}

stop_server() { kill -TERM "$server_pid"; wait "$server_pid" 2>/dev/null || true; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }
hz=$(getconf CLK_TCK)

http_round() { # mode -> requests/s
	start_server "$1" "$HTTP_PORT"
	taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d2s -s bench/sum.lua "http://127.0.0.1:$HTTP_PORT" >/dev/null # warm-up
	local out t0 t1
	t0=$(cpu_ticks)
	out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s bench/sum.lua "http://127.0.0.1:$HTTP_PORT")
	t1=$(cpu_ticks)
	stop_server
	if grep -q "Non-2xx" <<<"$out"; then echo "bench: $1 returned errors:"; echo "$out"; exit 1; fi
	local n us
	n=$(awk '/requests in/ {print $1}' <<<"$out")
	us=$(echo "($t1 - $t0) * 1000000 / $hz / $n" | bc -l)
	printf '%s %.2f %s\n' "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" "$us" "$(awk '$1=="50%" {p50=$2} $1=="99%" {p99=$2} END {print "p50=" p50 " p99=" p99}' <<<"$out")"
}

grpc_round() {
	start_server "$1" "$GRPC_PORT"
	taskset -c "$LOAD_CPU" "$bin/grpcload" "${GRPCLOAD_ARGS[@]}" -addr "127.0.0.1:$GRPC_PORT" -c "$CONNS" -conns 4 -d 2s >/dev/null
	local out t0 t1
	t0=$(cpu_ticks)
	out=$(taskset -c "$LOAD_CPU" "$bin/grpcload" "${GRPCLOAD_ARGS[@]}" -addr "127.0.0.1:$GRPC_PORT" -c "$CONNS" -conns 4 -d "$DURATION")
	t1=$(cpu_ticks)
	stop_server
	if ! grep -q "failed: 0 " <<<"$out"; then echo "bench: $1 had failures: $out"; exit 1; fi
	local n us
	n=$(awk '{print $4}' <<<"$out")
	us=$(echo "($t1 - $t0) * 1000000 / $hz / $n" | bc -l)
	printf '%s %.2f %s\n' "$(awk '{print $2}' <<<"$out")" "$us" "$(awk '{print "p50=" $8 " p99=" $10}' <<<"$out")"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

compare() { # kind round-func bare-mode svckit-mode target
	local kind=$1 fn=$2 bare=$3 kit=$4
	local b=() k=() bc_=() kc=() rr=()
	echo "== $kind: $bare vs $kit, $ROUNDS rounds of $DURATION, $CONNS connections, server on CPU $SERVER_CPU, load on CPU $LOAD_CPU${REQUEST_ID:+, callers send x-request-id}, load average $(cut -d' ' -f1-3 /proc/loadavg)"
	for r in $(seq "$ROUNDS"); do
		local rb rk
		rb=$($fn "$bare"); rk=$($fn "$kit")
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
http) compare HTTP http_round bare-http svckit-http ;;
grpc) compare gRPC grpc_round bare-grpc svckit-grpc ;;
all)
	compare HTTP http_round bare-http svckit-http
	compare gRPC grpc_round bare-grpc svckit-grpc
	;;
*) echo "usage: bench/run.sh [http|grpc|all]"; exit 2 ;;
esac
