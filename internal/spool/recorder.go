package spool

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/capture"
	"github.com/voipsensor/voipsensor/internal/decode"
)

// RTPMode is what of a call's RTP a [Recorder] saves (savertp).
type RTPMode uint8

// RTP modes.
const (
	RTPNone   RTPMode = iota // no RTP
	RTPFull                  // every RTP frame, whole
	RTPHeader                // every RTP frame cut after the RTP header (no voice)
)

// Options configure a [Recorder]. Zero values select the defaults noted on
// each field.
type Options struct {
	Dir      string  // the spool directory; created with the first file
	SIP      bool    // savesip
	RTP      RTPMode // savertp
	RTCP     bool    // savertcp
	Register bool    // save-sip-register
	// Audio is saveaudio = wav: each call's G.711 audio, decoded, to
	// AUDIO/<callid>.wav in its minute (audio.go).
	Audio bool

	// BufferBytes bounds the memory of frames not yet on disk (default
	// 64 MiB): a quarter for each of the two batches the packet path fills
	// and the writer empties in turn, half for the records waiting in the
	// files' write buffers. A frame that finds its batch full is dropped
	// and counted.
	BufferBytes int
	// MaxOpenFiles bounds the pcap files held open (default 65535, the
	// sniffer's openfile_max, and never more than half the process's
	// open-file limit); over it the least recently written ones are
	// closed, and reopened for appending when their calls send again.
	// With Audio, a quarter of it goes to the WAV files.
	MaxOpenFiles int
	// Linger keeps a call's files open this long after the call left the
	// table (default 2 s).
	Linger time.Duration
	// IdleClose closes a file not written for this long (default 30 s):
	// registrations, and calls whose end marker was dropped.
	IdleClose time.Duration
	// FlushEvery is the longest a frame waits in a file's write buffer
	// (default 1 s): a call in progress is on disk up to about that long
	// ago.
	FlushEvery time.Duration
	// Location is the zone of the minute directories (nil: time.Local,
	// as the sniffer names them).
	Location *time.Location
	// Logger receives the recorder's few log lines (nil: slog.Default()).
	Logger *slog.Logger
	// Backpressure makes the packet source wrapped by [Source] wait while
	// the batch being filled is more than half full, instead of letting
	// frames be dropped: for a capture file read at full speed, where
	// waiting loses nothing (a live interface never waits). The wait is
	// in ReadFrame, before the frame is decoded: no lock is held.
	Backpressure bool
}

// Defaults of [Options].
const (
	DefaultBufferBytes  = 64 << 20
	DefaultMaxOpenFiles = 65535
	DefaultLinger       = 2 * time.Second
	DefaultIdleClose    = 30 * time.Second
	DefaultFlushEvery   = time.Second
)

