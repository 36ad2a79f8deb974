package capture

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/bpf"
)

// ErrFilter is wrapped by every error [CompileFilter] returns; the text after
// the prefix names the offending token.
var ErrFilter = errors.New("capture: filter")

// DefaultSnaplen is the snapshot length used when a caller passes 0.
const DefaultSnaplen = 262144

// maxFilterInstructions is the kernel's BPF_MAXINSNS.
const maxFilterInstructions = 4096

// CompileFilter compiles expr, a subset of the tcpdump (pcap-filter(7))
// language, to a classic BPF program for frames of link type lt. The program
// returns snaplen (DefaultSnaplen when snaplen <= 0) for a matching frame and
// 0 otherwise. An empty expr matches every frame.
//
// Supported link types: [LinkTypeEthernet] (with in-band 802.1Q/802.1ad tags,
// see vlan below; "vlan" is refused on the other link types, as tcpdump
// does), [LinkTypeLinuxSLL], [LinkTypeLinuxSLL2], [LinkTypeRaw],
// [LinkTypeIPv4] and [LinkTypeIPv6].
//
// Grammar (anything else is an error wrapping [ErrFilter] that names the
// token, e.g. `capture: filter: unsupported primitive "greater"`; nothing is
// ever silently widened):
//
//	expr      = term { ( "and" | "&&" | "or" | "||" ) term }
//	term      = ( "not" | "!" ) term | "(" expr ")" | primitive
//	primitive = "ip" | "ip6" | "tcp" | "udp"
//	          | [ "tcp" | "udp" ] [ "src" | "dst" ] ( "port" N | "portrange" A "-" B )
//	          | [ "ip" | "ip6" ] [ "src" | "dst" ] ( "host" ADDR | "net" ADDR "/" LEN )
//	          | "vlan" [ VID ]
//	          | [ "ip" | "ip6" ] "proto" PROTO
//	          | "sctp" [ [ "src" | "dst" ] ( "port" N | "portrange" A "-" B ) ]
//
// As in tcpdump, "and" and "or" have the same precedence and associate left
// to right ("a or b and c" is "(a or b) and c"); "not" binds tightest. Port
// numbers are decimal (no service names), addresses are IPv4 or IPv6 literals
// (no host names), and "net" needs an explicit prefix length with no host bits
// set.
//
// Meaning, as in tcpdump:
//   - "ip", "ip6": the frame carries IPv4, IPv6.
//   - "tcp", "udp": IPv4 protocol or IPv6 next header 6, 17; as in tcpdump,
//     an IPv6 fragment header right after the fixed header is looked
//     through, other IPv6 extension headers are not.
//   - "port N": TCP, UDP or SCTP source or destination port N; "tcp port"
//     and "udp port" restrict the protocol; "src"/"dst" restrict the side;
//     "portrange A-B" matches A <= port <= B.
//   - "host A": IPv4 or IPv6 source or destination address A; an IPv4
//     "host" or "net" without "ip" also matches ARP and RARP sender/target
//     protocol addresses, as tcpdump's does.
//   - "sctp": IPv4 protocol or IPv6 next header 132, like "tcp"; "sctp
//     port N" restricts "port N" to SCTP.
//   - "proto P": IPv4 protocol or IPv6 next header P (looking through an
//     IPv6 fragment header as "tcp" does), a number 0-255 or one of the
//     /etc/protocols names icmp, ipencap (4: IPv4 in IP), tcp, udp, ipv6,
//     gre, ipip (94, not 4), sctp (a leading backslash, as tcpdump needs
//     before keywords, is accepted); "ip proto" and "ip6 proto" restrict it
//     to IPv4 or IPv6. This selects tunnels: "proto gre" (GRE and ERSPAN),
//     "proto 4" (IPv4 in IP), "proto 41" (IPv6 in IP).
//   - "vlan [VID]": the next ethertype is 802.1Q (0x8100), 802.1ad (0x88a8)
//     or 0x9100, with VLAN ID VID if given. As in tcpdump, every "vlan"
//     moves the offsets of all primitives written after it (in text order)
//     by 4 bytes, so "vlan and udp port 5060" looks inside the tag while
//     "udp port 5060" alone never matches a tagged frame.
//
// Deliberate difference from tcpdump: IPv4 fragments. tcpdump's port tests
// are false for a non-first fragment (it has no transport header). Here a
// port or portrange test is TRUE for a non-first fragment of a TCP/UDP/SCTP
// packet (the protocol test still applies), because the fragment may belong
// to a matching datagram and the sensor must see all fragments of, say, a
// large SIP INVITE to reassemble it. The same holds for IPv6 packets whose
// fixed header is followed by a fragment header: ports of a first fragment
// are tested (tcpdump's port tests ignore such packets), and a non-first
// fragment matches. Under "not" the test is inverted like any other, so
// "not port 5060" drops non-first fragments.
func CompileFilter(expr string, lt LinkType, snaplen int) ([]bpf.RawInstruction, error) {
	lk, err := linkFor(lt)
	if err != nil {
		return nil, err
	}
	return compileFilter(expr, lk, snaplen)
}

