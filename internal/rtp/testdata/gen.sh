#!/bin/sh
# Regenerates the tshark fixtures from the shared lab captures.
# Needs tshark 4.0.x and ../shared beside the repository (pcaps + lab/rtpstreams2tsv.py).
# *.rtp.tsv.gz: one RTP packet per line, tshark -T fields.
# *.streams.tsv: tshark -q -z rtp,streams, as TSV.
# baresip_rtcp.rtcp.tsv: RTCP datagrams (hex) and tshark's decode of them.
set -eu
P=${PCAPS:-$(cd "$(dirname "$0")/../../../.." && pwd)/shared/pcaps}
L=${LAB:-$(cd "$(dirname "$0")/../../../.." && pwd)/shared/lab}
for f in baresip_rtcp sipp_kamailio sipp_rtpstream sipp_rtpstream_loss5 sipp_uacpcap_echo; do
	tshark -r "$P/$f.pcap" -Y rtp -T fields -e frame.time_epoch -e ip.src -e udp.srcport \
		-e ip.dst -e udp.dstport -e rtp.ssrc -e rtp.seq -e rtp.timestamp -e rtp.p_type -e rtp.marker \
		2>/dev/null | gzip -9n > "$f.rtp.tsv.gz"
	tshark -r "$P/$f.pcap" -q -z rtp,streams 2>/dev/null | python3 "$L/rtpstreams2tsv.py" > "$f.streams.tsv"
done
tshark -r "$P/baresip_rtcp.pcap" -Y rtcp -o rtcp.show_roundtrip_calculation:TRUE -T fields \
	-E occurrence=a -E aggregator=, \
	-e frame.time_epoch -e udp.srcport -e udp.dstport -e udp.payload \
	-e rtcp.pt -e rtcp.senderssrc -e rtcp.timestamp.ntp.msw -e rtcp.timestamp.ntp.lsw \
	-e rtcp.ssrc.identifier -e rtcp.ssrc.fraction -e rtcp.ssrc.cum_nr -e rtcp.ssrc.jitter \
	-e rtcp.ssrc.lsr -e rtcp.ssrc.dlsr -e rtcp.roundtrip-delay \
	2>/dev/null > baresip_rtcp.rtcp.tsv
