#!/usr/bin/env bash
# bench/shop.sh — the shop end to end under `svckit dev`: orders per second, latency, and
# where the CPU goes, per order and per process (each service, svckit dev itself with its
# log, trace and metric collection, and the load generator).
#
#   bench/shop.sh                       # 16 connections, 30 s, one-item orders
#   CONNS=32 DURATION=60s bench/shop.sh
#   RATE=120 bench/shop.sh              # a fixed 120 orders/s (open model) instead of as fast
#                                       # as CONNS go: CPU per order of two builds compares
#                                       # fairly only at the same rate (some costs are per second)
#   PROFILE=/tmp/prof bench/shop.sh    # also CPU profiles of every process during the run
#                                       # (services: /debug/pprof on their admin port; svckit
#                                       # dev: -cpuprofile); profiling costs some CPU itself
#
# CPU time comes from /proc (user + system), so it is a steadier figure than orders/s on
# a shared machine. Beside it, each process's write calls and KB written per order
# (/proc/PID/io: sockets, SQLite's WAL, logs); with SQLite's group commits these fall as
# groups grow, so they too depend on the rate and the machine's load. Nothing but Go is
# needed.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-30s}
CONNS=${CONNS:-16}
ITEMS=${ITEMS:-'[{"productId":"sku-espresso","quantity":1}]'}
PROFILE=${PROFILE:-}
RATE=${RATE:-0}
SVCKIT=${SVCKIT:-} # a prebuilt svckit binary (an A/B "before" build); default: build this tree

work=$(mktemp -d)
dev=""
cleanup() {
	if [ -n "$dev" ] && kill -0 "$dev" 2>/dev/null; then
		kill -TERM "$dev"
		wait "$dev" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

if [ -n "$SVCKIT" ]; then cp "$SVCKIT" "$work/svckit"; else go build -o "$work/svckit" ./cmd/svckit; fi
devflags=()
if [ -n "$PROFILE" ]; then
	mkdir -p "$PROFILE"
	devflags=(-cpuprofile "$PROFILE/svckit-dev.pprof")
fi
"$work/svckit" dev "${devflags[@]}" -quiet -no-reload -no-color -listen 127.0.0.1:0 -state-dir "$work/state" examples/shop >"$work/dev.log" 2>&1 &
dev=$!
for _ in $(seq 600); do
	grep -q '^  token ' "$work/dev.log" && break
	kill -0 "$dev" 2>/dev/null || { cat "$work/dev.log"; exit 1; }
	sleep 0.5
done
entry=$(awk '/^  entry /{print $2; exit}' "$work/dev.log")
token=$(awk '/^  token /{print $2; exit}' "$work/dev.log")
[ -n "$entry" ] && [ -n "$token" ] || { echo "bench: svckit dev did not start"; cat "$work/dev.log"; exit 1; }

hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
procs() { # "pid name" of svckit dev and its children
	echo "$dev svckit-dev"
	ps -o pid=,comm= --ppid "$dev"
}
# ticks, then write(2)-family calls and bytes written (sockets, SQLite's WAL, logs) from
# /proc/PID/io: the writes per order hardly depend on how busy the machine is.
io() { awk '/^syscw:/{c=$2} /^wchar:/{w=$2} END{print c + 0, w + 0}' "/proc/$1/io"; }
# garbage collections so far, from a service's admin /metrics (Go's collector); 0 for
# svckit dev, which has no admin port
gcs() {
	local admin
	admin=$(tr '\0' '\n' <"/proc/$1/environ" 2>/dev/null | sed -n 's/^ADMIN_ADDR=//p')
	[ -n "$admin" ] || { echo 0; return; }
	curl -fsS "http://$admin/metrics" 2>/dev/null | awk '/^go_gc_duration_seconds_count/{n=$2} END{print n + 0}'
}
snapshot() { procs | while read -r pid name; do echo "$name/$pid $(ticks "$pid") $(io "$pid") $(gcs "$pid")"; done | sort; }

load() { "$work/svckit" load -url "$entry" -token "$token" -c "$CONNS" -rate "$RATE" -items "$ITEMS" -d "$1"; }
load 5s >/dev/null # warm-up: connections, caches, JIT-free but page-faulted

snapshot >"$work/before"
if [ -n "$PROFILE" ]; then # a profile of each service over the load, less 2 s at each end
	secs=$(($(sed 's/s$//' <<<"$DURATION") - 4)) # DURATION in seconds here: 30s, 60s
	profs=()
	while read -r pid name; do
		[ "$pid" = "$dev" ] && continue
		admin=$(tr '\0' '\n' <"/proc/$pid/environ" | sed -n 's/^ADMIN_ADDR=//p')
		(sleep 2; curl -fsS -o "$PROFILE/$name-$pid.pprof" "http://$admin/debug/pprof/profile?seconds=$secs") &
		profs+=($!)
	done < <(procs)
fi
TIMEFORMAT='%U %S'
{ time load "$DURATION" >"$work/load.out" 2>/dev/null; } 2>"$work/load.time"
snapshot >"$work/after"
[ -z "$PROFILE" ] || wait "${profs[@]}" # the profiles

cat "$work/load.out"
orders=$(awk '/^orders: /{print $2; exit}' "$work/load.out")
failures=$(awk '/^failures: /{print $2; exit}' "$work/load.out")
ok=$((orders - failures))
echo
echo "CPU per order ($ok orders in $DURATION, $CONNS connections):"
printf '%-22s %10s %12s %14s %14s %12s\n' process "cpu s" "ms/order" "writes/order" "KB/order" "GCs/1k ord"
join "$work/before" "$work/after" | awk -v hz="$hz" -v n="$ok" '
	{ s = ($6 - $2) / hz; c = $7 - $3; w = $8 - $4; g = $9 - $5; total += s; tc += c; tw += w; tg += g
	  printf "%-22s %10.2f %12.3f %14.1f %14.2f %12.1f\n", $1, s, 1000 * s / n, c / n, w / n / 1024, 1000 * g / n }
	END { printf "%-22s %10.2f %12.3f %14.1f %14.2f %12.1f\n", "total (dev, services)", total, 1000 * total / n, tc / n, tw / n / 1024, 1000 * tg / n }' | sort -k3 -g -r
read -r u s <"$work/load.time"
awk -v u="$u" -v s="$s" -v n="$ok" 'BEGIN { printf "%-22s %10.2f %12.3f\n", "svckit load", u + s, 1000 * (u + s) / n }'
echo
awk '/^VmRSS|^VmHWM/{printf "svckit dev %s %.0f MB\n", $1, $2 / 1024}' "/proc/$dev/status"
# the services' peak resident memory: what their heaps (sized by the GC's goal) cost
procs | while read -r pid name; do
	[ "$pid" = "$dev" ] && continue
	awk -v n="$name/$pid" '/^VmHWM/{printf "%s %.0f MB", n, $2 / 1024}' "/proc/$pid/status"
	echo
done | sort | awk 'BEGIN{printf "services VmHWM:"} {printf " %s %s %s;", $1, $2, $3; t += $2} END{printf " total %d MB\n", t}'

