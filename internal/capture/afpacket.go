//go:build linux

package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/gopacket/gopacket/afpacket"
	"golang.org/x/net/bpf"
)

// LiveConfig configures [OpenLive].
type LiveConfig struct {
	// Interface is the interface name, or "any" for all interfaces.
	Interface string
	// Snaplen is the maximum number of bytes captured per frame
	// (DefaultSnaplen when 0).
	Snaplen int
	// BufferMB is the size of the kernel ring in MiB (DefaultLiveBufferMB
	// when 0).
	BufferMB int
	// Filter is a capture filter in the [CompileFilter] language, run in the
	// kernel. Empty captures everything.
	Filter string
	// PollTimeout bounds how long [Live.Close] waits for a blocked
	// [Live.ReadFrame] to return (DefaultPollTimeout when 0).
	PollTimeout time.Duration
}

// Defaults for [LiveConfig].
const (
	DefaultLiveBufferMB = 64
	DefaultPollTimeout  = 100 * time.Millisecond
)

// Linux constants not worth an import of x/sys for.
const (
	arphrdEther    = 1
	arphrdLoopback = 772
	packetOutgoing = 4 // PACKET_OUTGOING, the sll_pkttype of a sent frame
	sllHeaderLen   = 16
)

// Live is a [Source] reading an interface through an AF_PACKET TPACKET_V3
// ring, without cgo.
//
// On an Ethernet interface or "lo", frames are [LinkTypeEthernet] (lo
// carries a zeroed Ethernet header). On "any", and on any interface whose
// hardware type is not Ethernet, the socket runs in cooked (SOCK_DGRAM)
// mode and ReadFrame prepends a Linux "cooked" header, so frames are
// [LinkTypeLinuxSLL] exactly as libpcap's "any" device gives them, and
// [Frame.Interface] is the kernel interface index.
//
// As libpcap does, frames the host sends on the loopback interface are
// captured once (the kernel hands a packet socket both the outgoing and
// the looped-back incoming copy; the outgoing one is dropped by the kernel
// filter).
//
// The filter runs in the kernel. VLAN tags are normally stripped by the
// kernel before a packet socket sees them, so "vlan" is refused for live
// capture.
//
// Frame.Data aliases the kernel ring: it is valid until the next ReadFrame.
// The reader holds a lease on the ring from the moment ReadFrame returns a
// frame until it calls ReadFrame again, so a concurrent Close never unmaps
// a block whose frame is still being decoded: Close waits for the reader
// to come back (or for a blocked read to notice, within the PollTimeout).
// ReadFrame is for one goroutine; Stats and Close are safe for concurrent
// use, but Close must not be called by the reading goroutine while it holds
// a frame.
type Live struct {
	tp     *afpacket.TPacket
	lt     LinkType
	cooked bool
	name   string

	closed atomic.Bool
	// readMu is held by the reader from its ReadFrame call until it calls
	// ReadFrame again (the frame's lease), or until ReadFrame returns an
	// error. Close takes it before unmapping the ring.
	readMu sync.Mutex
	leased bool // the reader holds readMu; touched only by the reader

	frames, bytes atomic.Uint64

	statsMu sync.Mutex // guards tp's socket calls against Close, dropped and freezes
	dropped uint64
	freezes uint64
}

