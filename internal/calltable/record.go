package calltable

import (
	"time"

	"github.com/voipsensor/voipsensor/internal/decode"
)

// RecordKind says what a recorded datagram is to the call it belongs to.
type RecordKind uint8

// Record kinds.
const (
	RecordSIP      RecordKind = iota + 1 // a SIP message of the call
	RecordRTP                            // a datagram on one of the call's media addresses that is not RTCP
	RecordRTCP                           // an RTCP packet on one of the call's media addresses
	RecordRegister                       // a message of a REGISTER transaction chain
)

// String returns "sip", "rtp", "rtcp" or "register".
func (k RecordKind) String() string {
	switch k {
	case RecordSIP:
		return "sip"
	case RecordRTP:
		return "rtp"
	case RecordRTCP:
		return "rtcp"
	case RecordRegister:
		return "register"
	}
	return "unknown"
}

// Recorder is told which call each datagram belongs to, so that it can save
// the frame that carried it (the spool). Its methods are called with the
// table lock held, on the packet path (Ended also from a timer's Expire):
// like [AudioTap] they must copy what they keep and return at once, never
// block and never do I/O. A table without a recorder pays one nil check per
// datagram.
type Recorder interface {
	// Record says dg belongs to the call with reference ref, Call-ID
	// callID and first packet start (kind SIP, RTP or RTCP), or, for
	// RecordRegister, to the REGISTER transaction chain of the binding
	// with ID ref that started at start (callID is empty). dg is valid
	// only during the call.
	Record(kind RecordKind, ref uint64, callID string, start time.Time, dg *decode.Datagram)
	// Ended says the call with reference ref left the table: no datagram
	// of it follows.
	Ended(ref uint64)
}

// SetRecorder attaches rec to the table (nil detaches). Set it before the
// first datagram; it is not meant to change while packets flow.
func (t *Table) SetRecorder(rec Recorder) {
	t.mu.Lock()
	t.rec = rec
	t.mu.Unlock()
}

// record tells the recorder that dg belongs to c. Must hold t.mu.
func (t *Table) record(kind RecordKind, c *Call, dg *decode.Datagram) {
	if t.rec != nil {
		t.rec.Record(kind, c.Ref, c.CallID, c.InviteTime, dg)
	}
}

// recordRegister tells the recorder that dg belongs to r's transaction
// chain. Must hold t.mu.
func (t *Table) recordRegister(r *Registration, dg *decode.Datagram) {
	if t.rec != nil {
		t.rec.Record(RecordRegister, r.ID, "", r.pendingStart, dg)
	}
}
