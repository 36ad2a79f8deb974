package spool

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/g711"
	"github.com/voipsensor/voipsensor/internal/rtp"
	"github.com/voipsensor/voipsensor/internal/sdp"
	"github.com/voipsensor/voipsensor/internal/sip"
)

// saveaudio: each call's audio goes to YYYY-MM-DD/HH/MM/AUDIO/<callid>.wav
// (the minute and name of its pcaps), a stereo 8 kHz 16-bit WAV with the
// caller on the left and the callee on the right, as the sniffer's
// saveaudio_stereo and the console's live listening.
//
// It is written while the call runs, not converted at its end: the packet
// path queues the call's SIP messages and RTP packets into the recorder's
// batch beside the frames (bounded, dropped and counted when full, never
// waiting), and the writer goroutine decodes each packet into a small
// per-call window of audioWindow samples, writing the window's older half
// to the file whenever a packet lands beyond it. A call holds about 16 KiB
// however long it lasts, its WAV is on disk up to half a second behind its
// newest packet, and its header is brought up to date at most FlushEvery
// after a write (and when the call ends), so that the file is always a
// valid WAV of nearly all that was written (after a crash, a full disk, or
// while the console plays a call in progress). Converting at the
// end would hold every call's audio in memory (8 KB per second and
// direction), or read its RTP pcap back, which savertp = no does not write.
//
// Placement: position 0 is the arrival of the call's first decoded packet.
// A stream (source, destination, SSRC) starts at its first packet's arrival
// and then follows its RTP timestamps, so that jitter does not move it and
// both directions line up; a timestamp that strays from the arrival by more
// than audioMaxSkew (a jump, a reset, a pause without timestamps) places it
// by arrival again. Lost packets and gaps stay silent. Two streams of one
// side (an SSRC change, a call with RTP on two legs) do not mix: the one
// holding the channel keeps it until it has been silent for audioTakeover,
// and the other fills only what it left silent.
//
// Sides: the writer reads the call's SIP as the call table does: the first
// INVITE's From tag tells the caller's messages, and the media addresses in
// each side's SDP tell who sends a stream (the receiver's address as the
// destination, else the sender's as the source). A stream neither names
// is the caller's when it comes from the caller's SIP address.
//
// Codecs: PCMU and PCMA (static payload types or by the SDP's rtpmap).
// Comfort noise and DTMF events are silence; any other codec is left out
// (silent), its packets counted in AudioCodec and its name logged once.

// audioKind says what an audio record of a batch holds.
type audioKind uint8

const (
	audioNone audioKind = iota
	audioSIP            // a SIP message of the call
	audioRTP            // an RTP packet on one of its media addresses
)

// Audio timing, in samples of one channel (8 kHz).
const (
	// audioWindow is what a call holds in memory: packets reordered by up
	// to half of it still find their place.
	audioWindow = wavRate / 2
	// audioMaxSkew is how far a stream's timestamps may stray from its
	// packets' arrival before it is placed by arrival again.
	audioMaxSkew = wavRate
	// audioTakeover is the silence after which another stream of a side
	// takes its channel.
	audioTakeover = wavRate / 5
)

// Sides of the WAV: channel 0 (left) and 1 (right).
const (
	sideCaller = 0
	sideCallee = 1
)

// flowLen is the size of the flow before an audio record's datagram:
// source and destination address (16 bytes each) and port.
const flowLen = 2 * (16 + 2)

// maxAudioLogged bounds the codec names logged as not decoded.
const maxAudioLogged = 64

// maxAudioPayload bounds the samples taken from one packet (250 ms; G.711
// packets carry 10 to 120 ms): a packet never spans more than the window's
// half that a write leaves.
const maxAudioPayload = audioWindow / 2

