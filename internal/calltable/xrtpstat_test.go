package calltable

import (
	"strings"
	"testing"
	"time"
)

// TestParseQualityReport reads the vendors' examples of X-RTP-Stat (';'
// and ',' separated, empty fields, fields voipsensor does not use) and
// refuses values that are not numbers or say nothing it uses.
func TestParseQualityReport(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want QualityReport
		ok   bool
	}{
		{"PS=207;OS=49680;;PR=314;OR=50240;PL=0;JI=600;LA=40;", QualityReport{314, 0, 600}, true},                          // AudioCodes
		{"PS=1234,OS=34560,PR=1236,OR=24720,JI=1,DU=1230,PL=0,EN=G711U,DE=G711U,MOS=4.0", QualityReport{1236, 0, 1}, true}, // Poly
		{"MT=0;PS=662;OS=105920;PR=661;OR=105760;PL=3;JI=0;LA=1;SS=0;EN=8;DE=8", QualityReport{661, 3, 0}, true},           // Siemens
		{" pl = 7 ; ji = 2.5 ", QualityReport{-1, 7, 2.5}, true},
		{"PS=10;OS=1600", QualityReport{-1, -1, -1}, false},
		{"PR=10;PL=x", QualityReport{}, false},
		{"PR=-3", QualityReport{}, false},
		{"", QualityReport{-1, -1, -1}, false},
	} {
		got, ok := ParseQualityReport([]byte(tc.in))
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("ParseQualityReport(%q) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// TestQualityReportFeedsStreams: an X-RTP-Stat header in the BYE, and
// another in the 200 answering it, are each their sender's account of the
// RTP it received: they become a report block on the stream from the
// other side (cumulative and fraction lost, jitter in ms), not on the
// sender's own stream; a malformed one is counted and changes nothing.
func TestQualityReportFeedsStreams(t *testing.T) {
	steps := answeredCall("xrtp@x", false)
	n := len(steps)
	bye, ok := steps[n-2], steps[n-1]
	if !strings.HasPrefix(string(bye.payload), "BYE ") {
		t.Fatalf("second to last step is not the BYE: %.20q", bye.payload)
	}
	// The caller received 50 packets and counts 4 lost; the callee
	// received 49 and reports 1 lost, 12.5 ms of jitter.
	bye.payload = sipMsg("BYE sip:2002@10.0.0.3:5070 SIP/2.0", "xrtp@x", "a1", "b1", 2, "BYE",
		"X-RTP-Stat: PS=49;OS=7840;PR=50;OR=8000;PL=4;JI=20;LA=40;\r\n", "")
	ok.payload = sipMsg("SIP/2.0 200 OK", "xrtp@x", "a1", "b1", 2, "BYE", "X-RTP-Stat: PS=50,PR=49,PL=1,JI=12.5\r\n", "")
	steps[n-2], steps[n-1] = bye, ok
	var out sink
	tab := New(Config{}, &out)
	feed(tab, steps)
	tab.Expire(t0.Add(time.Minute))
	if len(out.calls) != 1 {
		t.Fatalf("%d calls, want 1", len(out.calls))
	}
	for _, s := range out.calls[0].Streams {
		r := s.Stats.RTCP
		switch s.Side {
		case SideCallee: // to the caller, who sent the BYE
			if r.Reports != 1 || r.CumulativeLost != 4 || r.FractionLostMax != 4*256/54 || r.JitterMaxMS != 20 {
				t.Errorf("callee's stream: %+v; want 1 report, 4 lost, fraction %d, jitter 20 ms", r, 4*256/54)
			}
		case SideCaller:
			if r.Reports != 1 || r.CumulativeLost != 1 || r.FractionLostMax != 256/50 || r.JitterMaxMS != 12.5 {
				t.Errorf("caller's stream: %+v; want 1 report, 1 lost, fraction %d, jitter 12.5 ms", r, 256/50)
			}
		}
	}
	if st := tab.Stats(); st.QualityReports != 2 || st.QualityReportsMalformed != 0 {
		t.Errorf("quality reports %d, malformed %d; want 2, 0", st.QualityReports, st.QualityReportsMalformed)
	}

	steps = answeredCall("bad@x", true)
	n = len(steps)
	steps[n-2].payload = sipMsg("BYE sip:1001@10.0.0.1:5061 SIP/2.0", "bad@x", "b1", "a1", 1, "BYE", "X-RTP-Stat: PR=x;PL=2\r\n", "")
	out = sink{}
	tab = New(Config{}, &out)
	feed(tab, steps)
	tab.Expire(t0.Add(time.Minute))
	for _, s := range out.calls[0].Streams {
		if s.Stats.RTCP.Reports != 0 {
			t.Errorf("malformed report fed a stream: %+v", s.Stats.RTCP)
		}
	}
	if st := tab.Stats(); st.QualityReportsMalformed != 1 {
		t.Errorf("malformed %d, want 1", st.QualityReportsMalformed)
	}
}
