package capture

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/net/bpf"

	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// testFrame is one record of a capture file read with pcapgo.
type testFrame struct {
	ts   time.Time
	data []byte
}

func readCapture(t testing.TB, path string) ([]testFrame, LinkType) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var frames []testFrame
	var lt LinkType
	if strings.HasSuffix(path, ".pcapng") {
		r, err := pcapgo.NewNgReader(bytes.NewReader(b), pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatal(err)
		}
		lt = LinkType(r.LinkType())
		for {
			d, ci, err := r.ReadPacketData()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			frames = append(frames, testFrame{ci.Timestamp, d})
		}
		return frames, lt
	}
	r, err := pcapgo.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	lt = LinkType(r.LinkType())
	for {
		d, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, testFrame{ci.Timestamp, d})
	}
	return frames, lt
}

func mustVM(t testing.TB, raw []bpf.RawInstruction) *bpf.VM {
	t.Helper()
	prog, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("program does not disassemble: %v", raw)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatalf("NewVM: %v", err)
	}
	return vm
}

// matching returns the indices of frames the program accepts.
func matching(t testing.TB, vm *bpf.VM, frames []testFrame) []int {
	t.Helper()
	var idx []int
	for i, f := range frames {
		n, err := vm.Run(f.data)
		if err != nil {
			t.Fatalf("frame %d: Run: %v", i, err)
		}
		if n > 0 {
			idx = append(idx, i)
		}
	}
	return idx
}

// tcpdumpMatches filters path with tcpdump into a temporary file and maps
// the written records back to frame indices (records come out in order).
func tcpdumpMatches(t *testing.T, path, expr string, frames []testFrame) []int {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.pcap")
	args := []string{"-r", path, "-w", out}
	if expr != "" {
		args = append(args, expr)
	}
	cmd := exec.Command("tcpdump", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tcpdump %q: %v: %s", expr, err, stderr.String())
	}
	got, _ := readCapture(t, out)
	var idx []int
	j := 0
	for _, g := range got {
		for j < len(frames) && !(frames[j].ts.Equal(g.ts) && bytes.Equal(frames[j].data, g.data)) {
			j++
		}
		if j == len(frames) {
			t.Fatalf("tcpdump %q wrote a record not found in order in %s", expr, path)
		}
		idx = append(idx, j)
		j++
	}
	return idx
}

const v6FragPort7000 = "port 7000 or ((udp or tcp or sctp) and ip[6:2] & 0x1fff != 0) or (ip6 and ip6[6] == 44 and (ip6[40] == 17 or ip6[40] == 6 or ip6[40] == 132) and (ip6[42:2] & 0xfff8 != 0 or ip6[48:2] == 7000 or ip6[50:2] == 7000))"

