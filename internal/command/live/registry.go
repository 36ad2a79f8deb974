package live

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voipsensor/voipsensor/internal/g711"
)

// Errors of the registry. The commands render them as the legacy texts
// (see [Registry.Listen] and [Registry.Read]).
var (
	// ErrNoCall means the call reference names no call in progress.
	ErrNoCall = errors.New("live: call not found")
	// ErrNoWorker means nobody listens to the call (readaudio before listen,
	// or after every listener left).
	ErrNoWorker = errors.New("live: worker not found")
	// ErrNoClient means the call is listened to, but not under this id.
	ErrNoClient = errors.New("live: client of worker not found")
	// ErrEnded means the listened call ended and its audio was read.
	ErrEnded = errors.New("live: call ended")
	// ErrTooMany means a listener limit was reached.
	ErrTooMany = errors.New("live: too many listeners")
	// ErrDisabled means live audio is switched off (liveaudio = no).
	ErrDisabled = errors.New("live: liveaudio is disabled")
	// ErrBadID means a listen id is empty or longer than 19 bytes.
	ErrBadID = errors.New("live: bad listen id")
)

// Tap receives the RTP payloads of one listened call. The sensor calls it
// on the packet path with the call table locked: RTP copies and returns.
type Tap interface {
	// RTP is one packet sent by the caller (caller true) or the callee,
	// with payload type pt and the codec name from the SDP ("" if unknown).
	// payload is only valid during the call.
	RTP(caller bool, pt uint8, codec string, payload []byte)
	// Ended says the call left the table.
	Ended()
}

// Calls attaches taps to calls by reference. Attach fails (with any error)
// when ref names no call; Detach removes the tap, if the call still exists.
type Calls interface {
	Attach(ref uint64, tap Tap) error
	Detach(ref uint64)
}

// Audio format of the mixed stream: signed 16-bit little-endian mono at
// 8000 Hz, handed out in units of 400 samples (50 ms).
const (
	SampleRate = 8000
	UnitBytes  = 800
	// FrameSamples is the samples per side in one stereo frame (20 ms).
	FrameSamples = 160
	// StereoFrameBytes is one readaudio_stereo frame: an 8-byte capture
	// time (Unix ns, little-endian) of the newest packet it holds, then
	// FrameSamples interleaved caller/callee s16le pairs.
	StereoFrameBytes = 8 + FrameSamples*4
)

// Limits are the registry's bounds; zero fields take the defaults noted.
type Limits struct {
	// Idle drops a listener that has not read for this long (10 s).
	Idle time.Duration
	// PerCall and Total cap listeners on one call (500) and overall (2000).
	PerCall, Total int
	// Calls caps the calls listened to at once (128).
	Calls int
	// ListenerBytes bounds each listener's buffer (64 KiB: 4 s of mono,
	// 2 s of stereo); audio beyond it is dropped and counted.
	ListenerBytes int
	// RingBytes bounds each side's raw RTP ring on the packet path (64 KiB).
	RingBytes int
}

func (l *Limits) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if l.Idle <= 0 {
		l.Idle = 10 * time.Second
	}
	def(&l.PerCall, 500)
	def(&l.Total, 2000)
	def(&l.Calls, 128)
	def(&l.ListenerBytes, 64<<10)
	def(&l.RingBytes, 64<<10)
}

// Stats are the registry's counters.
type Stats struct {
	Calls, Listeners int    // now
	RingDrops        uint64 // RTP packets dropped because a side's ring was full
	ListenerDrops    uint64 // bytes dropped because a listener's buffer was full
	Unsupported      uint64 // packets of a codec that cannot be decoded (decoded as silence)
	Reaped           uint64 // listeners dropped for idleness
}

// Registry holds the listened calls. Safe for concurrent use. Close stops
// every session.
type Registry struct {
	calls Calls
	lim   Limits
	now   func() time.Time

	mu       sync.Mutex
	sessions map[uint64]*session
	total    int

	ringDrops, listenerDrops, unsupported, reaped atomic.Uint64
}

// NewRegistry returns a registry over calls. now may be nil (time.Now).
func NewRegistry(calls Calls, lim Limits, now func() time.Time) *Registry {
	lim.defaults()
	if now == nil {
		now = time.Now
	}
	return &Registry{calls: calls, lim: lim, now: now, sessions: make(map[uint64]*session)}
}

