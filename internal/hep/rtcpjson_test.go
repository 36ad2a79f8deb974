package hep

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// Payloads in the shapes the agents write (field names and order from
// their sources: heplify protos/rtcp.go marshals its struct; rtpengine's
// homer_* printf calls leave a comma before the closing bracket; captagent
// puts report_count after the blocks; hepgen.js quotes the NTP time and
// prints rtp_timestamp signed).
const (
	heplifySR = `{"sender_information":{"ntp_timestamp_sec":3900000000,"ntp_timestamp_usec":2147483648,` +
		`"rtp_timestamp":16000,"packets":100,"octets":16000},"ssrc":287454020,"type":200,"report_count":1,` +
		`"report_blocks":[{"source_ssrc":1432778632,"fraction_lost":26,"packets_lost":5,"highest_seq_no":70100,` +
		`"ia_jitter":80,"lsr":1234,"dlsr":65536}],"report_blocks_xr":{"type":0,"id":0,"fraction_lost":0,` +
		`"fraction_discard":0,"burst_density":0,"gap_density":0,"burst_duration":0,"gap_duration":0,` +
		`"round_trip_delay":0,"end_system_delay":0},"sdes_ssrc":0}`
	rtpengineRR = `{"ssrc":1432778632,"type":201,"report_count":2,"report_blocks":[` +
		`{"source_ssrc":287454020,"highest_seq_no":5,"fraction_lost":0,"ia_jitter":8,"packets_lost":4294967295,"lsr":0,"dlsr":0},` +
		`{"source_ssrc":7,"highest_seq_no":9,"fraction_lost":255,"ia_jitter":0,"packets_lost":3,"lsr":1,"dlsr":2},],}`
	captagentSR = `{"sender_information":{"ntp_timestamp_sec":1,"ntp_timestamp_usec":2,"octets":3,"rtp_timestamp":4, "packets":5},` +
		`"ssrc":6,"type":200, "report_blocks":[{"source_ssrc":7,"highest_seq_no":8,"fraction_lost":9,"ia_jitter":10,` + "\n" +
		`"packets_lost":11,"lsr":12,"dlsr":13}],"report_count":1,"sdes_ssrc":6,"sdes_chunk_ssrc":6,` +
		`"sdes_information": [ {"type":1,"text":"user@host"},],"sdes_report_count":1}`
	hepgenSR = `{"type":200,"ssrc":1814766290,"report_count":0,"report_blocks":[],"sender_information":{"packets":2,` +
		`"ntp_timestamp_sec":"3373905459","ntp_timestamp_usec":"4280379832","rtp_timestamp":-210833031,"octets":40}} ` + "\x00"
	xrOnly = `{"ssrc":5,"type":207,"report_blocks_xr":{"type":7,"id":9,"fraction_lost":1,"round_trip_delay":20},"mos":4.1e0,"big":123456789012345678901234}`
)

