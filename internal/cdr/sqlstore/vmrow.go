package sqlstore

import (
	"encoding/binary"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/voipsensor/voipsensor/internal/cdr"
)

// This file turns records and registrations into rows of VoIPmonitor's
// tables, value by value as the sniffer 2026.04.0 computes them
// (calltable.cpp Call::saveToDb, register.cpp Register::saveNewStateToDb):
// times in whole seconds truncated, NULL where the sniffer adds no value.

// vmRow is one row to insert: column names and values in the same order.
type vmRow struct {
	names []string
	vals  []any
}

func (r *vmRow) set(name string, v any) {
	r.names = append(r.names, name)
	r.vals = append(r.vals, v)
}

// vmDateTime formats t as a DATETIME without fraction, truncated as the
// sniffer's sqlDateTimeString(TIME_US_TO_S(…)) does; nil for the zero time.
func vmDateTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.DateTime)
}

// vmSeconds is the sniffer's TIME_US_TO_S of a microsecond difference,
// nil when negative (add_duration adds nothing then).
func vmSeconds(us int64) any {
	if us < 0 {
		return nil
	}
	return us / 1_000_000
}

// vmIP is an IPv4 address as the unsigned 32-bit integer the sniffer's
// int columns hold; nil for IPv6, which those columns cannot hold (the
// sniffer then uses varbinary(16) columns, an option voipsensor does not
// create).
func vmIP(ap netip.AddrPort) any {
	a := ap.Addr().Unmap()
	if !ap.IsValid() || !a.Is4() {
		return nil
	}
	b := a.As4()
	return int64(binary.BigEndian.Uint32(b[:]))
}

func vmPort(ap netip.AddrPort) any {
	if !ap.IsValid() {
		return nil
	}
	return int64(ap.Port())
}