// linkKind says where the network-layer protocol of a frame is found.
type linkKind int

const (
	linkEthertype    linkKind = iota // 16-bit ethertype at a fixed offset (Ethernet, SLL, SLL2)
	linkVersionByte                  // raw IP: version in the first nibble
	linkOnlyIPv4                     // always IPv4
	linkOnlyIPv6                     // always IPv6
	linkKernelCooked                 // AF_PACKET SOCK_DGRAM: skb->protocol via ancillary load, data at L3
)

// link describes the headers in front of the network layer.
type link struct {
	kind      linkKind
	etherOff  uint32 // offset of the ethertype (linkEthertype)
	l3        uint32 // offset of the network header
	vlanAllow bool   // in-band VLAN tags may follow the ethertype
}

func linkFor(lt LinkType) (link, error) {
	switch lt {
	case LinkTypeEthernet:
		return link{kind: linkEthertype, etherOff: 12, l3: 14, vlanAllow: true}, nil
	case LinkTypeLinuxSLL:
		// tcpdump refuses "vlan" here too: the kernel strips tags before
		// a cooked capture sees them.
		return link{kind: linkEthertype, etherOff: 14, l3: 16}, nil
	case LinkTypeLinuxSLL2:
		return link{kind: linkEthertype, etherOff: 0, l3: 20}, nil
	case LinkTypeRaw:
		return link{kind: linkVersionByte}, nil
	case LinkTypeIPv4:
		return link{kind: linkOnlyIPv4}, nil
	case LinkTypeIPv6:
		return link{kind: linkOnlyIPv6}, nil
	}
	return link{}, fmt.Errorf("%w: unsupported link type %d", ErrFilter, lt)
}

func compileFilter(expr string, lk link, snaplen int) ([]bpf.RawInstruction, error) {
	if snaplen <= 0 {
		snaplen = DefaultSnaplen
	}
	toks, err := tokenize(expr)
	if err != nil {
		return nil, err
	}
	var root fnode = fconst(true)
	if len(toks) > 0 {
		p := &parser{toks: toks, lk: lk}
		root, err = p.parseExpr()
		if err != nil {
			return nil, err
		}
		if p.pos < len(p.toks) {
			return nil, fmt.Errorf("%w: unexpected %q", ErrFilter, p.toks[p.pos])
		}
	}
	return generate(root, uint32(snaplen))
}

// Filter expression tree. Primitives are expanded into tests at parse time,
// because a "vlan" changes the offsets of everything parsed after it.
type fnode interface{}

type (
	fand   struct{ a, b fnode }
	forr   struct{ a, b fnode }
	fnot   struct{ a fnode }
	fconst bool
	// ftest loads a value into A (load may be several instructions) and
	// compares it with val.
	ftest struct {
		load []bpf.Instruction
		cond bpf.JumpTest
		val  uint32
	}
)

func and(a, b fnode) fnode {
	if c, ok := a.(fconst); ok {
		if !c {
			return c
		}
		return b
	}
	if c, ok := b.(fconst); ok && bool(c) {
		return a
	}
	return fand{a, b}
}

func or(a, b fnode) fnode {
	if c, ok := a.(fconst); ok {
		if c {
			return c
		}
		return b
	}
	if c, ok := b.(fconst); ok && !bool(c) {
		return a
	}
	return forr{a, b}
}

func not(a fnode) fnode {
	if c, ok := a.(fconst); ok {
		return !c
	}
	return fnot{a}
}