func TestParseRTCPJSON(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want RTCPJSON
	}{
		{"heplify SR", heplifySR, RTCPJSON{Type: 200, SSRC: 287454020, Sender: true, NTPSec: 3900000000, NTPFrac: 2147483648,
			RTPTime: 16000, Packets: 100, Octets: 16000, Reports: []RTCPReportBlock{
				{SourceSSRC: 1432778632, FractionLost: 26, PacketsLost: 5, HighestSeq: 70100, Jitter: 80, LSR: 1234, DLSR: 65536}}}},
		{"rtpengine RR, trailing commas", rtpengineRR, RTCPJSON{Type: 201, SSRC: 1432778632, Reports: []RTCPReportBlock{
			{SourceSSRC: 287454020, HighestSeq: 5, Jitter: 8, PacketsLost: -1},
			{SourceSSRC: 7, HighestSeq: 9, FractionLost: 255, PacketsLost: 3, LSR: 1, DLSR: 2}}}},
		{"captagent SR with SDES", captagentSR, RTCPJSON{Type: 200, SSRC: 6, Sender: true, NTPSec: 1, NTPFrac: 2, RTPTime: 4, Packets: 5, Octets: 3,
			Reports: []RTCPReportBlock{{SourceSSRC: 7, HighestSeq: 8, FractionLost: 9, Jitter: 10, PacketsLost: 11, LSR: 12, DLSR: 13}}}},
		{"hepgen quoted and signed", hepgenSR, RTCPJSON{Type: 200, SSRC: 1814766290, Sender: true, NTPSec: 3373905459, NTPFrac: 4280379832,
			RTPTime: uint32(0x100000000 - 210833031), Packets: 2, Octets: 40}},
		{"XR only, skipped members", xrOnly, RTCPJSON{Type: 207, SSRC: 5}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got RTCPJSON
			if err := ParseRTCPJSON([]byte(tt.in), &got); err != nil {
				t.Fatalf("ParseRTCPJSON = %v", err)
			}
			if d := cmp.Diff(tt.want, got, cmpopts.IgnoreUnexported(RTCPJSON{}), cmpopts.EquateEmpty()); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestParseRTCPJSONErrors(t *testing.T) {
	deep := bytes.Repeat([]byte(`{"a":`), 20)
	for _, in := range []string{
		``, `   `, `[]`, `"x"`, `{`, `{"ssrc":1`, `{"ssrc":}`, `{"ssrc":1}x`, `{"ssrc":1}{}`, `{ssrc:1}`,
		`{"ssrc":-2147483649}`, `{"ssrc":4294967296}`, `{"ssrc":"12a"}`, `{"ssrc":1e3}`, `{"type":256}`, `{"type":-1}`,
		`{"report_blocks":[{"fraction_lost":300}]}`, `{"report_blocks":[{"lsr":tru}]}`, "{\"a\":\"b\x01\"}", `{"a":nul}`,
		`{"a":[1 2]}`, `{"a":1 "b":2}`, `{"a":-}`, `{"a":1.}`, string(deep) + `1`,
	} {
		var r RTCPJSON
		if err := ParseRTCPJSON([]byte(in), &r); !errors.Is(err, ErrRTCPJSON) {
			t.Errorf("ParseRTCPJSON(%q) = %v, want ErrRTCPJSON", in, err)
		}
	}
}

// TestRTCPJSONAppendBinary: the binary packet is RFC 3550's layout, byte
// for byte.
func TestRTCPJSONAppendBinary(t *testing.T) {
	var r RTCPJSON
	if err := ParseRTCPJSON([]byte(heplifySR), &r); err != nil {
		t.Fatal(err)
	}
	want := []byte{0x81, 200, 0, 12, // V=2 RC=1 SR, length 12 words
		0x11, 0x22, 0x33, 0x44, // SSRC 287454020
		0xe8, 0x75, 0x47, 0x00, 0x80, 0, 0, 0, // NTP 3900000000 . 2^31
		0, 0, 0x3e, 0x80, 0, 0, 0, 100, 0, 0, 0x3e, 0x80, // RTP time 16000, 100 packets, 16000 octets
		0x55, 0x66, 0x77, 0x88, 26, 0, 0, 5, // source 1432778632, fraction 26, lost 5
		0, 1, 0x11, 0xd4, 0, 0, 0, 80, 0, 0, 0x04, 0xd2, 0, 1, 0, 0} // seq 70100, jitter 80, LSR 1234, DLSR 65536
	if got := r.AppendBinary(nil); !bytes.Equal(got, want) {
		t.Errorf("AppendBinary =\n% x\nwant\n% x", got, want)
	}
	if err := ParseRTCPJSON([]byte(rtpengineRR), &r); err != nil {
		t.Fatal(err)
	}
	got := r.AppendBinary([]byte{0xaa})
	if len(got) != 1+4+4+2*24 || got[1] != 0x82 || got[2] != 201 || binary.BigEndian.Uint16(got[3:]) != 13 {
		t.Errorf("RR header % x", got[:9])
	}
	if lost := got[1+8+4 : 1+8+8]; !bytes.Equal(lost, []byte{0, 0xff, 0xff, 0xff}) {
		t.Errorf("packets_lost -1 written % x, want 00 ff ff ff", lost)
	}
	if err := ParseRTCPJSON([]byte(xrOnly), &r); err != nil {
		t.Fatal(err)
	}
	if got := r.AppendBinary(nil); len(got) != 0 {
		t.Errorf("a report without sender info or blocks gave % x", got)
	}
}

func TestParseRTCPJSONAllocations(t *testing.T) {
	in := []byte(heplifySR)
	var r RTCPJSON
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() {
		if ParseRTCPJSON(in, &r) != nil {
			t.Fatal("parse failed")
		}
		buf = r.AppendBinary(buf[:0])
	}); n != 0 {
		t.Errorf("%v allocations per report, want 0", n)
	}
}

func BenchmarkParseRTCPJSON(b *testing.B) {
	in := []byte(heplifySR)
	var r RTCPJSON
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for i := 0; i < b.N; i++ {
		if ParseRTCPJSON(in, &r) != nil {
			b.Fatal("parse failed")
		}
	}
}

// marshalRTCPJSON writes r back as JSON in heplify's member names.
func marshalRTCPJSON(r *RTCPJSON) []byte {
	type block struct {
		SourceSSRC   uint32 `json:"source_ssrc"`
		FractionLost uint8  `json:"fraction_lost"`
		PacketsLost  int32  `json:"packets_lost"`
		HighestSeq   uint32 `json:"highest_seq_no"`
		Jitter       uint32 `json:"ia_jitter"`
		LSR          uint32 `json:"lsr"`
		DLSR         uint32 `json:"dlsr"`
	}
	m := map[string]any{"type": r.Type, "ssrc": r.SSRC}
	if r.Sender {
		m["sender_information"] = map[string]uint32{"ntp_timestamp_sec": r.NTPSec, "ntp_timestamp_usec": r.NTPFrac,
			"rtp_timestamp": r.RTPTime, "packets": r.Packets, "octets": r.Octets}
	}
	bs := []block{}
	for _, rb := range r.Reports {
		bs = append(bs, block(rb))
	}
	m["report_blocks"] = bs
	out, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return out
}

// FuzzParseRTCPJSON: the parser never panics; what it accepts, written
// back as JSON, parses to the same report; and its binary form is a
// well-formed RTCP packet of the right length and counts.
func FuzzParseRTCPJSON(f *testing.F) {
	for _, s := range []string{heplifySR, rtpengineRR, captagentSR, hepgenSR, xrOnly, `{}`, `{"report_blocks":[{},{}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var r RTCPJSON
		if ParseRTCPJSON(in, &r) != nil {
			return
		}
		out := marshalRTCPJSON(&r)
		var q RTCPJSON
		if err := ParseRTCPJSON(out, &q); err != nil {
			t.Fatalf("ParseRTCPJSON(%s) = %v", out, err)
		}
		if d := cmp.Diff(r, q, cmpopts.IgnoreUnexported(RTCPJSON{}), cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("round trip through %s (-first +second):\n%s", out, d)
		}
		b := r.AppendBinary(nil)
		if len(b) == 0 {
			if r.Sender || r.Type == 200 || len(r.Reports) > 0 {
				t.Fatal("no binary for a report")
			}
			return
		}
		words := int(binary.BigEndian.Uint16(b[2:]))
		if len(b) != 4*(words+1) || b[0]>>6 != 2 || int(b[0]&0x1f) != len(r.Reports) || (b[1] != 200 && b[1] != 201) {
			t.Fatalf("binary % x is not RTCP for %s", b, fmt.Sprint(r.Reports))
		}
	})
}