// vmText cuts s to n bytes on a rune boundary and replaces invalid
// UTF-8, as truncText does for the voipsensor schema.
func vmText(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// vmReverse reverses s by characters, as the sniffer's reverseString
// (cUtfConverter::reverse) does for caller_reverse and the like.
func vmReverse(s string) string {
	r := []rune(strings.ToValidUTF8(s, "\uFFFD"))
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

// vmQuoted escapes backslashes and double quotes as a SIP quoted-string
// does (RFC 3261 §25.1): the display name as it was on the wire, which
// calltable unescaped.
func vmQuoted(s string) string {
	if !strings.ContainsAny(s, `\"`) {
		return s
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// vmSIPResponse is the text of lastSIPresponse ("200 OK"), "" when the
// call got no response (the sniffer stores the empty string's id then).
func vmSIPResponse(r *cdr.Record) string {
	if r.LastSIPCode <= 0 {
		return ""
	}
	return vmText(strings.TrimSpace(strconv.Itoa(r.LastSIPCode)+" "+r.LastSIPReason), 255)
}

// vmUA is a user agent as the cdr_ua table holds it.
func vmUA(s string) string { return vmText(s, 512) }

// vmLimit caps v at hi (and 0), as the sniffer's LIMIT_*_UNSIGNED macros do.
func vmLimit(v, hi int64) int64 { return min(max(v, 0), hi) }

const (
	maxTiny   = 255
	maxSmall  = 65535
	maxMedium = 16777215
)

// Bits of the sniffer's cdr.flags (calltable.h eCdrBitFlag).
const (
	vmFlagTelEventRequest  = 1 << 8
	vmFlagTelEventResponse = 1 << 9
	vmFlagSDPAudio         = 1 << 12
	vmFlagSDPImage         = 1 << 13
	vmFlagSDPVideo         = 1 << 14
	vmFlagRTCPExists       = 1 << 17
	vmFlagRTPDuplSeq       = 1 << 22
	vmFlagSaveFlags        = 1 << 23 // the save bits are meaningful (voipsensor saves no pcap: all 0)
	vmFlagProtoTCP         = 1 << 31
	vmFlagProtoUDP         = 1 << 32
)

// Bits of the sniffer's cdr_rtp.flags.
const (
	vmRTPFlagAB     = 1 << 1
	vmRTPFlagCaller = 1 << 2
	vmRTPFlagCalled = 1 << 3
)

// vmRegFlagIDSimple is register_state.flags REG_ID_SIMPLE: the row's ID is
// the table's auto-increment.
const vmRegFlagIDSimple = 1 << 1

func vmCDRFlags(r *cdr.Record) int64 {
	f := int64(vmFlagSaveFlags)
	for _, m := range []struct {
		have cdr.CallFlags
		bit  int64
	}{
		{cdr.FlagEventsOffered, vmFlagTelEventRequest}, {cdr.FlagEventsAnswered, vmFlagTelEventResponse},
		{cdr.FlagSDPAudio, vmFlagSDPAudio}, {cdr.FlagSDPImage, vmFlagSDPImage}, {cdr.FlagSDPVideo, vmFlagSDPVideo},
		{cdr.FlagRTCP, vmFlagRTCPExists}, {cdr.FlagRTPDuplicates, vmFlagRTPDuplSeq},
	} {
		if r.Flags&m.have != 0 {
			f |= m.bit
		}
	}
	switch r.Transport {
	case "udp":
		f |= vmFlagProtoUDP
	case "tcp":
		f |= vmFlagProtoTCP
	}
	return f
}

// vmVoice tells whether a stream carried a voice codec (the sniffer's
// first_codec ≥ 0): not only telephone events.
func vmVoice(s *cdr.Stream) bool { return s.Received > s.Events }

// vmReceived is the sniffer's received: the stream's packets without the
// duplicates (voipsensor's Received counts them, as tshark does).
func vmReceived(s *cdr.Stream) int64 { return max(s.Received-s.Duplicates, 0) }

// vmLossPerc is the sniffer's packet_loss_perc_mult1000: lost over
// received (without duplicates) + lost, ×100 000, rounded.
func vmLossPerc(s *cdr.Stream) int64 {
	den := vmReceived(s) + s.Lost
	if den <= 0 {
		return 0
	}
	return int64(math.Round(float64(s.Lost) / float64(den) * 100 * 1000))
}

// vmBye is the sniffer's bye column: why and how the call ended.
func vmBye(r *cdr.Record) int64 {
	switch r.Ending {
	case cdr.EndingAbsoluteTimeout:
		return 102
	case cdr.EndingRTPTimeout:
		return 104
	case cdr.EndingSetupTimeout:
		if vmFirstRTP(r).IsZero() {
			return 108
		}
	}
	switch {
	case r.ProgressAt.IsZero() && !r.ByeAt.IsZero():
		return 106 // BYE without any 18x or 2xx
	case r.AnsweredAt.IsZero():
		return 0
	case r.ByeAt.IsZero():
		return 1
	case r.ByeOKAt.IsZero():
		return 2
	}
	return 3
}

// vmFirstRTP is the first RTP packet of the call, zero without any.
func vmFirstRTP(r *cdr.Record) time.Time {
	var first time.Time
	for i := range r.Streams {
		if f := r.Streams[i].First; !f.IsZero() && (first.IsZero() || f.Before(first)) {
			first = f
		}
	}
	return first
}

// vmLastRTP is the last RTP packet of one side of the call, zero without
// any.
func vmLastRTP(r *cdr.Record, caller bool) time.Time {
	var last time.Time
	for i := range r.Streams {
		s := &r.Streams[i]
		if s.FromCaller == caller && s.Last.After(last) {
			last = s.Last
		}
	}
	return last
}

// vmDuration is the sniffer's duration_us: from the first packet to the
// last (SIP, RTP or RTCP). A record without LastPacketAt uses Duration.
func vmDuration(r *cdr.Record) int64 {
	end := r.LastPacketAt
	if end.IsZero() || end.Before(r.CallDate) {
		end = r.CallDate.Add(r.Duration)
	}
	return end.UnixMicro() - r.CallDate.UnixMicro()
}

func vmTTL(row *vmRow, prefix string, t cdr.TTL) {
	if t.Count == 0 {
		row.set(prefix+"ttl_min", nil)
		row.set(prefix+"ttl_max", nil)
		row.set(prefix+"ttl_avg_mult10", nil)
		return
	}
	row.set(prefix+"ttl_min", int64(t.Min))
	row.set(prefix+"ttl_max", int64(t.Max))
	row.set(prefix+"ttl_avg_mult10", int64(math.Round(float64(t.Sum)/float64(t.Count)*10)))
}

// vmStreamSummary holds a side's figures that the call-level columns
// combine.
type vmStreamSummary struct {
	jitter, mosMin, loss, lost   int64
	delaySum, delayCnt, delayAvg int64
	rtcpAvgFR, rtcpAvgJitter     int64
	hasRTCP                      bool
	present                      bool
}

// vmCDRRow is the cdr row of r. ua and resp give the cdr_ua and
// cdr_sip_response ids of the record's strings.
func vmCDRRow(r *cdr.Record, ua, resp map[string]int64) *vmRow {
	row := &vmRow{}
	calltime := r.CallDate.UnixMicro()
	durUS := vmDuration(r)
	row.set("calldate", vmDateTime(r.CallDate))
	row.set("callend", vmDateTime(time.UnixMicro(calltime+durUS)))
	row.set("duration", vmLimit(durUS/1_000_000, maxMedium))
	sinceCall := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return vmSeconds(t.UnixMicro() - calltime)
	}
	if r.AnsweredAt.IsZero() {
		row.set("connect_duration", nil)
	} else {
		row.set("connect_duration", vmSeconds(durUS-(r.AnsweredAt.UnixMicro()-calltime)))
	}
	row.set("progress_time", sinceCall(r.ProgressAt))
	row.set("first_rtp_time", sinceCall(vmFirstRTP(r)))
	if !r.ByeAt.IsZero() && r.ByeOKAt.After(r.ByeAt) {
		// Whole seconds in the decimal(9,3) column: the sniffer writes
		// milliseconds only with time_precision_in_ms (off by default).
		row.set("post_bye_delay", vmSeconds(r.ByeOKAt.UnixMicro()-r.ByeAt.UnixMicro()))
	} else {
		row.set("post_bye_delay", nil)
	}

	// The sniffer keeps the display name as the From header's quoted
	// string has it, with its backslash escapes.
	name := vmQuoted(r.CallerName)
	row.set("caller", vmText(r.Caller, 255))
	row.set("caller_domain", vmText(r.CallerDomain, 255))
	row.set("caller_reverse", vmText(vmReverse(r.Caller), 255))
	row.set("callername", vmText(name, 255))
	row.set("callername_reverse", vmText(vmReverse(name), 255))
	row.set("called", vmText(r.Called, 255))
	row.set("called_domain", vmText(r.CalledDomain, 255))
	row.set("called_reverse", vmText(vmReverse(r.Called), 255))
	row.set("sipcallerip", vmIP(r.SIPCallerAddr))
	row.set("sipcallerport", vmPort(r.SIPCallerAddr))
	row.set("sipcalledip", vmIP(r.SIPCalledAddr))
	row.set("sipcalledport", vmPort(r.SIPCalledAddr))
	// whohanged comes from the BYE (and its 2xx) alone: a CANCEL does
	// not set it in the sniffer.
	switch {
	case r.ByeAt.IsZero():
		row.set("whohanged", nil)
	case r.WhoHanged == cdr.HangupCaller:
		row.set("whohanged", "caller")
	case r.WhoHanged == cdr.HangupCallee:
		row.set("whohanged", "callee")
	default:
		row.set("whohanged", nil)
	}
	row.set("bye", vmBye(r))
	row.set("lastSIPresponse_id", resp[vmSIPResponse(r)])
	row.set("lastSIPresponseNum", vmLimit(int64(r.LastSIPCode), maxSmall))
	sighup := int64(0)
	if r.Ending == cdr.EndingShutdown {
		sighup = 1
	}
	row.set("sighup", sighup)

	var sum [2]vmStreamSummary
	for i, side := range []struct {
		p string
		s *cdr.Stream
		a string // user agent of the side
	}{{"a_", r.A, r.CallerUserAgent}, {"b_", r.B, r.CalleeUserAgent}} {
		if id, ok := ua[vmUA(side.a)]; ok && side.a != "" {
			row.set(side.p+"ua_id", id)
		} else {
			row.set(side.p+"ua_id", nil)
		}
		sum[i] = vmStreamCols(row, side.p, side.s, r)
	}

	// Call-level summaries: only with RTP, as the sniffer computes them
	// inside "if(rtp_size() > 0)".
	hasRTP := len(r.Streams) > 0 || r.A != nil || r.B != nil
	payload := any(nil)
	if hasRTP {
		payload = int64(-1)
		for _, s := range []*cdr.Stream{r.A, r.B} {
			if s != nil && vmVoice(s) {
				payload = int64(s.Payload)
				break
			}
		}
	}
	row.set("payload", payload)
	a, b := sum[0], sum[1]
	either := a.present || b.present
	maxOf := func(x, y int64) any {
		if !either {
			return nil
		}
		return max(x, y)
	}
	row.set("jitter_mult10", maxOf(a.jitter, b.jitter))
	switch {
	case a.mosMin >= 0 && b.mosMin >= 0:
		row.set("mos_min_mult10", min(a.mosMin, b.mosMin))
	case a.mosMin >= 0:
		row.set("mos_min_mult10", a.mosMin)
	case b.mosMin >= 0:
		row.set("mos_min_mult10", b.mosMin)
	default:
		row.set("mos_min_mult10", nil)
	}
	for _, s := range []struct {
		p string
		v *vmStreamSummary
	}{{"a_", &sum[0]}, {"b_", &sum[1]}} {
		if s.v.mosMin >= 0 {
			row.set(s.p+"mos_min_mult10", s.v.mosMin)
		} else {
			row.set(s.p+"mos_min_mult10", nil)
		}
	}
	row.set("packet_loss_perc_mult1000", maxOf(a.loss, b.loss))
	row.set("delay_sum", maxOf(a.delaySum, b.delaySum))
	row.set("delay_avg_mult100", maxOf(a.delayAvg, b.delayAvg))
	row.set("delay_cnt", maxOf(a.delayCnt, b.delayCnt))
	if a.hasRTCP || b.hasRTCP {
		row.set("rtcp_avgfr_mult10", vmLimit(a.rtcpAvgFR+b.rtcpAvgFR, maxSmall))
		row.set("rtcp_avgjitter_mult10", vmLimit(a.rtcpAvgJitter+b.rtcpAvgJitter, maxSmall))
	} else {
		row.set("rtcp_avgfr_mult10", nil)
		row.set("rtcp_avgjitter_mult10", nil)
	}
	row.set("lost", maxOf(a.lost, b.lost))

	for _, c := range []struct {
		name string
		d    time.Duration
	}{{"response_time_100", r.Response100}, {"response_time_xxx", r.ResponseOther}} {
		if c.d < 0 {
			row.set(c.name, nil)
			continue
		}
		row.set(c.name, vmLimit(int64(math.Round(float64(c.d.Microseconds())/1000)), maxSmall))
	}
	vmTTL(row, "", r.SIPTTL)
	row.set("flags", vmCDRFlags(r))
	if r.VLAN >= 0 {
		row.set("vlan", int64(r.VLAN))
	} else {
		row.set("vlan", nil)
	}
	if r.IDSensor >= 0 {
		row.set("id_sensor", int64(r.IDSensor))
	} else {
		row.set("id_sensor", nil)
	}
	return row
}

// vmStreamCols sets the a_ or b_ columns of one side (all NULL without a
// stream) and returns what the call-level columns need.
func vmStreamCols(row *vmRow, p string, s *cdr.Stream, r *cdr.Record) vmStreamSummary {
	sum := vmStreamSummary{mosMin: -1}
	if s == nil {
		for _, n := range []string{"index", "payload", "saddr", "received", "lost", "reordered",
			"avgjitter_mult10", "maxjitter", "packet_loss_perc_mult1000",
			"mos_f1_min_mult10", "mos_f2_min_mult10", "mos_adapt_min_mult10", "mos_silence_min_mult10",
			"mos_f1_mult10", "mos_f2_mult10", "mos_adapt_mult10", "mos_silence_mult10",
			"rtcp_loss", "rtcp_maxfr", "rtcp_avgfr_mult10", "rtcp_maxjitter", "rtcp_avgjitter_mult10",
			"rtcp_avgrtd_mult10", "rtcp_maxrtd_mult10", "rtcp_fraclost_pktcount", "rtp_ptime",
			"delay_sum", "delay_cnt", "delay_avg_mult100"} {
			row.set(p+n, nil)
		}
		for i := 1; i <= 10; i++ {
			row.set(p+"sl"+strconv.Itoa(i), nil)
		}
		for _, d := range vmDelays {
			row.set(p+d, nil)
		}
		vmTTL(row, p, cdr.TTL{})
		// The side's last RTP may come from a stream that is not A or B.
		vmLastRTPFromEnd(row, p, r)
		return sum
	}
	sum.present = true
	row.set(p+"index", vmLimit(int64(s.Index), 127))
	if vmVoice(s) {
		row.set(p+"payload", int64(s.Payload))
	} else {
		row.set(p+"payload", nil)
	}
	row.set(p+"saddr", vmIP(s.Saddr))
	row.set(p+"received", vmLimit(vmReceived(s), maxMedium))
	row.set(p+"lost", vmLimit(s.Lost, maxMedium))
	row.set(p+"reordered", vmLimit(s.Reordered, maxMedium))
	sum.lost, sum.loss, sum.jitter = s.Lost, vmLossPerc(s), int64(s.AvgJitterMult10)
	row.set(p+"packet_loss_perc_mult1000", vmLimit(sum.loss, maxMedium))
	row.set(p+"avgjitter_mult10", vmLimit(sum.jitter, maxMedium))
	row.set(p+"maxjitter", vmLimit(int64(s.MaxJitter), maxSmall))
	for i, n := range s.SL {
		row.set(p+"sl"+strconv.Itoa(i+1), vmLimit(n, maxMedium))
	}
	// Delay buckets, weighted by their middles as the sniffer's delay_sum.
	weights := [7]int64{60, 80, 105, 135, 175, 250, 300}
	for i, d := range vmDelays {
		row.set(p+d, vmLimit(s.Delay[i], maxMedium))
		sum.delaySum += s.Delay[i] * weights[i]
		sum.delayCnt += s.Delay[i]
	}
	if sum.delayCnt != 0 {
		sum.delayAvg = int64(math.Round(float64(sum.delaySum) / float64(sum.delayCnt) * 100))
	}
	row.set(p+"delay_sum", vmLimit(sum.delaySum, maxMedium))
	row.set(p+"delay_cnt", vmLimit(sum.delayCnt, maxMedium))
	row.set(p+"delay_avg_mult100", vmLimit(sum.delayAvg, maxMedium))

	// MOS: averages only once a 10 s interval closed; minima start at
	// 45. Without silence detection (the sniffer's default) the silence
	// MOS is 45 by definition, its average again only after an interval.
	minOrNull := func(v int) any {
		if v > 0 && v < 255 {
			return int64(v)
		}
		return nil
	}
	row.set(p+"mos_f1_min_mult10", minOrNull(s.MOSF1MinMult10))
	row.set(p+"mos_f2_min_mult10", minOrNull(s.MOSF2MinMult10))
	row.set(p+"mos_adapt_min_mult10", minOrNull(s.MOSAdaptMinMult10))
	row.set(p+"mos_silence_min_mult10", int64(45))
	avg := func(v int) any {
		if s.MOSMeasured && v > 0 {
			return vmLimit(int64(v), maxTiny)
		}
		return nil
	}
	row.set(p+"mos_f1_mult10", avg(s.MOSF1Mult10))
	row.set(p+"mos_f2_mult10", avg(s.MOSF2Mult10))
	row.set(p+"mos_adapt_mult10", avg(s.MOSAdaptMult10))
	if s.MOSMeasured {
		row.set(p+"mos_silence_mult10", int64(45))
		// mos_min: the lowest of the three averages, then f2's
		// (mosmin_f2 = yes, the default).
		for _, v := range []int{s.MOSF1Mult10, s.MOSF2Mult10, s.MOSAdaptMult10} {
			if v > 0 && (sum.mosMin < 0 || int64(v) < sum.mosMin) {
				sum.mosMin = int64(v)
			}
		}
		if s.MOSF2Mult10 > 0 {
			sum.mosMin = int64(s.MOSF2Mult10)
		}
	} else {
		row.set(p+"mos_silence_mult10", nil)
	}

	if s.RTCPReports > 0 {
		sum.hasRTCP = true
		row.set(p+"rtcp_loss", min(max(s.RTCPLoss, -8388608), 8388607))
		row.set(p+"rtcp_maxfr", vmLimit(int64(s.RTCPMaxFR), maxSmall))
		sum.rtcpAvgFR = int64(s.RTCPAvgFRMult10)
		row.set(p+"rtcp_avgfr_mult10", vmLimit(sum.rtcpAvgFR, maxSmall))
		maxJ := int64(math.Round(s.RTCPJitterMaxMS))
		sum.rtcpAvgJitter = int64(math.Round(s.RTCPJitterAvgMS * 10))
		if maxJ*10 < sum.rtcpAvgJitter {
			maxJ++
		}
		row.set(p+"rtcp_maxjitter", vmLimit(maxJ, maxSmall))
		row.set(p+"rtcp_avgjitter_mult10", vmLimit(sum.rtcpAvgJitter, maxSmall))
		row.set(p+"rtcp_fraclost_pktcount", int64(s.RTCPFracLostReports))
	} else {
		for _, n := range []string{"rtcp_loss", "rtcp_maxfr", "rtcp_avgfr_mult10", "rtcp_maxjitter",
			"rtcp_avgjitter_mult10", "rtcp_fraclost_pktcount"} {
			row.set(p+n, nil)
		}
	}
	if maxRTD := int64(math.Round(s.RTCPRTTMaxMS)); s.RTCPRTTCount > 0 && maxRTD > 0 {
		// The sniffer rounds each round trip to whole ms and ignores
		// those that round to 0 (loopback); it stores max×10 and the
		// integer mean ×10. voipsensor has the unrounded max and mean:
		// it stores nothing when the max rounds to 0, and keeps the
		// mean at most the max.
		row.set(p+"rtcp_maxrtd_mult10", vmLimit(maxRTD*10, maxSmall))
		row.set(p+"rtcp_avgrtd_mult10", vmLimit(min(int64(s.RTCPRTTAvgMS*10), maxRTD*10), maxSmall))
	} else {
		row.set(p+"rtcp_maxrtd_mult10", nil)
		row.set(p+"rtcp_avgrtd_mult10", nil)
	}
	if s.PtimeMS > 0 {
		row.set(p+"rtp_ptime", vmLimit(int64(s.PtimeMS), maxTiny))
	} else {
		row.set(p+"rtp_ptime", nil)
	}
	vmTTL(row, p, s.TTL)
	vmLastRTPFromEnd(row, p, r)
	return sum
}

// vmLastRTPFromEnd sets a_/b_last_rtp_from_end: whole seconds (signed,
// truncated) from the side's last RTP packet, any of its streams, to the
// call's last SIP message; NULL when the side sent no RTP.
func vmLastRTPFromEnd(row *vmRow, p string, r *cdr.Record) {
	last := vmLastRTP(r, p == "a_")
	if last.IsZero() || r.LastSIPAt.IsZero() {
		row.set(p+"last_rtp_from_end", nil)
		return
	}
	s := (r.LastSIPAt.UnixMicro() - last.UnixMicro()) / 1_000_000
	row.set(p+"last_rtp_from_end", min(max(s, -32767), 32767))
}

// vmRTPRows are the cdr_rtp rows of r without cdr_ID: every stream that
// carried a voice codec, in order of first packet, as the sniffer stores
// them.
func vmRTPRows(r *cdr.Record) []*vmRow {
	var rows []*vmRow
	ab := map[int]bool{}
	for _, s := range []*cdr.Stream{r.A, r.B} {
		if s != nil {
			ab[s.Index] = true
		}
	}
	for i := range r.Streams {
		s := &r.Streams[i]
		if !vmVoice(s) {
			continue
		}
		row := &vmRow{}
		row.set("calldate", vmDateTime(r.CallDate))
		row.set("saddr", vmIP(s.Saddr))
		row.set("sport", vmPort(s.Saddr))
		row.set("daddr", vmIP(s.Daddr))
		row.set("dport", vmPort(s.Daddr))
		row.set("ssrc", int64(s.SSRC))
		row.set("received", vmLimit(vmReceived(s), maxMedium))
		row.set("loss", vmLimit(s.Lost, maxMedium))
		row.set("firsttime", float64(s.First.UnixMicro()-r.CallDate.UnixMicro())/1e6)
		row.set("payload", int64(s.Payload))
		// (unsigned int)(maxjitter * 10): truncated, unlike a_maxjitter.
		row.set("maxjitter_mult10", vmLimit(int64(s.MaxJitterMS*10), maxSmall))
		row.set("index", vmLimit(int64(s.Index)+1, maxTiny))
		if s.SDPPtimeMS > 0 {
			row.set("sdp_ptime", vmLimit(int64(s.SDPPtimeMS), maxTiny))
		} else {
			row.set("sdp_ptime", nil)
		}
		if s.PtimeMS > 0 {
			row.set("rtp_ptime", vmLimit(int64(s.PtimeMS), maxTiny))
		} else {
			row.set("rtp_ptime", nil)
		}
		flags := int64(vmRTPFlagCalled)
		if s.FromCaller {
			flags = vmRTPFlagCaller
		}
		if ab[s.Index] {
			flags |= vmRTPFlagAB
		}
		row.set("flags", flags)
		row.set("duration", float64(s.Last.UnixMicro()-s.First.UnixMicro())/1e6)
		vmTTL(row, "", s.TTL)
		rows = append(rows, row)
	}
	return rows
}

// vmContact splits a Contact URI into its user and host (no port), as
// register_state's contact_num and contact_domain.
func vmContact(uri string) (user, host string) {
	s := strings.TrimSuffix(strings.TrimPrefix(uri, "<"), ">")
	for _, scheme := range []string{"sip:", "sips:", "tel:"} {
		if len(s) >= len(scheme) && strings.EqualFold(s[:len(scheme)], scheme) {
			s = s[len(scheme):]
			break
		}
	}
	if u, h, ok := strings.Cut(s, "@"); ok {
		user, s = u, h
	}
	if strings.HasPrefix(s, "[") {
		if i := strings.IndexByte(s, ']'); i >= 0 {
			return user, s[:i+1]
		}
	}
	if i := strings.IndexAny(s, ":;>?"); i >= 0 {
		s = s[:i]
	}
	return user, s
}

// vmRegisterRow is the register_state row (register_failed for a failed
// registration) of g.
func vmRegisterRow(g *cdr.Registration, ua map[string]int64) (table string, row *vmRow) {
	failed := g.State == cdr.RegFailed
	table = "register_state"
	if failed {
		table = "register_failed"
	}
	row = &vmRow{}
	row.set("id_sensor", int64(max(g.IDSensor, 0)))
	row.set("fname", int64(0))
	if failed {
		row.set("counter", int64(1))
	}
	row.set("created_at", vmDateTime(g.Time))
	for _, c := range []struct {
		ip, port string
		ap       netip.AddrPort
	}{{"sipcallerip", "sipcallerport", g.Src}, {"sipcalledip", "sipcalledport", g.Dst}} {
		ip := vmIP(c.ap)
		if ip == nil {
			ip = int64(0) // NOT NULL in the sniffer's schema
		}
		row.set(c.ip, ip)
		row.set(c.port, vmPort(c.ap))
	}
	cuser, chost := vmContact(g.Contact)
	row.set("from_num", vmText(g.FromUser, 255))
	row.set("to_num", vmText(g.User, 255))
	row.set("contact_num", vmText(cuser, 255))
	row.set("contact_domain", vmText(chost, 255))
	row.set("digestusername", vmText(g.AuthUser, 255))
	row.set("digestrealm", "")
	if !failed {
		row.set("expires", int64(min(max(g.Expires, -8388608), 8388607)))
		// The sniffer stores states above Expired (Unregister) as OK;
		// expires 0 tells them apart.
		state := int64(g.State)
		if g.State > cdr.RegExpired {
			state = int64(cdr.RegOK)
		}
		row.set("state", state)
	}
	if id, ok := ua[vmUA(g.UserAgent)]; ok && g.UserAgent != "" {
		row.set("ua_id", id)
	} else {
		row.set("ua_id", nil)
	}
	row.set("to_domain", vmText(g.Domain, 255))
	row.set("flags", int64(vmRegFlagIDSimple))
	if g.VLAN >= 0 {
		row.set("vlan", int64(g.VLAN))
	} else {
		row.set("vlan", nil)
	}
	// No GeoIP database: the country is unknown, which the sniffer
	// stores as "".
	for _, n := range []string{"sipcallerip_country_code", "sipcalledip_country_code", "from_num_country_code", "to_num_country_code"} {
		row.set(n, "")
	}
	return table, row
}