// OpenLive opens cfg.Interface for capture. It needs CAP_NET_RAW.
func OpenLive(cfg LiveConfig) (*Live, error) {
	if cfg.Interface == "" {
		return nil, errors.New("capture: live: no interface")
	}
	if cfg.Snaplen <= 0 {
		cfg.Snaplen = DefaultSnaplen
	}
	if cfg.BufferMB <= 0 {
		cfg.BufferMB = DefaultLiveBufferMB
	}
	if cfg.PollTimeout <= 0 {
		cfg.PollTimeout = DefaultPollTimeout
	}
	toks, err := tokenize(cfg.Filter)
	if err != nil {
		return nil, err
	}
	for _, t := range toks {
		if t == "vlan" {
			return nil, fmt.Errorf("%w: \"vlan\" is not supported on live capture (the kernel strips tags)", ErrFilter)
		}
	}
	l := &Live{name: cfg.Interface, lt: LinkTypeEthernet}
	loIndex := 0
	if lo, err := loopbackIndex(); err == nil {
		loIndex = lo
	}
	var ifIndex int
	if cfg.Interface == "any" {
		l.cooked = true
	} else {
		ifc, err := net.InterfaceByName(cfg.Interface)
		if err != nil {
			return nil, fmt.Errorf("capture: live %s: no such interface (`ip link` lists them; \"any\" captures all)", cfg.Interface)
		}
		ifIndex = ifc.Index
		switch hw := hardwareType(cfg.Interface); hw {
		case arphrdEther, arphrdLoopback:
		default:
			l.cooked = true
		}
	}
	if l.cooked {
		l.lt = LinkTypeLinuxSLL
	}

	// The filter returns the snaplen, which the kernel applies, so a
	// program is attached even without an expression.
	var prog []bpf.RawInstruction
	if l.cooked {
		prog, err = compileFilter(cfg.Filter, link{kind: linkKernelCooked}, cfg.Snaplen)
	} else {
		prog, err = CompileFilter(cfg.Filter, LinkTypeEthernet, cfg.Snaplen)
	}
	if err != nil {
		return nil, err
	}
	if loIndex != 0 && (cfg.Interface == "any" || ifIndex == loIndex) {
		prog = append(dropLoopbackOutgoing(loIndex, cfg.Interface == "any"), prog...)
	}

	const pageSize = 4096
	blockSize := 1 << 20
	if need := cfg.Snaplen + 2*pageSize; need > blockSize {
		blockSize = (need + pageSize - 1) / pageSize * pageSize
	}
	numBlocks := max(cfg.BufferMB<<20/blockSize, 2)
	opts := []any{
		afpacket.OptTPacketVersion(afpacket.TPacketVersion3),
		afpacket.OptFrameSize(pageSize),
		afpacket.OptBlockSize(blockSize),
		afpacket.OptNumBlocks(numBlocks),
		afpacket.OptBlockTimeout(10 * time.Millisecond),
		afpacket.OptPollTimeout(cfg.PollTimeout),
	}
	if cfg.Interface != "any" {
		opts = append(opts, afpacket.OptInterface(cfg.Interface))
	}
	if l.cooked {
		opts = append(opts, afpacket.OptSocketType(afpacket.SocketDgram))
	}
	// The socket is opened for no protocol, so it receives nothing until
	// its filter is attached and it is bound to all protocols: otherwise
	// whatever crossed the interface in between would be in the ring,
	// unfiltered (CI counted other tests' loopback traffic in a capture
	// that way, up to 1,184 frames at startup on a busy lo).
	opts = append(opts, afpacket.OptProtocol(0))
	l.tp, err = afpacket.NewTPacket(opts...)
	if err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
			return nil, fmt.Errorf("capture: live %s: %w: capturing needs root or CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous mode): run as root, `setcap cap_net_raw,cap_net_admin+ep` the binary, or use the systemd unit, which grants them", cfg.Interface, err)
		}
		return nil, fmt.Errorf("capture: live %s: %w", cfg.Interface, err)
	}
	if err := l.tp.SetBPF(prog); err != nil {
		l.tp.Close()
		return nil, fmt.Errorf("capture: live %s: attach filter: %w", cfg.Interface, err)
	}
	if err := startReceiving(l.tp, ifIndex); err != nil {
		l.tp.Close()
		return nil, fmt.Errorf("capture: live %s: %w", cfg.Interface, err)
	}
	return l, nil
}

// ethPAll is ETH_P_ALL: every protocol.
const ethPAll = 0x0003