// enqueueAudio copies dg's flow and payload into the batch for the call's
// WAV, or drops and counts it when the batch is full.
func (r *Recorder) enqueueAudio(kind calltable.RecordKind, ref uint64, callID string, start time.Time, dg *decode.Datagram) {
	ak := audioRTP
	if kind == calltable.RecordSIP {
		ak = audioSIP
	}
	need := flowLen + len(dg.Payload)
	r.mu.Lock()
	b := r.fill
	if len(b.data)+need > cap(b.data) || len(b.recs) >= r.maxRecs {
		r.mu.Unlock()
		r.audioDropped.Add(1)
		return
	}
	off := len(b.data)
	b.data = appendFlow(b.data, dg.Flow)
	b.data = append(b.data, dg.Payload...)
	b.recs = append(b.recs, rec{
		ref: ref, callID: callID, startNs: start.UnixNano(), tsNs: dg.Time.UnixNano(),
		off: uint32(off), n: uint32(need), typ: TypeAUDIO, audio: ak,
	})
	first := len(b.recs) == 1
	if r.opt.Backpressure {
		r.filled.Store(int64(max(len(b.data), len(b.recs)*minFrame)))
	}
	r.mu.Unlock()
	if first {
		r.signal()
	}
}

func appendFlow(b []byte, f decode.Flow) []byte {
	for _, ap := range [2]netip.AddrPort{f.Src, f.Dst} {
		a := ap.Addr().As16()
		b = append(b, a[:]...)
		b = binary.BigEndian.AppendUint16(b, ap.Port())
	}
	return b
}

func readFlow(b []byte) (src, dst netip.AddrPort) {
	ap := func(b []byte) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[:16])).Unmap(), binary.BigEndian.Uint16(b[16:]))
	}
	return ap(b), ap(b[18:])
}

// audioWriter is the writer goroutine's saveaudio state.
type audioWriter struct {
	w       *writer
	calls   map[uint64]*audioCall // by call reference
	open    int                   // WAV files open
	maxOpen int
	rings   [][]int16       // windows of ended calls, for reuse
	logged  map[string]bool // codecs logged as not decoded
	msg     sip.Message
	hdr     rtp.Header
	pcm     [maxAudioPayload]int16 // one packet decoded
	buf     []byte                 // the bytes of one write
}

func newAudioWriter(w *writer) *audioWriter {
	return &audioWriter{
		w: w, calls: make(map[uint64]*audioCall), logged: make(map[string]bool),
		maxOpen: max(w.r.opt.MaxOpenFiles/4, 1),
	}
}

// audioCall is one call's WAV.
type audioCall struct {
	path string // relative to the spool
	f    *os.File

	// The file: opened tells whether it was looked at; base is the
	// samples it held before (a call continuing a file: its Call-ID
	// again in the minute, or its state dropped while idle), data the
	// data bytes written, hdr what its header says (written at hdrAt).
	opened          bool
	base, data, hdr int64
	hdrAt           time.Time

	started bool
	origin  int64   // Unix ns of position 0
	ring    []int16 // 2*audioWindow: position p's two samples at 2*(p%audioWindow)
	flushed int64   // positions below are written (or given up)
	high    int64   // the end of the latest-ending packet placed
	pending uint64  // packets placed since the last write
	lastUse time.Time
	lastIO  time.Time

	// From the call's SIP.
	haveTag   bool
	callerTag string
	callerIP  netip.Addr
	media     []audioMedia
	formats   []audioFormat

	streams []*audioStream
	chans   [2]audioChan
}

// audioMedia is an RTP address a side advertised in its SDP.
type audioMedia struct {
	addr  netip.AddrPort
	side  int
	audio bool // m=audio (not video, image…)
}

// audioFormat is an rtpmap of the call's SDP.
type audioFormat struct {
	pt   uint8
	name string
}

// Bounds of what one call's SIP and RTP may add.
const (
	maxAudioMedia   = 16
	maxAudioFormats = 32
	maxAudioStreams = 32 // the packets of more streams are ignored
)

// audioStream is one RTP stream of a call.
type audioStream struct {
	src, dst netip.AddrPort
	ssrc     uint32
	side     int
	sure     bool // the side comes from the SDP, not from the caller's address
	video    bool // the SDP names its media other than audio: ignored
	started  bool // its first packet was placed
	lastTS   uint32
	ext      int64 // timestamp, unwrapped, relative to the first packet
	// A position is anchorPos + ext - anchorExt.
	anchorPos, anchorExt int64
}