func eq(val uint32, load ...bpf.Instruction) fnode {
	return ftest{load: load, cond: bpf.JumpEqual, val: val}
}

func ldb(off uint32) bpf.Instruction { return bpf.LoadAbsolute{Off: off, Size: 1} }
func ldh(off uint32) bpf.Instruction { return bpf.LoadAbsolute{Off: off, Size: 2} }
func ldw(off uint32) bpf.Instruction { return bpf.LoadAbsolute{Off: off, Size: 4} }
func andk(v uint32) bpf.Instruction  { return bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: v} }

// Ethertypes and IP protocol numbers.
const (
	etherIPv4   = 0x0800
	etherARP    = 0x0806
	etherRARP   = 0x8035
	etherIPv6   = 0x86dd
	ipProtoTCP  = 6
	ipProtoUDP  = 17
	ipProtoSCT  = 132
	ipProtoFrag = 44 // IPv6 fragment header
)

// ipProtoNames are the protocol names "proto" takes, numbered as in
// /etc/protocols, where tcpdump looks them up: IPv4-in-IP (4) is
// "ipencap", and "ipip" is the older protocol 94.
var ipProtoNames = map[string]uint32{
	"icmp": 1, "ipencap": 4, "tcp": 6, "udp": 17, "ipv6": 41, "gre": 47, "ipip": 94, "sctp": 132,
}

var vlanEthertypes = []uint32{0x8100, 0x88a8, 0x9100}

type parser struct {
	toks  []string
	pos   int
	lk    link
	vlan  uint32 // number of "vlan" primitives parsed so far
	depth int    // nesting of terms, bounded by maxDepth
}

func (p *parser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *parser) next() string {
	t := p.peek()
	if p.pos < len(p.toks) {
		p.pos++
	}
	return t
}

func (p *parser) parseExpr() (fnode, error) {
	n, err := p.parseTerm()
	if err != nil {
		return nil, err
	}
	for {
		switch p.peek() {
		case "and", "&&":
			p.next()
			m, err := p.parseTerm()
			if err != nil {
				return nil, err
			}
			n = and(n, m)
		case "or", "||":
			p.next()
			m, err := p.parseTerm()
			if err != nil {
				return nil, err
			}
			n = or(n, m)
		default:
			return n, nil
		}
	}
}

// maxDepth bounds nesting of parentheses and negations.
const maxDepth = 100

func (p *parser) parseTerm() (fnode, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, fmt.Errorf("%w: expression nested too deeply", ErrFilter)
	}
	t := p.next()
	switch t {
	case "":
		return nil, fmt.Errorf("%w: unexpected end of expression", ErrFilter)
	case "not", "!":
		n, err := p.parseTerm()
		if err != nil {
			return nil, err
		}
		return not(n), nil
	case "(":
		n, err := p.parseExpr()
		if err != nil {
			return nil, err
		}
		if c := p.next(); c != ")" {
			if c == "" {
				return nil, fmt.Errorf("%w: missing \")\"", ErrFilter)
			}
			return nil, fmt.Errorf("%w: expected \")\", got %q", ErrFilter, c)
		}
		return n, nil
	case ")", "and", "&&", "or", "||":
		return nil, fmt.Errorf("%w: unexpected %q", ErrFilter, t)
	case "ip", "ip6":
		switch p.peek() {
		case "src", "dst", "host", "net":
			return p.parseAddr(t)
		case "proto":
			p.next()
			return p.parseProto(t)
		case "port", "portrange":
			return nil, fmt.Errorf("%w: %q cannot qualify %q", ErrFilter, t, p.peek())
		}
		if t == "ip" {
			return p.isIPv4(), nil
		}
		return p.isIPv6(), nil
	case "proto":
		return p.parseProto("")
	case "tcp", "udp", "sctp":
		proto := uint32(ipProtoTCP)
		switch t {
		case "udp":
			proto = ipProtoUDP
		case "sctp":
			proto = ipProtoSCT
		}
		switch p.peek() {
		case "src", "dst", "port", "portrange":
			return p.parsePort([]uint32{proto})
		case "host", "net":
			return nil, fmt.Errorf("%w: %q cannot qualify %q", ErrFilter, t, p.peek())
		}
		return p.isProto(proto, ""), nil
	case "src", "dst":
		switch p.peek() {
		case "port", "portrange":
			p.pos--
			return p.parsePort([]uint32{ipProtoTCP, ipProtoUDP, ipProtoSCT})
		case "host", "net":
			p.pos--
			return p.parseAddr("")
		}
		return nil, fmt.Errorf("%w: expected host, net, port or portrange after %q, got %q", ErrFilter, t, p.peek())
	case "port", "portrange":
		p.pos--
		return p.parsePort([]uint32{ipProtoTCP, ipProtoUDP, ipProtoSCT})
	case "host", "net":
		p.pos--
		return p.parseAddr("")
	case "vlan":
		return p.parseVLAN()
	}
	return nil, fmt.Errorf("%w: unsupported primitive %q", ErrFilter, t)
}