// ParseRef parses a callreference as the legacy manager does: "0x…" is
// hex; otherwise decimal, and hex when decimal parsing fails or gives 0.
func ParseRef(s string) (uint64, bool) {
	s = strings.TrimSpace(s)
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		v, err := strconv.ParseUint(h, 16, 64)
		return v, err == nil && v != 0
	}
	if v, err := strconv.ParseUint(s, 10, 64); err == nil && v != 0 {
		return v, true
	}
	v, err := strconv.ParseUint(s, 16, 64)
	return v, err == nil && v != 0
}

// Listen adds listener id (at most 19 bytes) to call ref, starting a
// session when it is the call's first. already is true when the call was
// listened to before (the legacy "call already listening"); a listener
// re-using its id starts reading at the current end.
func (r *Registry) Listen(ref uint64, id string, stereo bool) (already bool, err error) {
	if id == "" || len(id) > 19 {
		return false, ErrBadID
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sessions[ref]
	if s != nil && s.isDone() {
		// The previous session is winding down; let it go.
		delete(r.sessions, ref)
		r.total -= s.count()
		s = nil
	}
	if s == nil {
		if len(r.sessions) >= r.lim.Calls {
			return false, ErrTooMany
		}
		if r.total >= r.lim.Total {
			return false, ErrTooMany
		}
		// The first listener joins before the tap is attached and the
		// session's goroutine starts, so the first audio always has a
		// listener to go to.
		s = newSession(r, ref)
		if _, err := s.add(id, stereo); err != nil {
			return false, err
		}
		if err := r.calls.Attach(ref, s.tap); err != nil {
			return false, ErrNoCall
		}
		r.sessions[ref] = s
		r.total++
		go s.run()
		return false, nil
	}
	already = true
	added, err := s.add(id, stereo)
	if err != nil {
		return already, err
	}
	if added {
		r.total++
	}
	return already, nil
}

// Read returns the audio listener id of call ref has not read yet: whole
// 800-byte units of mixed mono PCM, or whole stereo frames when the
// listener asked for stereo. An empty slice means "wait for data".
func (r *Registry) Read(ref uint64, id string) ([]byte, error) {
	r.mu.Lock()
	s := r.sessions[ref]
	r.mu.Unlock()
	if s == nil {
		return nil, ErrNoWorker
	}
	return s.read(id)
}

// Stop removes listener id from call ref; the session ends with its last
// listener. Stopping an unknown listener is not an error.
func (r *Registry) Stop(ref uint64, id string) {
	r.mu.Lock()
	s := r.sessions[ref]
	r.mu.Unlock()
	if s != nil {
		s.remove(id)
		s.wake()
	}
}

// Stats returns the counters.
func (r *Registry) Stats() Stats {
	r.mu.Lock()
	st := Stats{Calls: len(r.sessions), Listeners: r.total}
	r.mu.Unlock()
	st.RingDrops, st.ListenerDrops = r.ringDrops.Load(), r.listenerDrops.Load()
	st.Unsupported, st.Reaped = r.unsupported.Load(), r.reaped.Load()
	return st
}

// Close stops every session and detaches its tap.
func (r *Registry) Close() {
	r.mu.Lock()
	ss := make([]*session, 0, len(r.sessions))
	for _, s := range r.sessions {
		ss = append(ss, s)
	}
	r.mu.Unlock()
	for _, s := range ss {
		s.stop()
	}
}

// finish removes s from the registry and detaches its tap, unless a
// listener joined meanwhile and force is false. It reports whether s is
// finished.
func (r *Registry) finish(s *session, detach, force bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !force && s.count() > 0 {
		return false
	}
	if r.sessions[s.ref] == s {
		delete(r.sessions, s.ref)
		r.total -= s.count()
		if detach {
			r.calls.Detach(s.ref)
		}
	}
	return true
}

// packet is one RTP payload in a side's ring.
type packet struct {
	pt    uint8
	codec uint8 // codecULaw, codecALaw, codecOther
	at    int64 // wall clock, Unix ns, when the packet path handed it over
	data  []byte
}

const (
	codecOther = iota
	codecULaw
	codecALaw
)

// ring is a bounded FIFO of payload copies written on the packet path.
// Its mutex is held only to copy; it is taken under the call table lock,
// so nothing else may be locked while holding it.
type ring struct {
	mu    sync.Mutex
	pkts  []packet
	bytes int
	max   int
	spare [][]byte // recycled payload buffers
}

// tap implements Tap for a session.
type tap struct{ s *session }

func (t tap) RTP(caller bool, pt uint8, codec string, payload []byte) {
	s := t.s
	if s.ended.Load() || len(payload) == 0 {
		return
	}
	// The codec is chosen by the static payload type: the table's codec
	// name is the stream's voice codec and also comes with its
	// telephone-event packets, which use a dynamic type.
	var kind uint8
	switch {
	case pt == 0:
		kind = codecULaw
	case pt == 8:
		kind = codecALaw
	case pt == 13 || pt >= 72:
		return // comfort noise, events (dynamic types) and RTCP-like types
	}
	_ = codec // kept in Tap for codecs chosen by name (G.722 with a dynamic type) later
	side := &s.sides[1]
	if caller {
		side = &s.sides[0]
	}
	at := s.r.now().UnixNano()
	side.mu.Lock()
	if side.bytes+len(payload) > side.max {
		side.mu.Unlock()
		s.r.ringDrops.Add(1)
		return
	}
	var buf []byte
	if n := len(side.spare); n > 0 && cap(side.spare[n-1]) >= len(payload) {
		buf = side.spare[n-1][:len(payload)]
		side.spare = side.spare[:n-1]
	} else {
		buf = make([]byte, len(payload))
	}
	copy(buf, payload)
	side.pkts = append(side.pkts, packet{pt: pt, codec: kind, at: at, data: buf})
	side.bytes += len(buf)
	side.mu.Unlock()
	s.wake()
}

func (t tap) Ended() {
	t.s.ended.Store(true)
	t.s.wake()
}

// listener is one client of a session.
type listener struct {
	stereo  bool
	buf     []byte
	last    time.Time // last read (or listen)
	dropped uint64
}

// session is one listened call: the tap, the decoder goroutine and the
// listeners.
type session struct {
	r     *Registry
	ref   uint64
	tap   tap
	sides [2]ring
	ended atomic.Bool // the call left the table
	kick  chan struct{}
	quit  chan struct{}
	once  sync.Once

	// Decoder state, owned by run.
	pcm   [2][]int16
	stamp [2]int64

	mu        sync.Mutex
	listeners map[string]*listener
	done      bool // no more audio will be produced
}

func newSession(r *Registry, ref uint64) *session {
	s := &session{r: r, ref: ref, kick: make(chan struct{}, 1), quit: make(chan struct{}),
		listeners: make(map[string]*listener)}
	s.tap = tap{s}
	s.sides[0].max, s.sides[1].max = r.lim.RingBytes, r.lim.RingBytes
	return s
}

func (s *session) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *session) stop() { s.once.Do(func() { close(s.quit) }) }