// filterCases are compared with tcpdump on every capture. ref, when set, is
// the tcpdump expression with the same meaning (used where we deliberately
// differ, i.e. non-first IPv4 fragments).
var filterCases = []struct {
	expr string
	ref  string
}{
	{expr: ""},
	{expr: "udp"},
	{expr: "tcp"},
	{expr: "ip"},
	{expr: "ip6"},
	{expr: "port 5060"},
	{expr: "udp port 5060"},
	{expr: "tcp port 5060"},
	{expr: "src port 5060"},
	{expr: "dst port 5060"},
	{expr: "udp dst port 6000"},
	{expr: "tcp src port 443"},
	{expr: "port 2905"},
	{expr: "portrange 6000-6010"},
	{expr: "udp portrange 5060-5070"},
	{expr: "dst portrange 5061-5080"},
	{expr: "host 127.0.0.1"},
	{expr: "src host 192.0.2.2"},
	{expr: "dst host 127.0.0.1"},
	{expr: "host 10.0.0.1"},
	{expr: "host 10.0.0.5"},
	{expr: "dst host 10.0.0.1"},
	{expr: "ip host 10.0.0.1"},
	{expr: "ip src host 10.0.0.1"},
	{expr: "net 127.0.0.0/8"},
	{expr: "net 192.0.2.0/24"},
	{expr: "src net 10.0.0.0/30"},
	{expr: "ip dst net 10.0.0.0/8"},
	{expr: "net 10.0.0.0/29"},
	{expr: "host 2001:db8::1"},
	{expr: "ip6 src host 2001:db8::1"},
	{expr: "dst host 2001:db8:1::5"},
	{expr: "net 2001:db8::/32"},
	{expr: "net 2001:db8:1::/48"},
	{expr: "ip6 dst net fe80::/10"},
	{expr: "src net fe80::/10"},
	{expr: "vlan"},
	{expr: "vlan 100"},
	{expr: "vlan 200"},
	{expr: "vlan and udp port 5060"},
	{expr: "vlan 100 and host 10.0.0.9"},
	{expr: "vlan and ip6 and udp"},
	{expr: "vlan and vlan 200 and udp"},
	{expr: "vlan 300 and vlan and dst port 5060"},
	{expr: "udp port 5060 or (vlan and udp port 5060)"},
	{expr: "not udp"},
	{expr: "! port 5060"},
	{expr: "not ip and not ip6"},
	{expr: "udp and not port 6000"},
	{expr: "udp && !(port 6000 || port 7000)"},
	{expr: "port 5060 or port 5061 and udp"},
	{expr: "(port 5060 or port 5061) and not host 192.0.2.2"},
	{expr: "tcp && dst port 80 || ip6"},
	{expr: "not (src host 127.0.0.1 and dst port 7000)"},
	{expr: "ip and (tcp or udp) and not src net 192.0.2.0/24"},
	{expr: "portrange 5060-5061 or portrange 6000-6001"},
	// Tunnels and other IP protocols (test/testdata/encap has GRE, ERSPAN,
	// IPIP, IPv4-in-IPv6, VXLAN... captures).
	{expr: "sctp"},
	{expr: "sctp port 5060"},
	{expr: "sctp or proto gre"},
	{expr: "proto gre"},
	{expr: "proto 47"},
	{expr: "ip proto 47"},
	{expr: "ip proto gre or ip proto ipencap"},
	{expr: "ip proto 4"},
	{expr: "ip6 proto 4"},
	{expr: "proto ipencap"},
	{expr: "proto ipip"},
	{expr: "proto 41"},
	{expr: `proto \udp`},
	{expr: "ip proto 17 and not udp port 4789"},
	{expr: "not proto gre and udp"},
	// Fragment semantics: a port test is true for a non-first fragment and
	// looks through an IPv6 fragment header; ref spells that in tcpdump.
	{expr: "udp port 5060", ref: "udp port 5060 or (udp and ip[6:2] & 0x1fff != 0) or (ip6 and ip6[6] == 44 and ip6[40] == 17 and (ip6[42:2] & 0xfff8 != 0 or ip6[48:2] == 5060 or ip6[50:2] == 5060))"},
	{expr: "port 7000", ref: v6FragPort7000},
	{expr: "not port 7000", ref: "not (" + v6FragPort7000 + ")"},
	{expr: "host 10.0.0.2 and udp"},
	{expr: "udp and (dst port 7000 or src portrange 5000-5060)", ref: "udp and (dst port 7000 or src portrange 5000-5060 or ip[6:2] & 0x1fff != 0 or (ip6[6] == 44 and (ip6[42:2] & 0xfff8 != 0 or ip6[50:2] == 7000 or (ip6[48:2] >= 5000 and ip6[48:2] <= 5060))))"},
}