// audioChan is one channel's holder: the stream that writes it and the
// end of its latest packet.
type audioChan struct {
	owner *audioStream
	end   int64
}

// take applies one audio record.
func (a *audioWriter) take(rc *rec, data []byte, now time.Time) {
	c := a.calls[rc.ref]
	if c == nil {
		c = &audioCall{path: AudioPath(rc.callID, time.Unix(0, rc.startNs), a.w.r.opt.Location)}
		a.calls[rc.ref] = c
	}
	c.lastUse = now
	src, dst := readFlow(data)
	switch rc.audio {
	case audioSIP:
		a.sip(c, src, data[flowLen:])
	case audioRTP:
		a.rtp(c, src, dst, rc.tsNs, data[flowLen:], now)
	}
}

// sip learns the caller's From tag from the call's first INVITE, and each
// side's media addresses and payload types from its SDP.
func (a *audioWriter) sip(c *audioCall, src netip.AddrPort, b []byte) {
	m := &a.msg
	if err := m.Unmarshal(b); err != nil && !errors.Is(err, sip.ErrBadContentLength) {
		return
	}
	if !c.haveTag {
		if !m.Request || m.Method != sip.MethodINVITE {
			return // the INVITE that made the call was dropped
		}
		c.haveTag, c.callerTag, c.callerIP = true, string(m.From.Tag), src.Addr()
	}
	if len(m.Body) == 0 || !isSDP(m.ContentType) {
		return
	}
	// A request with the caller's From tag comes from the caller, and so
	// does a response to the callee's requests.
	side := sideCallee
	if (string(m.From.Tag) == c.callerTag) == m.Request {
		side = sideCaller
	}
	s, err := sdp.Parse(m.Body)
	if err != nil {
		return
	}
	for i := range s.Media {
		md := &s.Media[i]
		if md.Port == 0 || !md.Addr.IsValid() || md.Addr.IsUnspecified() {
			continue
		}
		audio := strings.EqualFold(md.Type, "audio")
		c.addMedia(audioMedia{addr: netip.AddrPortFrom(md.Addr.Unmap(), md.Port), side: side, audio: audio})
		if audio {
			for _, f := range md.Formats {
				c.addFormat(audioFormat{pt: f.PT, name: f.Name})
			}
		}
	}
}

// isSDP reports whether a Content-Type is SDP (none at all is SDP in
// practice), as the call table reads it.
func isSDP(ct []byte) bool {
	const want = "application/sdp"
	return len(ct) == 0 || len(ct) >= len(want) && strings.EqualFold(string(ct[:len(want)]), want)
}

func (c *audioCall) addMedia(m audioMedia) {
	for i := range c.media {
		if c.media[i].addr == m.addr {
			c.media[i] = m
			return
		}
	}
	if len(c.media) < maxAudioMedia {
		c.media = append(c.media, m)
	}
}

func (c *audioCall) addFormat(f audioFormat) {
	if f.name == "" {
		return
	}
	for i := range c.formats {
		if c.formats[i].pt == f.pt {
			c.formats[i] = f
			return
		}
	}
	if len(c.formats) < maxAudioFormats {
		c.formats = append(c.formats, f)
	}
}

// resolve sets which side sends s, whether the SDP said so, and whether
// its media is audio.
func (c *audioCall) resolve(s *audioStream) {
	for _, m := range c.media {
		if m.addr == s.dst {
			s.side, s.sure, s.video = 1-m.side, true, !m.audio
			return
		}
	}
	for _, m := range c.media {
		if m.addr == s.src {
			s.side, s.sure, s.video = m.side, true, !m.audio
			return
		}
	}
	s.side = sideCallee
	if c.callerIP.IsValid() && s.src.Addr() == c.callerIP {
		s.side = sideCaller
	}
}