func (s *session) isDone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done && len(s.listeners) == 0
}

func (s *session) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.listeners)
}

// add registers id; added is false when id was already there (its buffer
// is then emptied, so it reads from the current end).
func (s *session) add(id string, stereo bool) (added bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.listeners[id]; l != nil {
		l.buf, l.stereo, l.last = l.buf[:0], stereo, s.r.now()
		return false, nil
	}
	if len(s.listeners) >= s.r.lim.PerCall {
		return false, ErrTooMany
	}
	s.listeners[id] = &listener{stereo: stereo, last: s.r.now()}
	return true, nil
}

func (s *session) remove(id string) {
	s.mu.Lock()
	_, ok := s.listeners[id]
	delete(s.listeners, id)
	s.mu.Unlock()
	if ok {
		s.r.mu.Lock()
		if s.r.sessions[s.ref] == s {
			s.r.total--
		}
		s.r.mu.Unlock()
	}
}

func (s *session) read(id string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.listeners[id]
	if l == nil {
		return nil, ErrNoClient
	}
	l.last = s.r.now()
	unit := UnitBytes
	if l.stereo {
		unit = StereoFrameBytes
	}
	if s.done && len(l.buf)%unit != 0 {
		// The call ended: hand out the tail as a last, zero-padded unit.
		l.buf = append(l.buf, make([]byte, unit-len(l.buf)%unit)...)
	}
	n := len(l.buf) / unit * unit
	if n == 0 {
		if s.done {
			return nil, ErrEnded
		}
		return nil, nil
	}
	out := make([]byte, n)
	copy(out, l.buf[:n])
	l.buf = append(l.buf[:0], l.buf[n:]...)
	return out, nil
}

// run decodes, mixes and distributes until the call ends and its
// listeners have read everything, or every listener has left.
func (s *session) run() {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var in [2][]packet
	for {
		select {
		case <-s.kick:
		case <-tick.C:
		case <-s.quit:
			s.r.finish(s, !s.ended.Load(), true)
			return
		}
		for i := range s.sides {
			in[i] = s.drain(i, in[i][:0])
		}
		s.decode(in)
		ended := s.ended.Load()
		s.mix(ended)
		if s.reap(ended) && s.r.finish(s, !ended, false) {
			return
		}
	}
}