// startReceiving binds tp's socket, opened for no protocol, to every
// protocol on interface ifIndex (0: all): from then on the kernel hands it
// the frames that pass its filter.
func startReceiving(tp *afpacket.TPacket, ifIndex int) error {
	fd, ok := tpacketFD(tp)
	if !ok {
		return errors.New("cannot bind the socket after attaching its filter: gopacket's afpacket.TPacket has no fd field any more")
	}
	var proto [2]byte
	binary.BigEndian.PutUint16(proto[:], ethPAll)
	sa := &syscall.SockaddrLinklayer{Protocol: binary.NativeEndian.Uint16(proto[:]), Ifindex: ifIndex}
	if err := syscall.Bind(fd, sa); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	return nil
}

// tpacketFD returns tp's socket. gopacket does not export it, and offers no
// way to attach a filter before the socket receives (it binds at creation);
// reading the field is the smallest way to bind after the filter.
// TestLiveFilterFromFirstFrame fails if this stops working.
func tpacketFD(tp *afpacket.TPacket) (int, bool) {
	v := reflect.ValueOf(tp).Elem().FieldByName("fd")
	if !v.IsValid() || v.Kind() != reflect.Int {
		return 0, false
	}
	return int(v.Int()), true
}

// dropLoopbackOutgoing is a filter prefix rejecting frames sent on the
// loopback interface; with anyDev it first checks the interface index.
func dropLoopbackOutgoing(loIndex int, anyDev bool) []bpf.RawInstruction {
	var p []bpf.Instruction
	if anyDev {
		p = append(p,
			bpf.LoadExtension{Num: bpf.ExtInterfaceIndex},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(loIndex), SkipTrue: 0, SkipFalse: 3})
	}
	p = append(p,
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: packetOutgoing, SkipTrue: 0, SkipFalse: 1},
		bpf.RetConstant{Val: 0})
	raw, err := bpf.Assemble(p)
	if err != nil {
		panic("capture: live: loopback prefix: " + err.Error()) // constant program
	}
	return raw
}

func hardwareType(name string) int {
	b, err := os.ReadFile("/sys/class/net/" + name + "/type")
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return n
}

func loopbackIndex() (int, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return 0, err
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback != 0 {
			return ifc.Index, nil
		}
	}
	return 0, errors.New("no loopback interface")
}

// ReadFrame blocks until the next frame. It returns [ErrClosed] once Close
// has been called (within the configured PollTimeout). Returning to
// ReadFrame ends the lease on the previous frame: its Data must not be used
// afterwards.
func (l *Live) ReadFrame(f *Frame) error {
	if !l.leased {
		l.readMu.Lock()
		l.leased = true
	}
	for {
		if l.closed.Load() {
			return l.endLease(ErrClosed)
		}
		data, ci, err := l.tp.ZeroCopyReadPacketData()
		if err != nil {
			if errors.Is(err, afpacket.ErrTimeout) {
				continue
			}
			if l.closed.Load() {
				return l.endLease(ErrClosed)
			}
			return l.endLease(fmt.Errorf("capture: live %s: %w", l.name, err))
		}
		length := ci.Length
		if l.cooked {
			data = prependSLL(data)
			length += sllHeaderLen
			f.Interface = ci.InterfaceIndex
		} else {
			f.Interface = 0
		}
		f.Data = data
		f.Time = ci.Timestamp
		f.Length = length
		f.LinkType = l.lt
		l.frames.Add(1)
		l.bytes.Add(uint64(len(data)))
		return nil // the lease is kept: f.Data aliases the ring
	}
}

// endLease gives the ring back to Close and returns err.
func (l *Live) endLease(err error) error {
	l.leased = false
	l.readMu.Unlock()
	return err
}

