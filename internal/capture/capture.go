package capture

import (
	"errors"
	"time"
)

// LinkType is a pcap LINKTYPE_* value naming the link-layer header that
// starts a [Frame]'s Data.
type LinkType uint32

// Link types voipsensor decodes. The numbers are the pcap LINKTYPE_* values
// (www.tcpdump.org/linktypes.html).
const (
	LinkTypeNull      LinkType = 0   // BSD loopback: 4-byte host-order address family
	LinkTypeEthernet  LinkType = 1   // Ethernet II (also Linux "lo", which carries a zeroed header)
	LinkTypeRaw       LinkType = 101 // raw IPv4 or IPv6, version taken from the first nibble
	LinkTypeLinuxSLL  LinkType = 113 // Linux "cooked" capture v1 (the "any" device)
	LinkTypeIPv4      LinkType = 228 // raw IPv4
	LinkTypeIPv6      LinkType = 229 // raw IPv6
	LinkTypeLinuxSLL2 LinkType = 276 // Linux "cooked" capture v2
)

// Frame is one captured link-layer packet with its capture information.
//
// Data aliases the [Source]'s buffer and is valid only until the next call to
// [Source.ReadFrame]; copy it to keep it.
type Frame struct {
	Data      []byte    // captured bytes, starting at the link-layer header
	Time      time.Time // capture timestamp (kernel or file record time)
	Length    int       // original length on the wire; may exceed len(Data) when truncated by snaplen
	LinkType  LinkType  // how to decode Data
	Interface int       // interface index within the source (pcapng IDB, 0 otherwise)
}

// Stats are a [Source]'s cumulative counters.
type Stats struct {
	Frames        uint64 // frames delivered to the reader
	Bytes         uint64 // captured bytes delivered
	KernelDropped uint64 // frames the kernel dropped because the reader was too slow (live only)
	IfDropped     uint64 // frames the interface or driver dropped (live only, when known)
	RingFreezes   uint64 // times the kernel ring was full and froze its queue (live only)

	// The packet buffer's, when the source is [Buffered] (zero otherwise).
	BufferDropped  uint64 // frames read from the ring but dropped because the buffer was full
	BufferCapacity uint64 // the buffer's size, bytes
	BufferUsed     uint64 // bytes of frames (with their headers) waiting in the buffer now
	BufferHigh     uint64 // most bytes of frames ever waiting at once
}

// Source delivers captured frames, from a file or a live interface.
//
// A Source is not safe for concurrent use: one goroutine reads it. Stats may
// be called from any goroutine.
type Source interface {
	// ReadFrame fills f with the next frame. It returns io.EOF when a file
	// source is exhausted, and ErrClosed once Close has been called.
	ReadFrame(f *Frame) error
	// Stats returns the cumulative counters. Safe for concurrent use.
	Stats() Stats
	// Close releases the source. A blocked ReadFrame returns ErrClosed.
	Close() error
}

// Errors returned by sources.
var (
	ErrClosed        = errors.New("capture: source closed")
	ErrUnknownFormat = errors.New("capture: not a pcap or pcapng file")
)
