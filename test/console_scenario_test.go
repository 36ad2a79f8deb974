package test

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/voipsensor/voipsensor/internal/g711"
)

// The console's quality scenario (TestWebConsoleQuality): a capture written
// packet by packet, stamped from the moment it is made, so that replayed in
// real time it shows calls in progress with a known truth.
//
//   - Call A, the one under test: two UAs on one host (127.0.0.1:5060 calls
//     127.0.0.1:5062; audio 16000 ↔ 16002, video 16010 ↔ 16012). INVITE at
//     1 s, ringing until the 200 OK at scenarioAnswer, then scenarioTalk of
//     PCMU both ways with the same SSRC (as sipp sends): the caller's
//     stream loses 0.6 % of its packets, the callee's 4 % (single and
//     double losses). The caller sends two RFC 2833 digits on an SSRC of
//     their own, and 2 s of silence suppression with comfort noise inside
//     its voice stream; the callee sends video at 60 packets a second, more
//     than its voice. The caller hangs up.
//   - Call B: answered at 3.5 s between two hosts, clean, until 100 s.
//   - Call C: ringing from 1.6 s, cancelled at 100 s.
//   - Registrations: 2001 registers (OK), 2002 is refused (401, then 403:
//     Failed), 2003 registers and unregisters (Unregister).
const (
	scenarioAnswer = 15 * time.Second
	scenarioTalk   = 28 * time.Second
	scenarioEnd    = 120 * time.Second
)

// scenarioCallA are call A's Call-ID and the addresses its streams are sent
// from, with the direction the console must show for each.
const scenarioCallA = "lossy-onehost@console.test"

var scenarioSides = map[string]string{
	"127.0.0.1:16000": "caller", // voice and DTMF
	"127.0.0.1:16002": "callee", // voice
	"127.0.0.1:16012": "callee", // video
}

// capPkt is one UDP datagram of a scenario.
type capPkt struct {
	at       time.Duration
	src, dst netip.AddrPort
	payload  []byte
}