// isProto tests the IPv4 protocol or IPv6 next header (through a fragment
// header); family "ip" or "ip6" restricts it to one IP version.
func (p *parser) isProto(proto uint32, family string) fnode {
	l3 := p.l3()
	v4 := and(p.isIPv4(), eq(proto, ldb(l3+9)))
	v6 := and(p.isIPv6(), or(eq(proto, ldb(l3+6)), and(eq(ipProtoFrag, ldb(l3+6)), eq(proto, ldb(l3+40)))))
	switch family {
	case "ip":
		return v4
	case "ip6":
		return v6
	}
	return or(v4, v6)
}

// parseProto parses the PROTO of "[ip|ip6] proto PROTO".
func (p *parser) parseProto(family string) (fnode, error) {
	tok := strings.TrimPrefix(p.next(), "\\")
	proto, ok := ipProtoNames[tok]
	if !ok {
		n, err := strconv.ParseUint(tok, 10, 8)
		if err != nil {
			return nil, fmt.Errorf("%w: expected a protocol number 0-255 or name after \"proto\", got %q", ErrFilter, tok)
		}
		proto = uint32(n)
	}
	return p.isProto(proto, family), nil
}

// l3 is the current offset of the network header.
func (p *parser) l3() uint32 { return p.lk.l3 + 4*p.vlan }

func (p *parser) isEthertype(et uint32) fnode {
	switch p.lk.kind {
	case linkEthertype:
		return eq(et, ldh(p.lk.etherOff+4*p.vlan))
	case linkKernelCooked:
		return eq(et, bpf.LoadExtension{Num: bpf.ExtProto})
	case linkVersionByte:
		switch et {
		case etherIPv4:
			return eq(0x40, ldb(0), andk(0xf0))
		case etherIPv6:
			return eq(0x60, ldb(0), andk(0xf0))
		}
	case linkOnlyIPv4:
		return fconst(et == etherIPv4)
	case linkOnlyIPv6:
		return fconst(et == etherIPv6)
	}
	return fconst(false)
}

func (p *parser) isIPv4() fnode { return p.isEthertype(etherIPv4) }
func (p *parser) isIPv6() fnode { return p.isEthertype(etherIPv6) }

func (p *parser) parseVLAN() (fnode, error) {
	if !p.lk.vlanAllow {
		return nil, fmt.Errorf("%w: \"vlan\" is not supported on this link type", ErrFilter)
	}
	off := p.lk.etherOff + 4*p.vlan
	var n fnode = fconst(false)
	for _, et := range vlanEthertypes {
		n = or(n, eq(et, ldh(off)))
	}
	if v, err := strconv.ParseUint(p.peek(), 10, 16); err == nil {
		p.next()
		if v > 4095 {
			return nil, fmt.Errorf("%w: vlan id %d out of range", ErrFilter, v)
		}
		n = and(n, eq(uint32(v), ldh(off+2), andk(0x0fff)))
	}
	p.vlan++
	return n, nil
}

// direction reads an optional "src" or "dst".
func (p *parser) direction() string {
	if t := p.peek(); t == "src" || t == "dst" {
		p.next()
		return t
	}
	return ""
}

func pick(dir string, src, dst fnode) fnode {
	switch dir {
	case "src":
		return src
	case "dst":
		return dst
	}
	return or(src, dst)
}

