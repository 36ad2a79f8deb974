#!/usr/bin/env bash
# Throughput of `voipsensor read` against tshark and against a bare
# read-and-decode loop, on one generated capture of >= 1 M packets with
# hundreds of concurrent calls. Prints wall time, peak RSS and the ratios.
#
# Usage: scripts/bench.sh [CALLS] [CONCURRENCY] [TALK]   (defaults 420 300 30s)
# Needs: go, tshark, /usr/bin/time (GNU time: Debian package "time").
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS=${1:-420}
CONC=${2:-300}
TALK=${3:-30s}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

go build -o "$W/voipsensor" ./cmd/voipsensor
"$W/voipsensor" gen -calls "$CALLS" -concurrency "$CONC" -talk "$TALK" -loss 0.01 -jitter 5ms -seed 7 \
	-o "$W/bench.pcap" -truth "$W/truth.json" >/dev/null
PKTS=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["packets"])' "$W/truth.json")
SIZE=$(stat -c %s "$W/bench.pcap")
echo "capture: $PKTS packets, $CALLS calls, $CONC concurrent, $((SIZE/1024/1024)) MiB"

# measure NAME CMD...: runs CMD, records wall seconds and peak RSS (KiB).
measure() {
	local name=$1; shift
	/usr/bin/time -f "%e %M" -o "$W/$name.time" "$@" >"$W/$name.out" 2>"$W/$name.err"
	read -r secs rss <"$W/$name.time"
	printf '%-14s %8.2f s  %8.1f MiB peak RSS  %10.0f packets/s\n' "$name" "$secs" "$(echo "$rss/1024" | bc -l)" \
		"$(echo "$PKTS/$secs" | bc -l)"
	eval "T_$name=$secs"
}

cat "$W/bench.pcap" >/dev/null # warm the page cache for everyone
measure decode_only "$W/voipsensor" read --decode-only -q "$W/bench.pcap"
measure voipsensor "$W/voipsensor" read --json -q "$W/bench.pcap"
measure tshark tshark -r "$W/bench.pcap" -q -z rtp,streams -z sip,stat

CALLS_OUT=$(grep -c '"type":"call"' "$W/voipsensor.out" || true)
echo "voipsensor reported $CALLS_OUT calls"
printf 'tshark / voipsensor      = %.1fx faster (target >= 20x)\n' "$(echo "$T_tshark/$T_voipsensor" | bc -l)"
printf 'voipsensor / decode-only = %.2fx (target <= 2x)\n' "$(echo "$T_voipsensor/$T_decode_only" | bc -l)"