// sipMessage builds a SIP message: start line, the dialog's headers, extra
// header lines and an optional SDP body.
func sipMessage(first, callID, from, to string, cseq int, method string, via netip.AddrPort, extra, body string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-%08x-%d%s\r\n", first, via, crc(callID), cseq, method)
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nMax-Forwards: 70\r\n%s", from, to, callID, cseq, method, extra)
	if body == "" {
		b.WriteString("Content-Length: 0\r\n\r\n")
	} else {
		fmt.Fprintf(&b, "Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}
	return []byte(b.String())
}

func crc(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

// scenarioSDP offers PCMU with telephone-event and CN on audio, and H264
// on video when video is valid.
func scenarioSDP(audio, video netip.AddrPort) string {
	s := fmt.Sprintf("v=0\r\no=- %d 1 IN IP4 %s\r\ns=call\r\nc=IN IP4 %s\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0 101 13\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=rtpmap:13 CN/8000\r\na=ptime:20\r\na=sendrecv\r\n",
		audio.Port(), audio.Addr(), audio.Addr(), audio.Port())
	if video.IsValid() {
		s += fmt.Sprintf("m=video %d RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=sendrecv\r\n", video.Port())
	}
	return s
}

func rtpBytes(pt uint8, marker bool, seq uint16, ts, ssrc uint32, payload []byte) []byte {
	p := make([]byte, 12+len(payload))
	p[0], p[1] = 0x80, pt
	if marker {
		p[1] |= 0x80
	}
	binary.BigEndian.PutUint16(p[2:], seq)
	binary.BigEndian.PutUint32(p[4:], ts)
	binary.BigEndian.PutUint32(p[8:], ssrc)
	copy(p[12:], payload)
	return p
}

// tone returns 20 ms of a hz sine at -10 dBFS in PCMU, from sample i.
func tone(hz float64, i int) []byte {
	out := make([]byte, 160)
	for k := range out {
		out[k] = g711.EncodeUlaw(int16(10362 * math.Sin(2*math.Pi*hz*float64(i+k)/8000)))
	}
	return out
}

// dialog scripts one INVITE dialog's SIP.
type dialog struct {
	id                   string
	caller, callee       netip.AddrPort
	from, to             string // name-addr with tags
	pkts                 *[]capPkt
	callerUA, calleeUA   string
	callerSDP, calleeSDP string
}

func (d *dialog) add(at time.Duration, fromCaller bool, p []byte) {
	src, dst := d.caller, d.callee
	if !fromCaller {
		src, dst = dst, src
	}
	*d.pkts = append(*d.pkts, capPkt{at, src, dst, p})
}

func (d *dialog) invite(at time.Duration) {
	ruri := "sip:" + strings.SplitN(strings.TrimPrefix(d.to[strings.Index(d.to, "<")+1:], "sip:"), "@", 2)[0] + "@" + d.callee.String()
	to := d.to[:strings.Index(d.to, ">")+1]
	d.add(at, true, sipMessage("INVITE "+ruri+" SIP/2.0", d.id, d.from, to, 1, "INVITE", d.caller,
		"Contact: <sip:"+d.caller.String()+">\r\nUser-Agent: "+d.callerUA+"\r\n", d.callerSDP))
	d.add(at+20*time.Millisecond, false, sipMessage("SIP/2.0 100 Trying", d.id, d.from, to, 1, "INVITE", d.caller, "", ""))
	d.add(at+100*time.Millisecond, false, sipMessage("SIP/2.0 180 Ringing", d.id, d.from, d.to, 1, "INVITE", d.caller,
		"Contact: <sip:"+d.callee.String()+">\r\nUser-Agent: "+d.calleeUA+"\r\n", ""))
}

func (d *dialog) answer(at time.Duration) {
	d.add(at, false, sipMessage("SIP/2.0 200 OK", d.id, d.from, d.to, 1, "INVITE", d.caller,
		"Contact: <sip:"+d.callee.String()+">\r\nUser-Agent: "+d.calleeUA+"\r\n", d.calleeSDP))
	d.add(at+20*time.Millisecond, true, sipMessage("ACK sip:"+d.callee.String()+" SIP/2.0", d.id, d.from, d.to, 1, "ACK", d.caller, "", ""))
}

func (d *dialog) bye(at time.Duration) {
	d.add(at, true, sipMessage("BYE sip:"+d.callee.String()+" SIP/2.0", d.id, d.from, d.to, 2, "BYE", d.caller, "", ""))
	d.add(at+20*time.Millisecond, false, sipMessage("SIP/2.0 200 OK", d.id, d.from, d.to, 2, "BYE", d.caller, "", ""))
}

func (d *dialog) cancel(at time.Duration) {
	to := d.to[:strings.Index(d.to, ">")+1]
	d.add(at, true, sipMessage("CANCEL sip:"+d.callee.String()+" SIP/2.0", d.id, d.from, to, 1, "CANCEL", d.caller, "", ""))
	d.add(at+20*time.Millisecond, false, sipMessage("SIP/2.0 200 OK", d.id, d.from, d.to, 1, "CANCEL", d.caller, "", ""))
	d.add(at+30*time.Millisecond, false, sipMessage("SIP/2.0 487 Request Terminated", d.id, d.from, d.to, 1, "INVITE", d.caller, "", ""))
	d.add(at+40*time.Millisecond, true, sipMessage("ACK sip:"+d.callee.String()+" SIP/2.0", d.id, d.from, d.to, 1, "ACK", d.caller, "", ""))
}

// voice adds one direction's PCMU from start for n packets of 20 ms, each
// up to jitter late (uniformly, seeded by ssrc and hz); lost(i) drops packet i;
// cn(i) sends comfort noise instead of packet i every tenth packet
// (silence suppression: nothing between).
func voice(pkts *[]capPkt, src, dst netip.AddrPort, ssrc uint32, hz float64, start time.Duration, n int, jitter time.Duration, lost, cn func(int) bool) {
	seq := uint16(ssrc >> 7)
	late := rand.New(rand.NewPCG(uint64(ssrc), uint64(hz)))
	for i := 0; i < n; i++ {
		at := start + time.Duration(i)*20*time.Millisecond
		if jitter > 0 {
			at += time.Duration(late.Int64N(int64(jitter)))
		}
		ts := uint32(1000 + 160*i)
		switch {
		case cn(i):
			if i%10 == 0 {
				*pkts = append(*pkts, capPkt{at, src, dst, rtpBytes(13, false, seq, ts, ssrc, []byte{60})})
				seq++
			}
			continue
		case !lost(i):
			*pkts = append(*pkts, capPkt{at, src, dst, rtpBytes(0, i == 0 || cn(i-1), seq, ts, ssrc, tone(hz, 160*i))})
		}
		seq++
	}
}

// digit adds an RFC 4733 event (10 packets while pressed, 3 end packets)
// on an SSRC of its own.
func digit(pkts *[]capPkt, src, dst netip.AddrPort, ssrc uint32, seq uint16, ev byte, at time.Duration) {
	ts := uint32(at / time.Millisecond * 8)
	for i := 0; i < 13; i++ {
		dur := uint16(160 * min(i+1, 10))
		p := []byte{ev, 10, byte(dur >> 8), byte(dur)}
		if i >= 10 {
			p[1] |= 0x80 // end
		}
		*pkts = append(*pkts, capPkt{at + time.Duration(min(i, 10))*20*time.Millisecond + time.Duration(max(0, i-10))*time.Millisecond,
			src, dst, rtpBytes(101, i == 0, seq+uint16(i), ts, ssrc, p)})
	}
}

func register(pkts *[]capPkt, at time.Duration, ua, pbx netip.AddrPort, user string, cseq int, expires int, reply string, extra string) {
	id := "reg-" + user + "@console.test"
	from := "<sip:" + user + "@console.test>;tag=r" + user
	to := "<sip:" + user + "@console.test>"
	*pkts = append(*pkts,
		capPkt{at, ua, pbx, sipMessage("REGISTER sip:console.test SIP/2.0", id, from, to, cseq, "REGISTER", ua,
			fmt.Sprintf("Contact: <sip:%s@%s>\r\nExpires: %d\r\nUser-Agent: Yealink SIP-T46S\r\n%s", user, ua, expires, extra), "")},
		capPkt{at + 15*time.Millisecond, pbx, ua, sipMessage("SIP/2.0 "+reply, id, from, to+";tag=p"+user, cseq, "REGISTER", ua,
			fmt.Sprintf("Contact: <sip:%s@%s>;expires=%d\r\n", user, ua, expires), "")})
}

// consoleScenario returns the scenario's packets, in time order.
func consoleScenario() []capPkt {
	var pkts []capPkt
	h := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	pbx := h("10.0.0.1:5060")
	register(&pkts, 200*time.Millisecond, h("10.0.1.1:5060"), pbx, "2001", 1, 3600, "200 OK", "")
	register(&pkts, 400*time.Millisecond, h("10.0.1.2:5060"), pbx, "2002", 1, 3600, "401 Unauthorized", "")
	register(&pkts, 500*time.Millisecond, h("10.0.1.2:5060"), pbx, "2002", 2, 3600, "403 Forbidden",
		"Authorization: Digest username=\"2002\", realm=\"console.test\", nonce=\"1\", uri=\"sip:console.test\", response=\"0\"\r\n")
	register(&pkts, 600*time.Millisecond, h("10.0.1.3:5060"), pbx, "2003", 1, 3600, "200 OK", "")
	register(&pkts, 5*time.Second, h("10.0.1.3:5060"), pbx, "2003", 2, 0, "200 OK", "")

	// Call A.
	aRTP, bRTP, aVid, bVid := h("127.0.0.1:16000"), h("127.0.0.1:16002"), h("127.0.0.1:16010"), h("127.0.0.1:16012")
	a := &dialog{id: scenarioCallA, caller: h("127.0.0.1:5060"), callee: h("127.0.0.1:5062"), pkts: &pkts,
		from: `"Alice" <sip:1001@127.0.0.1>;tag=a1`, to: `<sip:1002@127.0.0.1>;tag=b1`,
		callerUA: "Linphone/5.2.5", calleeUA: "baresip 3.10.1",
		callerSDP: scenarioSDP(aRTP, aVid), calleeSDP: scenarioSDP(bRTP, bVid)}
	a.invite(time.Second)
	a.answer(scenarioAnswer)
	start, n := scenarioAnswer+100*time.Millisecond, int(scenarioTalk/(20*time.Millisecond))
	rng := rand.New(rand.NewPCG(18, 1))
	lossA := make([]bool, n)
	lossB := make([]bool, n)
	for i := range n {
		lossA[i] = rng.Float64() < 0.006
		if rng.Float64() < 0.03 {
			lossB[i] = true
			if i+1 < n && rng.Float64() < 0.35 {
				lossB[i+1] = true
			}
		}
	}
	silence := func(i int) bool { return i >= 600 && i < 700 } // 12–14 s into the talk
	const shared = 0x5afe5afe
	voice(&pkts, aRTP, bRTP, shared, 400, start, n, 4*time.Millisecond, func(i int) bool { return lossA[i] }, silence)
	voice(&pkts, bRTP, aRTP, shared, 1000, start+7*time.Millisecond, n, 15*time.Millisecond, func(i int) bool { return lossB[i] }, func(int) bool { return false })
	digit(&pkts, aRTP, bRTP, 0xd7d70001, 4000, 5, start+3*time.Second+5*time.Millisecond)
	digit(&pkts, aRTP, bRTP, 0xd7d70001, 4013, 11, start+5*time.Second+5*time.Millisecond)
	for i := 0; i < int(scenarioTalk/time.Second)*60; i++ {
		pkts = append(pkts, capPkt{start + time.Duration(i)*time.Second/60 + 3*time.Millisecond, bVid, aVid,
			rtpBytes(96, i%60 == 59, uint16(i), uint32(i*1500), 0x71de0001, make([]byte, 240))})
	}
	a.bye(start + scenarioTalk + 100*time.Millisecond)

	// Call B.
	b := &dialog{id: "clean@console.test", caller: h("10.0.2.1:5060"), callee: h("10.0.2.2:5060"), pkts: &pkts,
		from: `"Bob" <sip:1003@console.test>;tag=c1`, to: `<sip:1004@console.test>;tag=d1`,
		callerUA: "Grandstream GXP2170", calleeUA: "Asterisk PBX 20.5",
		callerSDP: scenarioSDP(h("10.0.2.1:20000"), netip.AddrPort{}), calleeSDP: scenarioSDP(h("10.0.2.2:30000"), netip.AddrPort{})}
	b.invite(2 * time.Second)
	b.answer(3500 * time.Millisecond)
	none := func(int) bool { return false }
	bn := int((100*time.Second - 3600*time.Millisecond) / (20 * time.Millisecond))
	voice(&pkts, h("10.0.2.1:20000"), h("10.0.2.2:30000"), 0xb0b0001, 400, 3600*time.Millisecond, bn, 2*time.Millisecond, none, none)
	voice(&pkts, h("10.0.2.2:30000"), h("10.0.2.1:20000"), 0xb0b0002, 1000, 3610*time.Millisecond, bn, 2*time.Millisecond, none, none)
	b.bye(100 * time.Second)

	// Call C.
	c := &dialog{id: "ringing@console.test", caller: h("10.0.3.1:5060"), callee: h("10.0.3.2:5060"), pkts: &pkts,
		from: `<sip:1005@console.test>;tag=e1`, to: `<sip:1006@console.test>;tag=f1`,
		callerUA: "Zoiper 5", calleeUA: "Cisco-CP8845",
		callerSDP: scenarioSDP(h("10.0.3.1:20000"), netip.AddrPort{})}
	c.invite(1500 * time.Millisecond)
	c.cancel(100 * time.Second)

	// A keepalive at the end keeps the replay going until then.
	pkts = append(pkts, capPkt{scenarioEnd, pbx, h("10.0.1.1:5060"), []byte("\r\n\r\n")})
	slices.SortStableFunc(pkts, func(x, y capPkt) int { return int(x.at - y.at) })
	return pkts
}

// scenarioPcap writes pkts as a classic pcap (Ethernet, IPv4, UDP), the
// first packet at start.
func scenarioPcap(pkts []capPkt, start time.Time) []byte {
	out := make([]byte, 24, 24+len(pkts)*250)
	binary.LittleEndian.PutUint32(out[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(out[4:], 2)
	binary.LittleEndian.PutUint16(out[6:], 4)
	binary.LittleEndian.PutUint32(out[16:], 65535)
	binary.LittleEndian.PutUint32(out[20:], 1) // Ethernet
	for i, p := range pkts {
		frame := make([]byte, 14+20+8+len(p.payload))
		src, dst := p.src.Addr().As4(), p.dst.Addr().As4()
		copy(frame[0:6], []byte{2, 0, dst[0], dst[1], dst[2], dst[3]})
		copy(frame[6:12], []byte{2, 0, src[0], src[1], src[2], src[3]})
		frame[12], frame[13] = 0x08, 0x00
		ip := frame[14:34]
		ip[0], ip[1], ip[8], ip[9] = 0x45, 0xb8, 64, 17
		binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(p.payload)))
		binary.BigEndian.PutUint16(ip[4:], uint16(i))
		copy(ip[12:16], src[:])
		copy(ip[16:20], dst[:])
		var sum uint32
		for k := 0; k < 20; k += 2 {
			sum += uint32(ip[k])<<8 | uint32(ip[k+1])
		}
		for sum > 0xffff {
			sum = sum&0xffff + sum>>16
		}
		binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
		udp := frame[34:42]
		binary.BigEndian.PutUint16(udp[0:], p.src.Port())
		binary.BigEndian.PutUint16(udp[2:], p.dst.Port())
		binary.BigEndian.PutUint16(udp[4:], uint16(8+len(p.payload)))
		copy(frame[42:], p.payload)
		at := start.Add(p.at)
		var rec [16]byte
		binary.LittleEndian.PutUint32(rec[0:], uint32(at.Unix()))
		binary.LittleEndian.PutUint32(rec[4:], uint32(at.Nanosecond()/1000))
		binary.LittleEndian.PutUint32(rec[8:], uint32(len(frame)))
		binary.LittleEndian.PutUint32(rec[12:], uint32(len(frame)))
		out = append(append(out, rec[:]...), frame...)
	}
	return out
}