// codec names payload type pt: the call's rtpmap, else the static table
// (RFC 3551) for the types a G.711 call meets.
func (c *audioCall) codec(pt uint8) string {
	for _, f := range c.formats {
		if f.pt == pt {
			return f.name
		}
	}
	switch pt {
	case 0:
		return "PCMU"
	case 8:
		return "PCMA"
	case 13:
		return "CN"
	case 9:
		return "G722"
	case 18:
		return "G729"
	}
	return ""
}

// rtp places one RTP packet of the call.
func (a *audioWriter) rtp(c *audioCall, src, dst netip.AddrPort, atNs int64, b []byte, now time.Time) {
	h := &a.hdr
	if h.Unmarshal(b) != nil || len(h.Payload) == 0 {
		return
	}
	s := c.stream(src, dst, h.SSRC)
	if s == nil || s.video {
		return
	}
	var decode func(dst []int16, src []byte) int
	switch name := c.codec(h.PayloadType); {
	case strings.EqualFold(name, "PCMU"):
		decode = g711.DecodeUlawTo
	case strings.EqualFold(name, "PCMA"):
		decode = g711.DecodeAlawTo
	case strings.EqualFold(name, "CN"), strings.EqualFold(name, "telephone-event"):
		return // not voice: silence
	default:
		a.skipCodec(name, h.PayloadType)
		return
	}
	w := a.w
	if w.paused && now.Before(w.retryAt) {
		w.r.audioDiskFull.Add(1)
		return
	}
	if !c.started {
		c.started, c.origin = true, atNs
	}
	arrival := (atNs - c.origin) / (int64(time.Second) / wavRate)
	if !s.started {
		s.started, s.lastTS, s.anchorPos = true, h.Timestamp, arrival
	}
	s.ext += int64(int32(h.Timestamp - s.lastTS))
	s.lastTS = h.Timestamp
	pos := s.anchorPos + s.ext - s.anchorExt
	if d := pos - arrival; d > audioMaxSkew || d < -audioMaxSkew {
		s.anchorPos, s.anchorExt, pos = arrival, s.ext, arrival
	}
	payload := h.Payload[:min(len(h.Payload), maxAudioPayload)]
	end := pos + int64(len(payload))

	// The channel's holder keeps it; another stream fills only what it
	// left silent, and takes it after audioTakeover of silence.
	ch := &c.chans[s.side]
	if ch.owner != nil && ch.owner != s && pos < ch.end+audioTakeover {
		if end <= ch.end {
			return
		}
		if skip := ch.end - pos; skip > 0 {
			payload, pos = payload[skip:], ch.end
		}
	} else {
		if ch.owner != s {
			ch.owner, ch.end = s, end
		}
		ch.end = max(ch.end, end)
	}

	if pos < c.flushed {
		skip := c.flushed - pos
		if skip >= int64(len(payload)) {
			w.r.audioLate.Add(1)
			return
		}
		payload, pos = payload[skip:], c.flushed
	}
	if end > wavMaxSamples-c.base {
		w.r.audioLost.Add(1)
		return
	}
	if end > c.flushed+audioWindow {
		a.flushTo(c, end-audioWindow/2, now)
	}
	if c.ring == nil {
		c.ring = a.getRing()
	}
	pcm := a.pcm[:len(payload)]
	decode(pcm, payload)
	for len(pcm) > 0 { // in at most two runs: the window wraps
		i := pos % audioWindow
		run := min(int64(len(pcm)), audioWindow-i)
		dst := c.ring[2*i+int64(s.side) : 2*(i+run)]
		for k, v := range pcm[:run] {
			dst[2*k] = v
		}
		pcm, pos = pcm[run:], pos+run
	}
	c.high = max(c.high, end)
	c.pending++
}

