#!/usr/bin/env bash
# make-demo.sh: remake internal/demo/demo.pcap.gz, the capture 'voipsensor demo'
# replays. Developers run it by hand after changing the generator; the result
# is committed, so neither the build nor the tests need espeak-ng or sox.
#
# 1. espeak-ng speaks three two-sided conversations (English, German, Czech;
#    a different voice on each side) and sox turns each line into 8 kHz mono
#    16-bit PCM. Each conversation becomes two tracks of equal length, one per
#    direction: while one side speaks the other track holds silence of the
#    same length, then both pause briefly (turn-taking).
# 2. 'voipsensor gen' encodes the tracks to G.711 in eight runs that differ in
#    codec, impairments and outcome, each with its own seed, start time and
#    address block (-addr-offset), and mergecap interleaves them by time.
#
# What the runs request (internal/demo's test checks these counts), one call
# per run so that the start times below are exact:
#   en  English, PCMU, 3 answered calls, RTCP, and
#       4 registrations (with -register-failed 0.25 and seed 11: one refused
#       with 403, one unregistered, two bound)
#   de  German, PCMA, 2 answered calls, RTCP
#   cs  Czech, PCMA, 1 answered call with 3% loss and 60 ms jitter, RTCP
#   one call rejected (486, 404 or 503), one cancelled while ringing (487)
# Every answered call asks for 27-36 s of talk (the generator draws ±20%,
# so 20-45 s). So 8 calls, 6 of them answered with two RTP streams each, and 4
# registrations, in about 85 s; 3-4 calls overlap from 12 s to 55 s.
#
# Usage: scripts/make-demo.sh [OUT]   (default internal/demo/demo.pcap.gz)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-internal/demo/demo.pcap.gz}

