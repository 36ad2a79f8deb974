package test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Black-box AMI helpers: a manager.conf for the daemon, and a capture
// prefix that delays the first generated packet (so clients are logged in
// before the first call) and carries a hand-made SIP call whose From
// display name tries to inject an AMI header.

// amiConf writes a manager.conf listening on a free port and returns its
// path and the port. Every client of these tests comes from 127.0.0.1,
// and the floods and the benchmark measure authlimit, so the per-address
// cap (authlimitperip, default 10, tested in internal/transport/ami) is
// lifted to authlimit.
func amiConf(t testing.TB, extraGeneral string) (string, int) {
	t.Helper()
	port := freeTCPPort(t)
	conf := fmt.Sprintf(`[general]
enabled = yes
port = %d
bindaddr = 127.0.0.1
displayconnects = no
authlimit = 400
authlimitperip = 400
%s
[admin]
secret = amipass
read = all
write = all
`, port, extraGeneral)
	path := filepath.Join(t.TempDir(), "manager.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, port
}

// injectionName is the display name of the crafted call: bare CRs (the SIP
// parser ends lines at LF, so a lone CR stays inside the From value)
// around a forged AMI header; AMI clients that split on CR would see it.
const injectionName = "Mallory\rEvent: Fake\rX"

// udpFrame builds an Ethernet/IPv4/UDP frame.
func udpFrame(src, dst [4]byte, sport, dport uint16, payload []byte) []byte {
	f := make([]byte, 14+20+8+len(payload))
	copy(f[0:6], []byte{2, 0, 0, 0, 0, 2})
	copy(f[6:12], []byte{2, 0, 0, 0, 0, 1})
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	ip[8] = 64
	ip[9] = 17
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	u := f[34:42]
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	copy(f[42:], payload)
	return f
}

// injectionCall returns the SIP messages of a short answered call from
// 192.0.2.1 to 192.0.2.2 with the injection display name, offsets in ms.
func injectionCall() []struct {
	at       int
	fromCall bool
	msg      string
} {
	const callID = "inject-1@192.0.2.1"
	from := `"` + injectionName + `" <sip:666@192.0.2.1>;tag=a1`
	hdr := func(first, cseq, to string) string {
		return first + "\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK" + strconv.Itoa(len(cseq)) +
			"\r\nFrom: " + from + "\r\nTo: " + to + "\r\nCall-ID: " + callID + "\r\nCSeq: " + cseq +
			"\r\nContent-Length: 0\r\n\r\n"
	}
	return []struct {
		at       int
		fromCall bool
		msg      string
	}{
		{0, true, hdr("INVITE sip:777@192.0.2.2 SIP/2.0", "1 INVITE", "<sip:777@192.0.2.2>")},
		{100, false, hdr("SIP/2.0 180 Ringing", "1 INVITE", "<sip:777@192.0.2.2>;tag=b2")},
		{300, false, hdr("SIP/2.0 200 OK", "1 INVITE", "<sip:777@192.0.2.2>;tag=b2")},
		{1300, true, hdr("BYE sip:777@192.0.2.2 SIP/2.0", "2 BYE", "<sip:777@192.0.2.2>;tag=b2")},
		{1400, false, hdr("SIP/2.0 200 OK", "2 BYE", "<sip:777@192.0.2.2>;tag=b2")},
	}
}

// prefixCapture rewrites the classic (microsecond, little-endian) pcap at
// path so that it starts lead earlier with a non-SIP packet (UDP to port
// 9), carries the injection call half-way through the lead, then the
// original packets unchanged. A replay thus idles for the first half of
// the lead, long enough for clients to log in.
func prefixCapture(t testing.TB, path string, lead time.Duration) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 40 || binary.LittleEndian.Uint32(data) != 0xa1b2c3d4 {
		t.Fatalf("%s: not a little-endian microsecond pcap", path)
	}
	first := time.Unix(int64(binary.LittleEndian.Uint32(data[24:])), int64(binary.LittleEndian.Uint32(data[28:]))*1000)
	t0 := first.Add(-lead)
	var out bytes.Buffer
	out.Write(data[:24])
	caller, callee := [4]byte{192, 0, 2, 1}, [4]byte{192, 0, 2, 2}
	writeRec := func(ts time.Time, f []byte) {
		var rec [16]byte
		binary.LittleEndian.PutUint32(rec[0:], uint32(ts.Unix()))
		binary.LittleEndian.PutUint32(rec[4:], uint32(ts.Nanosecond()/1000))
		binary.LittleEndian.PutUint32(rec[8:], uint32(len(f)))
		binary.LittleEndian.PutUint32(rec[12:], uint32(len(f)))
		out.Write(rec[:])
		out.Write(f)
	}
	writeRec(t0, udpFrame(caller, callee, 9, 9, []byte("start")))
	t0 = t0.Add(lead / 2)
	for _, m := range injectionCall() {
		src, dst := caller, callee
		if !m.fromCall {
			src, dst = callee, caller
		}
		f := udpFrame(src, dst, 5060, 5060, []byte(m.msg))
		writeRec(t0.Add(time.Duration(m.at)*time.Millisecond), f)
	}
	out.Write(data[24:])
	name := filepath.Join(t.TempDir(), "prefixed.pcap")
	if err := os.WriteFile(name, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}