// stream returns the call's stream from src to dst with ssrc, adding it
// on its first packet (nil beyond maxAudioStreams); a stream whose side
// was guessed is looked at again (an SDP may have come since).
func (c *audioCall) stream(src, dst netip.AddrPort, ssrc uint32) *audioStream {
	for _, s := range c.streams {
		if s.ssrc == ssrc && s.src == src && s.dst == dst {
			if !s.sure {
				c.resolve(s)
			}
			return s
		}
	}
	if len(c.streams) >= maxAudioStreams {
		return nil
	}
	s := &audioStream{src: src, dst: dst, ssrc: ssrc}
	c.resolve(s)
	c.streams = append(c.streams, s)
	return s
}

// skipCodec counts a packet of a codec not decoded, naming the codec in
// the log the first time.
func (a *audioWriter) skipCodec(name string, pt uint8) {
	r := a.w.r
	r.audioCodec.Add(1)
	key := name
	if key == "" {
		key = "pt " + strconv.Itoa(int(pt))
	}
	if a.logged[key] || len(a.logged) >= maxAudioLogged {
		return
	}
	a.logged[key] = true
	r.opt.Logger.Warn("saveaudio: codec not decoded; its audio is left silent in the WAV (G.711 only)",
		"codec", name, "payload_type", pt)
}

// flushTo writes the window's positions below target (those placed; the
// rest is silence) and moves the window there. Past the latest packet it
// leaves a hole in the file, which reads as silence.
func (a *audioWriter) flushTo(c *audioCall, target int64, now time.Time) {
	upto := min(target, c.high)
	if upto > c.flushed {
		need := int(upto-c.flushed) * wavFrameBytes
		if cap(a.buf) < need {
			a.buf = make([]byte, need)
		}
		buf := a.buf[:need]
		for p, j := c.flushed, 0; p < upto; { // in at most two runs
			i := p % audioWindow
			run := min(upto-p, audioWindow-i)
			src := c.ring[2*i : 2*(i+run)]
			for k, v := range src {
				binary.LittleEndian.PutUint16(buf[j+2*k:], uint16(v))
			}
			clear(src)
			j, p = j+len(src)*2, p+run
		}
		a.write(c, buf, c.flushed, upto, now)
	}
	c.flushed = max(c.flushed, target)
}

// write writes the samples of positions [from, to) and the header. A
// failure loses the packets placed since the last write, counted; the
// file keeps what it had, and its header still describes it.
func (a *audioWriter) write(c *audioCall, buf []byte, from, to int64, now time.Time) {
	w := a.w
	r := w.r
	n := c.pending
	c.pending = 0
	if w.paused && now.Before(w.retryAt) {
		a.lose(n)
		return
	}
	if !a.openFile(c, now) {
		a.lose(n)
		return
	}
	c.lastIO = now
	if _, err := c.f.WriteAt(buf, wavHeaderLen+(c.base+from)*wavFrameBytes); err != nil {
		a.fail(c, err, n, now)
		return
	}
	c.data = max(c.data, (c.base+to)*wavFrameBytes)
	r.audioBytes.Add(uint64(len(buf)))
	r.audioPackets.Add(n)
	w.resume()
	if now.Sub(c.hdrAt) >= r.opt.FlushEvery {
		a.syncHeader(c, now)
	}
}

// syncHeader writes the header of an open file whose data grew since.
// A failure is counted; the header keeps the size it had, and is tried
// again at the next write.
func (a *audioWriter) syncHeader(c *audioCall, now time.Time) {
	if c.f == nil || c.hdr == c.data {
		return
	}
	if _, err := c.f.WriteAt(appendWAVHeader(make([]byte, 0, wavHeaderLen), uint32(c.data)), 0); err != nil {
		a.w.fail(err, now)
		return
	}
	c.hdr, c.hdrAt = c.data, now
}

// lose counts packets not written: the pause's while the disk is full, an
// error's otherwise.
func (a *audioWriter) lose(n uint64) {
	if a.w.paused {
		a.w.r.audioDiskFull.Add(n)
	} else {
		a.w.r.audioLost.Add(n)
	}
}

// fail counts a failed write (a full disk stops recording, as for the
// pcaps) and closes the file: the next write opens it again.
func (a *audioWriter) fail(c *audioCall, err error, n uint64, now time.Time) {
	a.w.fail(err, now)
	a.lose(n)
	a.closeFile(c, now)
}