// drain moves side i's packets out of its ring, returning the previous
// round's payload buffers to the ring for reuse.
func (s *session) drain(i int, dst []packet) []packet {
	rg := &s.sides[i]
	rg.mu.Lock()
	dst = append(dst, rg.pkts...)
	rg.pkts = rg.pkts[:0]
	rg.bytes = 0
	rg.mu.Unlock()
	return dst
}

// maxPending bounds the decoded samples waiting per side (1 s).
const maxPending = SampleRate

func (s *session) decode(in [2][]packet) {
	for i := range in {
		for _, p := range in[i] {
			n := len(s.pcm[i])
			s.pcm[i] = append(s.pcm[i], make([]int16, len(p.data))...)
			dst := s.pcm[i][n:]
			switch p.codec {
			case codecULaw:
				g711.DecodeUlawTo(dst, p.data)
			case codecALaw:
				g711.DecodeAlawTo(dst, p.data)
			default:
				s.r.unsupported.Add(1) // left as silence
			}
			s.stamp[i] = p.at
			if over := len(s.pcm[i]) - maxPending; over > 0 {
				s.pcm[i] = append(s.pcm[i][:0], s.pcm[i][over:]...)
			}
		}
		// Give the payload buffers back to the ring.
		rg := &s.sides[i]
		rg.mu.Lock()
		for _, p := range in[i] {
			if len(rg.spare) < 64 {
				rg.spare = append(rg.spare, p.data)
			}
		}
		rg.mu.Unlock()
	}
}

// lagSamples is how far one side may run ahead of a silent other side
// before it is played alone (60 ms).
const lagSamples = 3 * FrameSamples

// mix emits 20 ms frames while both sides have one, or while one side is
// lagSamples ahead (one-way audio, or the other side's packets are late);
// with flush it also emits what is left.
func (s *session) mix(flush bool) {
	var frames []byte // stereo frames of this round
	var mono []byte
	for {
		a, b := len(s.pcm[0]), len(s.pcm[1])
		if !(a >= FrameSamples && b >= FrameSamples || a >= lagSamples || b >= lagSamples || flush && (a > 0 || b > 0)) {
			break
		}
		at := max(s.stamp[0], s.stamp[1])
		frames = binary.LittleEndian.AppendUint64(frames, uint64(at))
		for k := 0; k < FrameSamples; k++ {
			var x, y int16
			if k < a {
				x = s.pcm[0][k]
			}
			if k < b {
				y = s.pcm[1][k]
			}
			frames = binary.LittleEndian.AppendUint16(frames, uint16(x))
			frames = binary.LittleEndian.AppendUint16(frames, uint16(y))
			mono = binary.LittleEndian.AppendUint16(mono, uint16(saturate(int32(x)+int32(y))))
		}
		for i := range s.pcm {
			n := min(len(s.pcm[i]), FrameSamples)
			s.pcm[i] = append(s.pcm[i][:0], s.pcm[i][n:]...)
		}
	}
	if len(frames) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	limit := s.r.lim.ListenerBytes
	for _, l := range s.listeners {
		data := mono
		if l.stereo {
			data = frames
		}
		if room := limit - len(l.buf); room < len(data) {
			// Keep whole units: drop the newest audio that does not fit.
			unit := UnitBytes
			if l.stereo {
				unit = StereoFrameBytes
			}
			fit := max(room, 0) / unit * unit
			if !l.stereo {
				fit = max(room, 0) / (2 * FrameSamples) * (2 * FrameSamples)
			}
			l.dropped += uint64(len(data) - fit)
			s.r.listenerDrops.Add(uint64(len(data) - fit))
			data = data[:fit]
		}
		l.buf = append(l.buf, data...)
	}
}

func saturate(v int32) int16 {
	if v > 32767 {
		return 32767
	}
	if v < -32768 {
		return -32768
	}
	return int16(v)
}

// reap drops idle listeners and reports whether the session is over:
// nobody listens any more, or the call ended and everything was read (or
// its listeners went idle).
func (s *session) reap(ended bool) bool {
	now := s.r.now()
	s.mu.Lock()
	gone := 0
	for id, l := range s.listeners {
		if now.Sub(l.last) > s.r.lim.Idle {
			delete(s.listeners, id)
			gone++
		}
	}
	if ended {
		s.done = true
	}
	empty := len(s.listeners) == 0
	s.mu.Unlock()
	if gone > 0 {
		s.r.reaped.Add(uint64(gone))
		s.r.mu.Lock()
		if s.r.sessions[s.ref] == s {
			s.r.total -= gone
		}
		s.r.mu.Unlock()
	}
	return empty
}