func filterCaptures(t *testing.T) []string {
	t.Helper()
	shared, _ := filepath.Glob(filepath.Join(sharedtest.Pcaps(t), "*.pcap*"))
	local, err := filepath.Glob(filepath.Join("testdata", "filter", "*.pcap"))
	if err != nil || len(local) == 0 {
		t.Fatalf("no fixtures in testdata/filter: %v", err)
	}
	// One generated capture per encapsulation (voipsensor gen -encap).
	encap, _ := filepath.Glob(filepath.Join("..", "..", "test", "testdata", "encap", "*.pcap"))
	if len(encap) == 0 {
		t.Fatal("no captures in test/testdata/encap")
	}
	// SIP over SCTP, from the real-world captures (Linux SLL).
	if sctp := filepath.Join(sharedtest.Pcaps(t), "foreign", "sipcapture_heplify_sip_sctp.pcap"); fileExists(sctp) {
		shared = append(shared, sctp)
	}
	return append(append(local, encap...), shared...)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestCompileFilterMatchesTcpdump(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		sharedtest.Missing(t, "tcpdump not installed")
	}
	for _, path := range filterCaptures(t) {
		frames, lt := readCapture(t, path)
		t.Run(filepath.Base(path), func(t *testing.T) {
			for _, tc := range filterCases {
				ref := tc.expr
				if tc.ref != "" {
					ref = tc.ref
				} else if strings.Contains(path, "fragments") && strings.Contains(tc.expr, "port") {
					// Port tests deliberately differ from tcpdump on
					// non-first fragments: covered by the ref cases and
					// TestCompileFilterFragments.
					continue
				}
				raw, err := CompileFilter(tc.expr, lt, 0)
				if err != nil {
					if lt != LinkTypeEthernet && strings.Contains(tc.expr, "vlan") && errors.Is(err, ErrFilter) {
						continue // vlan is refused on raw IP
					}
					t.Errorf("CompileFilter(%q, %d): %v", tc.expr, lt, err)
					continue
				}
				got := matching(t, mustVM(t, raw), frames)
				want := tcpdumpMatches(t, path, ref, frames)
				if !equalInts(got, want) {
					t.Errorf("%q: matched frames %v, tcpdump %q matched %v", tc.expr, got, ref, want)
				}
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestCompileFilterFragments checks the fragment rule against a hand-made
// expectation: fragments.pcap holds
//
//	[0..2]   IPv4 UDP 5060→5060 in three fragments
//	[3..5]   IPv4 UDP 7000→7000 in three fragments
//	[6]      IPv4 TCP 40000→5060, unfragmented
//	[7..9]   IPv6 UDP 5060→5062 in three fragments (fragment header)
//	[10..11] IPv6 UDP 6000→6002 in two fragments
//
// Non-first fragments are 1, 2, 4, 5, 8, 9, 11.
func TestCompileFilterFragments(t *testing.T) {
	frames, lt := readCapture(t, filepath.Join("testdata", "filter", "fragments.pcap"))
	tests := []struct {
		expr string
		want []int
	}{
		{"udp port 5060", []int{0, 1, 2, 4, 5, 7, 8, 9, 11}},
		{"udp port 7000", []int{1, 2, 3, 4, 5, 8, 9, 11}},
		{"port 5060", []int{0, 1, 2, 4, 5, 6, 7, 8, 9, 11}},
		{"tcp port 5060", []int{6}}, // the fragments are UDP: the protocol test still applies
		{"not udp port 7000", []int{0, 6, 7, 10}},
		{"udp", []int{0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11}},
		{"dst port 5062", []int{1, 2, 4, 5, 7, 8, 9, 11}},
		{"src port 6000", []int{1, 2, 4, 5, 8, 9, 10, 11}},
		{"ip6 and dst portrange 5000-5100", []int{7, 8, 9, 11}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			raw, err := CompileFilter(tt.expr, lt, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := matching(t, mustVM(t, raw), frames); !equalInts(got, tt.want) {
				t.Errorf("CompileFilter(%q) matched %v, want %v", tt.expr, got, tt.want)
			}
		})
	}
}

func TestCompileFilterErrors(t *testing.T) {
	tests := []struct {
		expr string
		lt   LinkType
		want string
	}{
		{"greater 100", LinkTypeEthernet, `capture: filter: unsupported primitive "greater"`},
		{"udp and less 10", LinkTypeEthernet, `capture: filter: unsupported primitive "less"`},
		{"ether host 1:2:3:4:5:6", LinkTypeEthernet, `capture: filter: unsupported primitive "ether"`},
		{"icmp", LinkTypeEthernet, `capture: filter: unsupported primitive "icmp"`},
		{"proto 300", LinkTypeEthernet, `capture: filter: expected a protocol number 0-255 or name after "proto", got "300"`},
		{"ip proto esp", LinkTypeEthernet, `capture: filter: expected a protocol number 0-255 or name after "proto", got "esp"`},
		{"sctp host 10.0.0.1", LinkTypeEthernet, `capture: filter: "sctp" cannot qualify "host"`},
		{"10.0.0.1", LinkTypeEthernet, `capture: filter: unsupported primitive "10.0.0.1"`},
		{"port sip", LinkTypeEthernet, `capture: filter: port "sip": not a number 0-65535`},
		{"port 70000", LinkTypeEthernet, `capture: filter: port "70000": not a number 0-65535`},
		{"port", LinkTypeEthernet, `capture: filter: port "": not a number 0-65535`},
		{"portrange 5060", LinkTypeEthernet, `capture: filter: portrange "5060": want A-B with numbers 0-65535`},
		{"host example.com", LinkTypeEthernet, `capture: filter: host "example.com": not an IP address`},
		{"net 10.0.0.1/8", LinkTypeEthernet, `capture: filter: net "10.0.0.1/8": non-network bits set`},
		{"net 10.0.0.0", LinkTypeEthernet, `capture: filter: net "10.0.0.0": want ADDR/LEN`},
		{"ip6 host 10.0.0.1", LinkTypeEthernet, `capture: filter: host "10.0.0.1": address family does not match "ip6"`},
		{"ip port 53", LinkTypeEthernet, `capture: filter: "ip" cannot qualify "port"`},
		{"udp host 10.0.0.1", LinkTypeEthernet, `capture: filter: "udp" cannot qualify "host"`},
		{"src 10.0.0.1", LinkTypeEthernet, `capture: filter: expected host, net, port or portrange after "src", got "10.0.0.1"`},
		{"port 5060 or 5061", LinkTypeEthernet, `capture: filter: unsupported primitive "5061"`},
		{"(udp", LinkTypeEthernet, `capture: filter: missing ")"`},
		{"udp)", LinkTypeEthernet, `capture: filter: unexpected ")"`},
		{"udp tcp", LinkTypeEthernet, `capture: filter: unexpected "tcp"`},
		{"udp and", LinkTypeEthernet, `capture: filter: unexpected end of expression`},
		{"udp & tcp", LinkTypeEthernet, `capture: filter: unsupported operator "&"`},
		{"vlan 5000", LinkTypeEthernet, `capture: filter: vlan id 5000 out of range`},
		{"vlan", LinkTypeRaw, `capture: filter: "vlan" is not supported on this link type`},
		{"udp", LinkTypeNull, `capture: filter: unsupported link type 0`},
		{strings.Repeat("(", 200) + "udp" + strings.Repeat(")", 200), LinkTypeEthernet, `capture: filter: expression nested too deeply`},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			_, err := CompileFilter(tt.expr, tt.lt, 0)
			if err == nil {
				t.Fatalf("CompileFilter(%q) = nil error, want %q", tt.expr, tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("CompileFilter(%q) error = %q, want %q", tt.expr, got, tt.want)
			}
			if !errors.Is(err, ErrFilter) {
				t.Errorf("error %v does not wrap ErrFilter", err)
			}
		})
	}
}

func TestCompileFilterTooComplex(t *testing.T) {
	expr := "host 2001:db8::1" + strings.Repeat(" or host 2001:db8::1", 60)
	_, err := CompileFilter(expr, LinkTypeEthernet, 0)
	if !errors.Is(err, ErrFilter) {
		t.Fatalf("CompileFilter(long) error = %v, want ErrFilter", err)
	}
}

func TestCompileFilterSnaplen(t *testing.T) {
	frames, lt := readCapture(t, filepath.Join("testdata", "filter", "mixed_ethernet.pcap"))
	for _, tt := range []struct{ snaplen, want int }{{0, DefaultSnaplen}, {20, 20}} {
		raw, err := CompileFilter("udp", lt, tt.snaplen)
		if err != nil {
			t.Fatal(err)
		}
		got, err := mustVM(t, raw).Run(frames[0].data)
		if err != nil || got != tt.want {
			t.Errorf("snaplen %d: Run = %d, %v; want %d", tt.snaplen, got, err, tt.want)
		}
	}
}

// TestCompileFilterKernelCooked checks the AF_PACKET cooked variant (loads
// skb->protocol with an ancillary load, network header at offset 0). The
// x/net VM cannot run ancillary loads, so the test replaces it with the
// protocol constant of each frame before running.
func TestCompileFilterKernelCooked(t *testing.T) {
	frames, _ := readCapture(t, filepath.Join("testdata", "filter", "mixed_raw.pcap"))
	sllFrames, _ := readCapture(t, filepath.Join("testdata", "filter", "mixed_sll.pcap"))
	for _, expr := range []string{"udp port 5060", "ip6 and tcp", "host 10.0.0.1", "net 2001:db8::/32 and not port 6000"} {
		raw, err := compileFilter(expr, link{kind: linkKernelCooked}, 0)
		if err != nil {
			t.Fatal(err)
		}
		prog, _ := bpf.Disassemble(raw)
		ref, err := CompileFilter(expr, LinkTypeLinuxSLL, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := matching(t, mustVM(t, ref), sllFrames)
		var got []int
		for i, f := range frames {
			proto := uint32(0x0800)
			if f.data[0]>>4 == 6 {
				proto = 0x86dd
			}
			p := append([]bpf.Instruction(nil), prog...)
			for j, in := range p {
				if le, ok := in.(bpf.LoadExtension); ok && le.Num == bpf.ExtProto {
					p[j] = bpf.LoadConstant{Dst: bpf.RegA, Val: proto}
				}
			}
			vm, err := bpf.NewVM(p)
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := vm.Run(f.data); n > 0 {
				got = append(got, i)
			}
		}
		if !equalInts(got, want) {
			t.Errorf("%q: cooked matched %v, SLL matched %v", expr, got, want)
		}
	}
}

func FuzzCompileFilter(f *testing.F) {
	for _, tc := range filterCases {
		f.Add(tc.expr)
	}
	frames, _ := readCapture(f, filepath.Join("testdata", "filter", "mixed_ethernet.pcap"))
	lts := []LinkType{LinkTypeEthernet, LinkTypeLinuxSLL, LinkTypeLinuxSLL2, LinkTypeRaw, LinkTypeIPv4, LinkTypeIPv6}
	f.Fuzz(func(t *testing.T, expr string) {
		for _, lt := range lts {
			raw, err := CompileFilter(expr, lt, 0)
			if err != nil {
				if !errors.Is(err, ErrFilter) {
					t.Fatalf("CompileFilter(%q) error %v does not wrap ErrFilter", expr, err)
				}
				continue
			}
			vm := mustVM(t, raw)
			for _, fr := range frames {
				if _, err := vm.Run(fr.data); err != nil {
					t.Fatalf("Run: %v", err)
				}
			}
		}
	})
}

func BenchmarkFilterVM(b *testing.B) {
	frames, lt := readCapture(b, filepath.Join("testdata", "filter", "mixed_ethernet.pcap"))
	raw, err := CompileFilter("udp port 5060 or (vlan and udp port 5060)", lt, 0)
	if err != nil {
		b.Fatal(err)
	}
	vm := mustVM(b, raw)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		vm.Run(frames[i%len(frames)].data)
	}
}