// openFile opens the call's WAV, creating it, or continuing the one its
// path holds; false when it cannot (counted).
func (a *audioWriter) openFile(c *audioCall, now time.Time) bool {
	if c.f != nil {
		return true
	}
	w := a.w
	if a.open >= a.maxOpen {
		a.evict(now)
	}
	f, err := w.openFile(c.path, 0)
	if err != nil {
		w.fail(err, now)
		return false
	}
	if !c.opened {
		if err := a.look(c, f); err != nil {
			f.Close()
			w.fail(err, now)
			return false
		}
		c.opened = true
	}
	c.f = f
	a.open++
	w.r.audioOpen.Add(1)
	return true
}

// look sets the call's base from the file it opens for the first time: a
// WAV of saveaudio is continued after its data, anything else is written
// over.
func (a *audioWriter) look(c *audioCall, f *os.File) error {
	r := a.w.r
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() > 0 {
		if n, err := parseWAVHeader(f); err == nil {
			c.base, c.data, c.hdr = int64(n)/wavFrameBytes, int64(n), int64(n)
			if st.Size() > wavHeaderLen+int64(n) {
				return f.Truncate(wavHeaderLen + int64(n)) // a write the header never counted
			}
			return nil
		}
		if err := f.Truncate(0); err != nil {
			return err
		}
	}
	if _, err := f.WriteAt(appendWAVHeader(make([]byte, 0, wavHeaderLen), 0), 0); err != nil {
		return err
	}
	r.audioFiles.Add(1)
	r.audioBytes.Add(wavHeaderLen)
	return nil
}

func (a *audioWriter) closeFile(c *audioCall, now time.Time) {
	if c.f == nil {
		return
	}
	if err := c.f.Close(); err != nil {
		a.w.fail(err, now)
	}
	c.f = nil
	a.open--
	a.w.r.audioOpen.Add(-1)
}

// evict closes the least recently written eighth of the open WAV files;
// their calls open them again at their next write.
func (a *audioWriter) evict(now time.Time) {
	var open []*audioCall
	for _, c := range a.calls {
		if c.f != nil {
			open = append(open, c)
		}
	}
	slices.SortFunc(open, func(x, y *audioCall) int { return x.lastIO.Compare(y.lastIO) })
	for _, c := range open[:min(len(open), max(1, len(open)/8))] {
		a.syncHeader(c, now)
		a.closeFile(c, now)
	}
}

// finish writes what the call's window holds and its header, and closes
// its file.
func (a *audioWriter) finish(c *audioCall, now time.Time) {
	if c.ring != nil {
		a.flushTo(c, c.high, now)
		if len(a.rings) < 64 {
			a.rings = append(a.rings, c.ring)
		}
		c.ring = nil
	}
	if c.hdr != c.data && (c.f != nil || a.openFile(c, now)) {
		a.syncHeader(c, now)
	}
	a.closeFile(c, now)
}

func (a *audioWriter) getRing() []int16 {
	if n := len(a.rings); n > 0 {
		r := a.rings[n-1]
		a.rings = a.rings[:n-1]
		return r
	}
	return make([]int16, 2*audioWindow)
}

// ended completes the WAV of a call that left the table.
func (a *audioWriter) ended(ref uint64, now time.Time) {
	if c := a.calls[ref]; c != nil {
		a.finish(c, now)
		delete(a.calls, ref)
	}
}

// housekeep completes the WAVs of calls idle for IdleClose (their end was
// lost to a full buffer); a call that sends again continues its file,
// without the silence between.
func (a *audioWriter) housekeep(now time.Time) {
	for ref, c := range a.calls {
		if now.Sub(c.lastUse) >= a.w.r.opt.IdleClose {
			a.finish(c, now)
			delete(a.calls, ref)
		}
	}
}

// closeAll completes every WAV (the end of Run).
func (a *audioWriter) closeAll(now time.Time) {
	for ref, c := range a.calls {
		a.finish(c, now)
		delete(a.calls, ref)
	}
}