func (o *Options) setDefaults() {
	if o.BufferBytes <= 0 {
		o.BufferBytes = DefaultBufferBytes
	}
	if o.MaxOpenFiles <= 0 {
		o.MaxOpenFiles = DefaultMaxOpenFiles
	}
	if lim := openFileLimit(); lim > 0 && o.MaxOpenFiles > lim/2 {
		o.MaxOpenFiles = max(lim/2, 16) // the rest for sockets, the database, the capture
	}
	if o.Linger <= 0 {
		o.Linger = DefaultLinger
	}
	if o.IdleClose <= 0 {
		o.IdleClose = DefaultIdleClose
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = DefaultFlushEvery
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Stats are a [Recorder]'s counters.
type Stats struct {
	Frames       uint64 // frames written to pcaps
	Bytes        uint64 // bytes written (file headers and records)
	Dropped      uint64 // frames dropped because the buffer was full
	DiskFull     uint64 // frames discarded while the disk was full (recording stopped)
	Lost         uint64 // frames not written because of another error (open, write)
	LinkMismatch uint64 // frames of another link type than their pcap's, not written
	Errors       uint64 // failed opens, writes and closes
	FilesCreated uint64 // pcap files created
	FilesOpen    int    // pcap files open now
	QueueBytes   int    // frame and audio bytes waiting in the batch being filled
	Paused       bool   // recording stopped: the disk is full

	// saveaudio (zero without [Options.Audio]). Packets are RTP packets
	// of the calls' G.711 voice.
	AudioFiles    uint64 // WAV files created
	AudioBytes    uint64 // bytes written to WAV files (samples and new files' headers)
	AudioPackets  uint64 // packets decoded and written to WAV files
	AudioDropped  uint64 // RTP and SIP datagrams not queued because the buffer was full
	AudioDiskFull uint64 // packets discarded while the disk was full
	AudioLost     uint64 // packets not written because of another error (open, write, a WAV over 4 GB)
	AudioLate     uint64 // packets that came after their place in the WAV was written (reordered by over 250 ms)
	AudioCodec    uint64 // packets of codecs not decoded (other than G.711; each named once in the log)
	AudioOpen     int    // WAV files open now
}

// minFrame is the frame size a batch's record slots are counted for: a
// batch holds its bytes' worth of frames of this size.
const minFrame = 64

// rec is one frame (or a call's end) waiting in a batch. Its bytes are
// data[off:off+n] of the batch.
type rec struct {
	ref     uint64
	callID  string // the call's own string: immutable, shared, not copied
	startNs int64  // the call's (or chain's) first packet, Unix ns
	tsNs    int64  // the frame's capture time, Unix ns
	orig    uint32 // the frame's length on the wire
	off, n  uint32
	link    capture.LinkType
	typ     Type
	end     bool      // the call with ref ended; no frame
	audio   audioKind // TypeAUDIO: a SIP message or an RTP packet of the call, after its flow (audio.go)
}

// batch is what the packet path fills while the writer empties the other
// one.
type batch struct {
	data []byte
	recs []rec
}

// Recorder saves the frames the call table attributes to calls into the
// spool. It implements [calltable.Recorder]: Record and Ended copy into a
// bounded batch under a leaf mutex and return; [Recorder.Run] writes.
//
// [Recorder.Frame] and Record must be called from the one goroutine that
// reads frames (the packet loop: Record runs inside its Decode), Ended from
// any goroutine holding the table lock; Stats from anywhere.
type Recorder struct {
	opt        Options
	want       [calltable.RecordRegister + 1]bool // by kind
	headerOnly bool
	maxRecs    int
	roomLimit  int64 // Backpressure: the fill level ReadFrame waits below

	// The packet goroutine's: the frame being decoded, and the last file
	// it went to (one frame may carry several messages of one call).
	cur  *capture.Frame
	seq  uint64
	last struct {
		seq, ref uint64
		typ      Type
	}

	mu      sync.Mutex // guards fill and spare; a leaf (LOCKS.md)
	fill    *batch
	spare   *batch
	wake    chan struct{}
	filled  atomic.Int64  // bytes in fill, for Backpressure
	drained chan struct{} // the writer took a batch (Backpressure waits on it)
	stopped chan struct{} // closed when Run returns

	w writer // the writer goroutine's state (writer.go)

	frames, bytes, dropped, diskFull, lost, linkMismatch, errors, created atomic.Uint64
	open                                                                  atomic.Int64
	paused                                                                atomic.Bool

	audioFiles, audioBytes, audioPackets, audioDropped, audioDiskFull, audioLost, audioLate, audioCodec atomic.Uint64
	audioOpen                                                                                           atomic.Int64

	// beforeBatch, when set (tests), is called by the writer before it
	// takes each batch: a hook that blocks stalls the writer.
	beforeBatch func()
}

// New returns a recorder for opt; it starts nothing (see [Recorder.Run]).
func New(opt Options) *Recorder {
	opt.setDefaults()
	half := opt.BufferBytes / 4
	r := &Recorder{
		opt:        opt,
		headerOnly: opt.RTP == RTPHeader,
		maxRecs:    max(half/minFrame, 1024),
		roomLimit:  int64(half / 2),
		fill:       &batch{data: make([]byte, 0, half)},
		spare:      &batch{data: make([]byte, 0, half)},
		wake:       make(chan struct{}, 1),
		drained:    make(chan struct{}, 1),
		stopped:    make(chan struct{}),
	}
	r.want[calltable.RecordSIP] = opt.SIP
	r.want[calltable.RecordRTP] = opt.RTP != RTPNone
	r.want[calltable.RecordRTCP] = opt.RTCP
	r.want[calltable.RecordRegister] = opt.Register
	r.w.init(r)
	return r
}

// Frame tells the recorder which frame is being decoded: the datagrams
// Record is handed until the next Frame came out of it. f must stay valid
// until then (the packet loop's frame).
func (r *Recorder) Frame(f *capture.Frame) {
	r.cur = f
	r.seq++
}

// typeOf maps a record kind to the file it goes to: RTCP goes with RTP, as
// the sniffer saves it.
func typeOf(kind calltable.RecordKind) Type {
	switch kind {
	case calltable.RecordRTP, calltable.RecordRTCP:
		return TypeRTP
	case calltable.RecordRegister:
		return TypeREG
	}
	return TypeSIP
}

// Record implements [calltable.Recorder]: it queues the frame being decoded
// for the file of kind of the call ref, once per frame and file, and with
// Audio every SIP message and RTP packet of the call for its WAV. It never
// blocks: with its batch full, the frame is dropped and counted.
func (r *Recorder) Record(kind calltable.RecordKind, ref uint64, callID string, start time.Time, dg *decode.Datagram) {
	if r.opt.Audio && (kind == calltable.RecordRTP || kind == calltable.RecordSIP) {
		r.enqueueAudio(kind, ref, callID, start, dg)
	}
	if int(kind) >= len(r.want) || !r.want[kind] || r.cur == nil {
		return
	}
	typ := typeOf(kind)
	if r.last.seq == r.seq && r.last.ref == ref && r.last.typ == typ {
		return // another message of this call in the same frame
	}
	r.last.seq, r.last.ref, r.last.typ = r.seq, ref, typ
	startNs := start.UnixNano()
	// The earlier fragments of a reassembled datagram come first, whole.
	for i := range dg.Held {
		h := &dg.Held[i]
		r.enqueue(h, h.Data, ref, callID, startNs, typ)
	}
	fr := r.cur
	data := fr.Data
	if kind == calltable.RecordRTP && r.headerOnly {
		data = data[:rtpHeaderEnd(data, dg.Payload)]
	}
	r.enqueue(fr, data, ref, callID, startNs, typ)
}

// enqueue copies data, the part of fr to save, into the batch being
// filled, or drops it when the batch is full.
func (r *Recorder) enqueue(fr *capture.Frame, data []byte, ref uint64, callID string, startNs int64, typ Type) {
	r.mu.Lock()
	b := r.fill
	if len(b.data)+len(data) > cap(b.data) || len(b.recs) >= r.maxRecs {
		r.mu.Unlock()
		r.dropped.Add(1)
		return
	}
	off := len(b.data)
	b.data = append(b.data, data...)
	b.recs = append(b.recs, rec{
		ref: ref, callID: callID, startNs: startNs, tsNs: fr.Time.UnixNano(),
		orig: uint32(max(fr.Length, len(fr.Data))), off: uint32(off), n: uint32(len(data)),
		link: fr.LinkType, typ: typ,
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

// Ended implements [calltable.Recorder]: the call's files are closed once
// the frames queued before the end are written, after Linger. An end that
// finds the batch full is lost; the files then close when idle.
func (r *Recorder) Ended(ref uint64) {
	r.mu.Lock()
	b := r.fill
	if len(b.recs) >= r.maxRecs {
		r.mu.Unlock()
		return
	}
	b.recs = append(b.recs, rec{ref: ref, end: true})
	first := len(b.recs) == 1
	r.mu.Unlock()
	if first {
		r.signal()
	}
}

func (r *Recorder) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// waitRoom returns once the batch being filled is at most half full, or
// the writer has stopped ([Options.Backpressure]).
func (r *Recorder) waitRoom() {
	for r.filled.Load() > r.roomLimit {
		r.signal()
		select {
		case <-r.drained:
		case <-r.stopped:
			return
		}
	}
}

// rtpHeaderEnd returns how much of frame to keep for a header-only RTP
// record: everything up to the end of the RTP header (fixed part, CSRCs
// and extension, RFC 3550 §5.1 and §5.3.1) when payload is a slice of
// frame; the whole frame otherwise (a reassembled datagram).
func rtpHeaderEnd(frame, payload []byte) int {
	if len(payload) == 0 || len(frame) == 0 {
		return len(frame)
	}
	off := cap(frame) - cap(payload)
	if off < 0 || off+len(payload) > len(frame) || &frame[off] != &payload[0] {
		return len(frame)
	}
	h := 12
	if len(payload) >= 12 {
		h += 4 * int(payload[0]&0x0f)
		if payload[0]&0x10 != 0 && len(payload) >= h+4 {
			h += 4 + 4*(int(payload[h+2])<<8|int(payload[h+3]))
		}
	}
	return off + min(h, len(payload))
}

// Stats returns the counters. Safe for concurrent use.
func (r *Recorder) Stats() Stats {
	r.mu.Lock()
	q := len(r.fill.data)
	r.mu.Unlock()
	return Stats{
		Frames: r.frames.Load(), Bytes: r.bytes.Load(), Dropped: r.dropped.Load(), DiskFull: r.diskFull.Load(), Lost: r.lost.Load(),
		LinkMismatch: r.linkMismatch.Load(), Errors: r.errors.Load(), FilesCreated: r.created.Load(),
		FilesOpen: int(r.open.Load()), QueueBytes: q, Paused: r.paused.Load(),
		AudioFiles: r.audioFiles.Load(), AudioBytes: r.audioBytes.Load(), AudioPackets: r.audioPackets.Load(),
		AudioDropped: r.audioDropped.Load(), AudioDiskFull: r.audioDiskFull.Load(), AudioLost: r.audioLost.Load(),
		AudioLate: r.audioLate.Load(), AudioCodec: r.audioCodec.Load(), AudioOpen: int(r.audioOpen.Load()),
	}
}

// Audio reports whether the recorder writes the calls' audio (saveaudio).
func (r *Recorder) Audio() bool { return r.opt.Audio }

// Run writes what the packet path queues until ctx is done; then it writes
// what is left, closes every file and returns nil. Cancel ctx only after
// the table has delivered its last Record and Ended (after CloseAll), so
// that every call's files are complete.
func (r *Recorder) Run(ctx context.Context) error {
	defer close(r.stopped)
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	pace := time.NewTimer(0)
	defer pace.Stop()
	for {
		select {
		case <-ctx.Done():
			r.cycle(time.Now())
			r.w.closeAll()
			return nil
		case <-r.wake:
		case <-tick.C:
		}
		r.cycle(time.Now())
		// Let the next batch gather a little: fewer, larger hand-offs.
		pace.Reset(batchPause)
		select {
		case <-pace.C:
		case <-ctx.Done():
		}
	}
}

const (
	tickEvery  = 250 * time.Millisecond // flush and close checks without traffic
	batchPause = 10 * time.Millisecond  // the shortest time between two batches
)

// cycle takes the filled batch, turns its frames into records in the
// files' buffers, then flushes and closes what is due.
func (r *Recorder) cycle(now time.Time) {
	if r.beforeBatch != nil {
		r.beforeBatch()
	}
	r.mu.Lock()
	b := r.fill
	r.fill, r.spare = r.spare, nil
	r.filled.Store(0)
	r.mu.Unlock()
	select {
	case r.drained <- struct{}{}:
	default:
	}

	r.w.take(b, now)

	b.data, b.recs = b.data[:0], b.recs[:0]
	r.mu.Lock()
	r.spare = b
	r.mu.Unlock()
	r.w.housekeep(now)
}

var _ calltable.Recorder = (*Recorder)(nil)
