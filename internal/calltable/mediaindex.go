package calltable

import "net/netip"

// mediaIndex maps the media addresses calls advertised in SDP to the call.
// It is looked up twice per RTP packet, so IPv4 addresses, nearly all of
// them, are keyed by one uint64 (the map's fast path); other addresses by
// their 16 bytes and port. Values are held in the map itself, which saves a
// cache miss per lookup. Zones are ignored: decoded packets never carry
// one. Guarded by the table lock.
type mediaIndex struct {
	v4 map[uint64]mediaSlot
	v6 map[media6Key]mediaSlot
}

// mediaSlot is the call at one media address, and a hint: the stream of
// that call last seen sent to the address, which spares the packet path a
// search through the call's streams (and the cache misses of that search).
type mediaSlot struct {
	c    *Call
	recv *Stream // nil, or one of c.Streams
}

type media6Key struct {
	hi, lo uint64
	port   uint16
}

func newMediaIndex() mediaIndex {
	return mediaIndex{v4: make(map[uint64]mediaSlot), v6: make(map[media6Key]mediaSlot)}
}

// key4 packs an IPv4 address and port; ok is false for other addresses.
func key4(ap netip.AddrPort) (k uint64, ok bool) {
	a := ap.Addr()
	if !a.Is4() {
		return 0, false
	}
	b := a.As4()
	return uint64(b[0])<<40 | uint64(b[1])<<32 | uint64(b[2])<<24 | uint64(b[3])<<16 | uint64(ap.Port()), true
}

func key6(ap netip.AddrPort) media6Key {
	b := ap.Addr().As16()
	var k media6Key
	for i := 0; i < 8; i++ {
		k.hi = k.hi<<8 | uint64(b[i])
		k.lo = k.lo<<8 | uint64(b[8+i])
	}
	k.port = ap.Port()
	return k
}

// slot returns the slot of ap, the zero slot when no call advertised it.
func (m *mediaIndex) slot(ap netip.AddrPort) mediaSlot {
	if k, ok := key4(ap); ok {
		return m.v4[k]
	}
	if len(m.v6) == 0 || !ap.Addr().IsValid() {
		return mediaSlot{}
	}
	return m.v6[key6(ap)]
}

func (m *mediaIndex) put(ap netip.AddrPort, sl mediaSlot) {
	if k, ok := key4(ap); ok {
		m.v4[k] = sl
	} else if ap.Addr().IsValid() {
		m.v6[key6(ap)] = sl
	}
}

// get returns the call that advertised ap, or nil.
func (m *mediaIndex) get(ap netip.AddrPort) *Call { return m.slot(ap).c }

// set makes c the call of ap. A slot that changes calls loses its hint.
func (m *mediaIndex) set(ap netip.AddrPort, c *Call) {
	if m.slot(ap).c != c {
		m.put(ap, mediaSlot{c: c})
	}
}

// setRecv records s, a stream of c, as the last one sent to ap, when ap is
// still c's.
func (m *mediaIndex) setRecv(ap netip.AddrPort, c *Call, s *Stream) {
	if m.slot(ap).c == c {
		m.put(ap, mediaSlot{c: c, recv: s})
	}
}

func (m *mediaIndex) del(ap netip.AddrPort) {
	if k, ok := key4(ap); ok {
		delete(m.v4, k)
	} else if ap.Addr().IsValid() {
		delete(m.v6, key6(ap))
	}
}

func (m *mediaIndex) len() int { return len(m.v4) + len(m.v6) }