// prependSLL writes a Linux cooked header into the ring just in front of
// data, as libpcap does, and returns the enlarged slice.
//
// In SOCK_DGRAM mode the kernel puts the network header at offset tp_mac =
// tp_net = TPACKET_ALIGN(68 + max(maclen, 16)) from the tpacket3_hdr, so at
// least 28 unused bytes separate the sockaddr_ll (which ends at offset 68)
// from data: the 16-byte header fits without touching anything the kernel
// reads. The sockaddr_ll supplies the packet type, hardware type and source
// address; its position is found by checking tp_mac, tp_net and tp_snaplen
// of the candidate header (maclen <= 60 covers every common device). If no
// candidate matches, the header says "to us", hardware type unknown, and
// the protocol comes from the IP version.
func prependSLL(data []byte) []byte {
	if len(data) == 0 {
		return data
	}
	p := unsafe.Pointer(unsafe.SliceData(data))
	h := unsafe.Slice((*byte)(unsafe.Add(p, -sllHeaderLen)), sllHeaderLen+len(data))
	clear(h[:sllHeaderLen])
	for _, mac := range []int{96, 112, 128} {
		hdr := unsafe.Slice((*byte)(unsafe.Add(p, -mac)), 68)
		snap := binary.NativeEndian.Uint32(hdr[12:])
		tpMac := binary.NativeEndian.Uint16(hdr[24:])
		tpNet := binary.NativeEndian.Uint16(hdr[26:])
		if int(tpMac) != mac || int(tpNet) != mac || int(snap) != len(data) {
			continue
		}
		ll := hdr[48:68] // struct sockaddr_ll
		hatype := binary.NativeEndian.Uint16(ll[8:])
		pkttype := ll[10]
		halen := min(int(ll[11]), 8)
		binary.BigEndian.PutUint16(h[0:], uint16(pkttype))
		binary.BigEndian.PutUint16(h[2:], hatype)
		binary.BigEndian.PutUint16(h[4:], uint16(halen))
		copy(h[6:6+halen], ll[12:12+halen])
		copy(h[14:16], ll[2:4]) // sll_protocol, already big-endian
		return h
	}
	switch data[0] >> 4 {
	case 4:
		binary.BigEndian.PutUint16(h[14:], etherIPv4)
	case 6:
		binary.BigEndian.PutUint16(h[14:], etherIPv6)
	}
	binary.BigEndian.PutUint16(h[2:], 0xffff)
	return h
}

// LinkType is the link type of every frame this source delivers.
func (l *Live) LinkType() LinkType { return l.lt }

// Stats returns the counters. KernelDropped is the kernel's tp_drops,
// accumulated across reads (the kernel clears the counter on every read).
// Safe for concurrent use.
func (l *Live) Stats() Stats {
	l.statsMu.Lock()
	defer l.statsMu.Unlock()
	if !l.closed.Load() {
		// afpacket accumulates PACKET_STATISTICS itself: the value is
		// cumulative since open.
		if _, v3, err := l.tp.SocketStats(); err == nil {
			l.dropped, l.freezes = uint64(v3.Drops()), uint64(v3.QueueFreezes())
		}
	}
	return Stats{Frames: l.frames.Load(), Bytes: l.bytes.Load(), KernelDropped: l.dropped, RingFreezes: l.freezes}
}

// Close stops the capture; a blocked ReadFrame returns [ErrClosed]. Close
// waits until the reader has finished with its last frame (it is back in
// ReadFrame, or has stopped reading after an error) and then unmaps the
// ring; a blocked read notices within the PollTimeout.
func (l *Live) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	l.readMu.Lock()
	defer l.readMu.Unlock()
	l.statsMu.Lock()
	defer l.statsMu.Unlock()
	if _, v3, err := l.tp.SocketStats(); err == nil {
		l.dropped, l.freezes = uint64(v3.Drops()), uint64(v3.QueueFreezes())
	}
	l.tp.Close()
	return nil
}

var _ Source = (*Live)(nil)