func (p *parser) parsePort(protos []uint32) (fnode, error) {
	dir := p.direction()
	kw := p.next()
	arg := p.next()
	var lo, hi uint64
	var err error
	switch kw {
	case "port":
		lo, err = strconv.ParseUint(arg, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("%w: port %q: not a number 0-65535", ErrFilter, arg)
		}
		hi = lo
	case "portrange":
		a, b, ok := strings.Cut(arg, "-")
		lo, err = strconv.ParseUint(a, 10, 16)
		if err == nil {
			hi, err = strconv.ParseUint(b, 10, 16)
		}
		if !ok || err != nil {
			return nil, fmt.Errorf("%w: portrange %q: want A-B with numbers 0-65535", ErrFilter, arg)
		}
		if lo > hi {
			lo, hi = hi, lo
		}
	default:
		return nil, fmt.Errorf("%w: expected port or portrange, got %q", ErrFilter, kw)
	}
	l3 := p.l3()
	cmp := func(load ...bpf.Instruction) fnode {
		if lo == hi {
			return eq(uint32(lo), load...)
		}
		ge := ftest{load: load, cond: bpf.JumpGreaterOrEqual, val: uint32(lo)}
		gt := ftest{load: load, cond: bpf.JumpGreaterThan, val: uint32(hi)}
		return and(ge, not(gt))
	}
	msh := bpf.LoadMemShift{Off: l3}
	v4 := pick(dir,
		cmp(msh, bpf.LoadIndirect{Off: l3, Size: 2}),
		cmp(msh, bpf.LoadIndirect{Off: l3 + 2, Size: 2}))
	// A non-first fragment has no transport header: count it as a match.
	v4 = or(ftest{load: []bpf.Instruction{ldh(l3 + 6)}, cond: bpf.JumpBitsSet, val: 0x1fff}, v4)
	v6 := pick(dir, cmp(ldh(l3+40)), cmp(ldh(l3+42)))
	// Behind an IPv6 fragment header: ports of a first fragment at 48, and
	// a non-first fragment counts as a match.
	v6frag := or(ftest{load: []bpf.Instruction{ldh(l3 + 42)}, cond: bpf.JumpBitsSet, val: 0xfff8},
		pick(dir, cmp(ldh(l3+48)), cmp(ldh(l3+50))))
	var proto4, proto6, proto6frag fnode = fconst(false), fconst(false), fconst(false)
	for _, pr := range protos {
		proto4 = or(proto4, eq(pr, ldb(l3+9)))
		proto6 = or(proto6, eq(pr, ldb(l3+6)))
		proto6frag = or(proto6frag, eq(pr, ldb(l3+40)))
	}
	return or(
		and(p.isIPv4(), and(proto4, v4)),
		and(p.isIPv6(), or(
			and(proto6, v6),
			and(eq(ipProtoFrag, ldb(l3+6)), and(proto6frag, v6frag))))), nil
}

// parseAddr parses [src|dst] host ADDR or [src|dst] net ADDR/LEN; qual is
// "", "ip" or "ip6".
func (p *parser) parseAddr(qual string) (fnode, error) {
	dir := p.direction()
	kw := p.next()
	arg := p.next()
	var pfx netip.Prefix
	switch kw {
	case "host":
		a, err := netip.ParseAddr(arg)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%w: host %q: not an IP address", ErrFilter, arg)
		}
		a = a.Unmap()
		pfx = netip.PrefixFrom(a, a.BitLen())
	case "net":
		var err error
		pfx, err = netip.ParsePrefix(arg)
		if err != nil {
			return nil, fmt.Errorf("%w: net %q: want ADDR/LEN", ErrFilter, arg)
		}
		if pfx.Masked() != pfx {
			return nil, fmt.Errorf("%w: net %q: non-network bits set", ErrFilter, arg)
		}
	default:
		return nil, fmt.Errorf("%w: expected host or net, got %q", ErrFilter, kw)
	}
	is4 := pfx.Addr().Is4()
	if (qual == "ip" && !is4) || (qual == "ip6" && is4) {
		return nil, fmt.Errorf("%w: %s %q: address family does not match %q", ErrFilter, kw, arg, qual)
	}
	l3 := p.l3()
	b := pfx.Addr().AsSlice()
	bits := pfx.Bits()
	// match compares the address bytes at off with the prefix, one 32-bit
	// word at a time.
	match := func(off uint32) fnode {
		var n fnode = fconst(true)
		for i := 0; i < len(b)/4 && bits > i*32; i++ {
			w := uint32(b[4*i])<<24 | uint32(b[4*i+1])<<16 | uint32(b[4*i+2])<<8 | uint32(b[4*i+3])
			load := []bpf.Instruction{ldw(off + uint32(4*i))}
			if left := bits - i*32; left < 32 {
				mask := ^uint32(0) << (32 - left)
				load = append(load, andk(mask))
				w &= mask
			}
			n = and(n, eq(w, load...))
		}
		return n
	}
	if !is4 {
		return and(p.isIPv6(), pick(dir, match(l3+8), match(l3+24))), nil
	}
	n := and(p.isIPv4(), pick(dir, match(l3+12), match(l3+16)))
	if qual == "" {
		for _, et := range []uint32{etherARP, etherRARP} {
			n = or(n, and(p.isEthertype(et), pick(dir, match(l3+14), match(l3+24))))
		}
	}
	return n, nil
}