for tool in espeak-ng sox soxi mergecap go; do
	command -v "$tool" >/dev/null || { echo "make-demo.sh: $tool not found (apt-get install espeak-ng sox wireshark-common)" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/voipsensor" ./cmd/voipsensor

# fmt8k: sox options for 8 kHz mono signed 16-bit WAV, without dither so
# that silence stays digital zero and the output is reproducible.
fmt8k=(-r 8000 -c 1 -b 16 -e signed-integer)
n=0

# say VOICE TEXT OUT: speak TEXT, resampled to 8 kHz, peak at -3 dBFS, with a
# telephone band-pass (300-3400 Hz).
say() {
	espeak-ng -v "$1" -s 155 -w "$work/raw.wav" "$2"
	sox -D -R "$work/raw.wav" "${fmt8k[@]}" "$3" sinc 300-3400 norm -3
}

# silence SECONDS OUT
silence() { sox -D -R -n "${fmt8k[@]}" "$2" trim 0 "$1"; }

# conversation NAME CALLER_VOICE CALLEE_VOICE LINE...: lines alternate
# between the caller (first) and the callee; writes NAME-caller.wav and
# NAME-callee.wav of equal length.
conversation() {
	local name=$1 va=$2 vb=$3 i=0 line clip quiet gap dur
	shift 3
	local caller=() callee=()
	for line in "$@"; do
		n=$((n + 1))
		clip=$work/c$n.wav quiet=$work/q$n.wav gap=$work/g$n.wav
		if ((i % 2 == 0)); then say "$va" "$line" "$clip"; else say "$vb" "$line" "$clip"; fi
		dur=$(soxi -D "$clip")
		silence "$dur" "$quiet"
		# 0.3-0.8 s between turns, fixed by position for reproducibility.
		silence "0.$((3 + (i * 7) % 6))" "$gap"
		if ((i % 2 == 0)); then
			caller+=("$clip" "$gap") callee+=("$quiet" "$gap")
		else
			caller+=("$quiet" "$gap") callee+=("$clip" "$gap")
		fi
		i=$((i + 1))
	done
	sox -D -R "${caller[@]}" "$work/$name-caller.wav"
	sox -D -R "${callee[@]}" "$work/$name-callee.wav"
	echo "conversation $name: $(soxi -D "$work/$name-caller.wav") s" >&2
}

conversation en en-us+m3 en+f3 \
	"Hello, this is Martin from the network operations centre. Do you have a minute?" \
	"Hi Martin, sure. What is going on?" \
	"We see a lot of jitter on the trunk to Prague since about nine this morning." \
	"That is strange. We did not change anything on our side." \
	"Could you check the edge router? The queue on the uplink looks full." \
	"Give me a second, I will open the dashboard." \
	"Thanks. The calls sound choppy and some customers complain about echo." \
	"I can see it now. The backup job is running on the same link." \
	"That explains it. Can you move it to the evening?" \
	"Yes, I will reschedule it to eight p m and put voice traffic in the priority queue." \
	"Perfect. I will watch the mean opinion score for the next hour." \
	"Great. Call me if it does not improve." \
	"Will do. Thanks a lot, bye." \
	"Bye bye."

conversation de de+m1 de+f2 \
	"Guten Morgen, hier ist Schmidt von der Firma Weber. Ich rufe wegen der Rechnung an." \
	"Guten Morgen, Herr Schmidt. Haben Sie die Rechnungsnummer zur Hand?" \
	"Ja, die Nummer ist vier fünf sieben drei zwei." \
	"Einen Moment bitte, ich suche sie heraus." \
	"Der Betrag scheint mir zu hoch zu sein. Wir haben nur zehn Lizenzen bestellt." \
	"Ich sehe hier zwölf Lizenzen. Das war wohl ein Fehler bei der Bestellung." \
	"Können Sie das korrigieren und eine neue Rechnung schicken?" \
	"Selbstverständlich. Die neue Rechnung kommt heute noch per E-Mail." \
	"Vielen Dank für Ihre Hilfe." \
	"Gern geschehen. Einen schönen Tag noch, auf Wiederhören." \
	"Auf Wiederhören."

conversation cs cs+m2 cs+f1 \
	"Dobrý den, tady Novák. Volám kvůli té objednávce na pondělí." \
	"Dobrý den, pane Nováku. Ano, mám ji tady před sebou." \
	"Mohli bychom dodávku přesunout na úterý dopoledne?" \
	"Úterý dopoledne je v pořádku. Kolem desáté hodiny?" \
	"Deset hodin je ideální. A přivezete i ty náhradní kabely?" \
	"Ano, kabely jsou už zabalené. Řidič vám zavolá půl hodiny předem." \
	"Výborně. A faktura přijde jako obvykle?" \
	"Ano, elektronicky do konce týdne." \
	"Děkuji, to je všechno. Na shledanou." \
	"Na shledanou, hezký den."

# gen NAME START ADDR-OFFSET SEED FLAGS...: one generator run.
vs=$work/voipsensor
run() {
	local name=$1 start=$2 off=$3 seed=$4
	shift 4
	"$vs" gen -start "$start" -addr-offset "$off" -seed "$seed" -ptime 20ms -o "$work/run-$name.pcap" "$@" >&2
}
t0=2026-01-01T09:00
en=(-audio-caller "$work/en-caller.wav" -audio-callee "$work/en-callee.wav")
de=(-audio-caller "$work/de-caller.wav" -audio-callee "$work/de-callee.wav")
cs=(-audio-caller "$work/cs-caller.wav" -audio-callee "$work/cs-callee.wav")
# One call per run, so that every start time is fixed here.
run en-a "$t0:00Z" 0 11 -calls 1 -talk 30s -codec PCMU -rtcp -registrations 4 -register-failed 0.25 "${en[@]}"
run failed "$t0:03Z" 10 12 -calls 1 -failed 1 -codec PCMU
run de-a "$t0:05Z" 20 13 -calls 1 -talk 36s -codec PCMA -rtcp "${de[@]}"
run cs "$t0:12Z" 30 14 -calls 1 -talk 36s -codec PCMA -rtcp -loss 0.03 -jitter 60ms "${cs[@]}"
run en-b "$t0:30Z" 40 15 -calls 1 -talk 28s -codec PCMU -rtcp "${en[@]}"
run de-b "$t0:40Z" 50 16 -calls 1 -talk 30s -codec PCMA -rtcp "${de[@]}"
run cancelled "$t0:48Z" 60 17 -calls 1 -cancelled 1 -codec PCMA
run en-c "$t0:58Z" 70 18 -calls 1 -talk 27s -codec PCMU -rtcp "${en[@]}"

mergecap -F pcap -w "$work/demo.pcap" "$work"/run-*.pcap
gzip -9n <"$work/demo.pcap" >"$out"
echo "wrote $out: $(stat -c %s "$out") bytes ($(stat -c %s "$work/demo.pcap") uncompressed)" >&2
