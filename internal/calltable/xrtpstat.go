package calltable

import (
	"bytes"
	"strconv"
	"time"

	"github.com/voipsensor/voipsensor/internal/sip"
)

// qualityHeaders are the headers in which user agents and gateways sum up
// a call's RTP at its end, in a BYE or in the 200 answering it
// (AudioCodes, Poly, Siemens and others: "PS=…;OS=…;PR=…;OR=…;PL=…;JI=…",
// fields separated by ';' or ',').
var qualityHeaders = [...]string{"X-RTP-Stat", "X-RTP-Stats", "P-RTP-Stat", "X-Siemens-RTP-stats"}

// QualityReport is what one X-RTP-Stat-style header says about the RTP its
// sender received. A field the header lacks is -1.
type QualityReport struct {
	Received int64   // PR: packets received
	Lost     int64   // PL: packets lost
	JitterMS float64 // JI: interarrival jitter, ms
}

// ParseQualityReport reads the PR, PL and JI fields of an X-RTP-Stat
// header value. ok is false when the value has none of them or one of
// them is not a number.
func ParseQualityReport(v []byte) (q QualityReport, ok bool) {
	q = QualityReport{Received: -1, Lost: -1, JitterMS: -1}
	for len(v) > 0 {
		var field []byte
		if i := bytes.IndexAny(v, ";,"); i >= 0 {
			field, v = v[:i], v[i+1:]
		} else {
			field, v = v, nil
		}
		key, val, found := bytes.Cut(bytes.TrimSpace(field), []byte("="))
		if !found {
			continue
		}
		key, val = bytes.TrimSpace(key), bytes.TrimSpace(val)
		switch {
		case bytes.EqualFold(key, []byte("PR")):
			n, err := strconv.ParseInt(string(val), 10, 64)
			if err != nil || n < 0 {
				return q, false
			}
			q.Received = n
		case bytes.EqualFold(key, []byte("PL")):
			n, err := strconv.ParseInt(string(val), 10, 64)
			if err != nil || n < 0 {
				return q, false
			}
			q.Lost = n
		case bytes.EqualFold(key, []byte("JI")):
			f, err := strconv.ParseFloat(string(val), 64)
			if err != nil || f < 0 {
				return q, false
			}
			q.JitterMS = f
		}
	}
	return q, q.Received >= 0 || q.Lost >= 0 || q.JitterMS >= 0
}

// qualityReport feeds the X-RTP-Stat-style summary in m, sent by sender
// at the end of the call, to the voice streams sender received, as a
// report block from their receiver. Must hold t.mu.
func (t *Table) qualityReport(c *Call, m *sip.Message, sender Side, at time.Time) {
	for _, name := range qualityHeaders {
		v := m.Header(name)
		if v == nil {
			continue
		}
		q, ok := ParseQualityReport(v)
		if !ok {
			t.stats.QualityReportsMalformed++
			return
		}
		t.stats.QualityReports++
		for _, s := range c.Streams {
			if s.Side != sender.other() {
				continue
			}
			if sum := s.RTP.Summary(); c.StreamKind(s, &sum) != KindVoice {
				continue
			}
			s.RTP.AddQualityReport(q.Received, q.Lost, q.JitterMS, at)
		}
		return
	}
}