func tokenize(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')' || c == '!':
			toks = append(toks, s[i:i+1])
			i++
		case c == '&' || c == '|':
			if i+1 < len(s) && s[i+1] == c {
				toks = append(toks, s[i:i+2])
				i += 2
				continue
			}
			return nil, fmt.Errorf("%w: unsupported operator %q", ErrFilter, s[i:i+1])
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r()!&|", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks, nil
}

// Code generation: each node is emitted with a "true" and a "false" label;
// labels handed to a subtree are always placed after it, so every jump goes
// forward as classic BPF requires.

type label int

type genIns struct {
	ins    bpf.Instruction
	jt, jf label // for a conditional jump
	ja     label // for an unconditional jump (ins is nil)
}

const noLabel label = -1

type gen struct {
	code []genIns
	pos  []int // label → instruction index
}

func (g *gen) newLabel() label {
	g.pos = append(g.pos, -1)
	return label(len(g.pos) - 1)
}

func (g *gen) place(l label) { g.pos[l] = len(g.code) }

func (g *gen) emit(n fnode, t, f label) {
	switch n := n.(type) {
	case fconst:
		to := f
		if n {
			to = t
		}
		g.code = append(g.code, genIns{ja: to, jt: noLabel, jf: noLabel})
	case fand:
		l := g.newLabel()
		g.emit(n.a, l, f)
		g.place(l)
		g.emit(n.b, t, f)
	case forr:
		l := g.newLabel()
		g.emit(n.a, t, l)
		g.place(l)
		g.emit(n.b, t, f)
	case fnot:
		g.emit(n.a, f, t)
	case ftest:
		for _, in := range n.load {
			g.code = append(g.code, genIns{ins: in, jt: noLabel, jf: noLabel, ja: noLabel})
		}
		g.code = append(g.code, genIns{ins: bpf.JumpIf{Cond: n.cond, Val: n.val}, jt: t, jf: f, ja: noLabel})
	default:
		panic(fmt.Sprintf("capture: filter: unknown node %T", n))
	}
}

func generate(root fnode, snaplen uint32) ([]bpf.RawInstruction, error) {
	g := &gen{}
	accept, reject := g.newLabel(), g.newLabel()
	g.emit(root, accept, reject)
	g.place(accept)
	g.code = append(g.code, genIns{ins: bpf.RetConstant{Val: snaplen}, jt: noLabel, jf: noLabel, ja: noLabel})
	g.place(reject)
	g.code = append(g.code, genIns{ins: bpf.RetConstant{Val: 0}, jt: noLabel, jf: noLabel, ja: noLabel})
	if len(g.code) > maxFilterInstructions {
		return nil, fmt.Errorf("%w: expression too long (%d instructions, limit %d)", ErrFilter, len(g.code), maxFilterInstructions)
	}
	prog := make([]bpf.Instruction, len(g.code))
	for i, c := range g.code {
		switch {
		case c.ins == nil:
			prog[i] = bpf.Jump{Skip: uint32(g.pos[c.ja] - i - 1)}
		case c.jt != noLabel:
			st, sf := g.pos[c.jt]-i-1, g.pos[c.jf]-i-1
			if st > 255 || sf > 255 {
				return nil, fmt.Errorf("%w: expression too complex (jump of %d instructions)", ErrFilter, max(st, sf))
			}
			j := c.ins.(bpf.JumpIf)
			j.SkipTrue, j.SkipFalse = uint8(st), uint8(sf)
			prog[i] = j
		default:
			prog[i] = c.ins
		}
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFilter, err)
	}
	return raw, nil
}
