#!/usr/bin/env bash
# Throughput of `voipsensor read` against tshark and against a bare
# read-and-decode loop, on one generated capture of >= 1 M packets with
# hundreds of concurrent calls. Each command runs RUNS times (default 3),
# the commands taking turns so that they share the machine's load; the
# script prints the median wall time, the median CPU time (user+sys,
# steadier than wall time on a shared machine) and CPU time per packet,
# the peak RSS and the ratios of both. The bare loop also reads the same
# capture as pcapng (when editcap is installed) and gzipped, for the file
# reader's formats.
#
# Usage: scripts/bench.sh [CALLS] [CONCURRENCY] [TALK]   (defaults 420 300 30s)
#        RUNS=5 scripts/bench.sh
# Needs: go, tshark, python3, /usr/bin/time (GNU time: Debian package "time").
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS=${1:-420}
CONC=${2:-300}
TALK=${3:-30s}
RUNS=${RUNS:-3}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

go build -o "$W/voipsensor" ./cmd/voipsensor
"$W/voipsensor" gen -calls "$CALLS" -concurrency "$CONC" -talk "$TALK" -loss 0.01 -jitter 5ms -seed 7 \
	-o "$W/bench.pcap" -truth "$W/truth.json" >/dev/null
PKTS=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["packets"])' "$W/truth.json")
SIZE=$(stat -c %s "$W/bench.pcap")
echo "capture: $PKTS packets, $CALLS calls, $CONC concurrent, $((SIZE/1024/1024)) MiB; $RUNS runs each, medians"
cat "$W/bench.pcap" >/dev/null # warm the page cache for everyone
gzip -1 -c "$W/bench.pcap" >"$W/bench.pcap.gz"
FORMATS="decode_only decode_only_gz"
if command -v editcap >/dev/null; then
	editcap -F pcapng "$W/bench.pcap" "$W/bench.pcapng"
	FORMATS="decode_only decode_only_ng decode_only_gz"
fi

# run NAME CMD...: runs CMD once, appending "wall cpu rss_kib" to $W/NAME.runs.
run() {
	local name=$1; shift
	/usr/bin/time -f "%e %U %S %M" -o "$W/$name.time" "$@" >"$W/$name.out" 2>"$W/$name.err"
	awk '{printf "%s %.2f %s\n", $1, $2+$3, $4}' "$W/$name.time" >>"$W/$name.runs"
}

for _ in $(seq "$RUNS"); do
	run decode_only "$W/voipsensor" read --decode-only -q "$W/bench.pcap"
	[ -f "$W/bench.pcapng" ] && run decode_only_ng "$W/voipsensor" read --decode-only -q "$W/bench.pcapng"
	run decode_only_gz "$W/voipsensor" read --decode-only -q "$W/bench.pcap.gz"
	run voipsensor "$W/voipsensor" read --json -q "$W/bench.pcap"
	run tshark tshark -r "$W/bench.pcap" -q -z rtp,streams -z sip,stat
done

# median FILE COLUMN
median() { awk -v c="$2" '{print $c}' "$1" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '%-14s %9s %9s %11s %14s %11s   %s\n' "" "wall s" "cpu s" "peak RSS" "packets/s" "cpu ns/pkt" "(wall, cpu per run)"
for name in $FORMATS voipsensor tshark; do
	wall=$(median "$W/$name.runs" 1)
	cpu=$(median "$W/$name.runs" 2)
	rss=$(median "$W/$name.runs" 3)
	printf '%-14s %9.2f %9.2f %7.1f MiB %14.0f %11.0f   %s\n' "$name" "$wall" "$cpu" "$(echo "$rss/1024" | bc -l)" \
		"$(echo "$PKTS/$wall" | bc -l)" "$(echo "$cpu*1000000000/$PKTS" | bc -l)" "$(awk '{printf "%s/%s ", $1, $2}' "$W/$name.runs")"
	eval "W_$name=$wall C_$name=$cpu"
done

CALLS_OUT=$(grep -c '"type":"call"' "$W/voipsensor.out" || true)
echo "voipsensor reported $CALLS_OUT calls"
printf 'tshark / voipsensor      = %5.1fx wall, %5.1fx cpu (target >= 35x, issue 19)\n' \
	"$(echo "$W_tshark/$W_voipsensor" | bc -l)" "$(echo "$C_tshark/$C_voipsensor" | bc -l)"
printf 'voipsensor / decode-only = %5.2fx wall, %5.2fx cpu (target <= 2x)\n' \
	"$(echo "$W_voipsensor/$W_decode_only" | bc -l)" "$(echo "$C_voipsensor/$C_decode_only" | bc -l)"
printf 'decode-only              = %5.2f s wall (target <= 0.107 s: 1.5x faster than 0.16 s, issue 19)\n' "$W_decode_only"
