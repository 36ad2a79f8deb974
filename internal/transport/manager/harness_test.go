package manager

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
	"github.com/voipsensor/voipsensor/internal/command/calls"
	"github.com/voipsensor/voipsensor/internal/command/registers"
	"github.com/voipsensor/voipsensor/internal/command/system"
)

func TestMain(m *testing.M) {
	time.Local = time.UTC // calldate renders in local time
	os.Exit(m.Run())
}

var t0 = time.Date(2026, 4, 14, 10, 0, 1, 0, time.UTC) // unix 1776160801

type fakeCalls []calls.Call

func (f fakeCalls) ActiveCalls(bool) []calls.Call { return append([]calls.Call(nil), f...) }

// packetCalls is a call source that keeps the SIP packets of its calls
// (the sniffer's active_call_info = yes), by CallRef.
type packetCalls struct {
	fakeCalls
	packets map[string][]calls.SIPPacket
}

func (p packetCalls) SIPPackets(ref string) ([]calls.SIPPacket, bool) { return p.packets[ref], true }

// onePackets are oneCall's SIP packets: its INVITE, 100, 200 and ACK.
func onePackets() []calls.SIPPacket {
	a, b := netip.MustParseAddr("192.168.1.1"), netip.MustParseAddr("2001:db8::5")
	us := t0.UnixMicro()
	return []calls.SIPPacket{
		{Time: us + 1200, SrcIP: a, SrcPort: 5060, DstIP: b, DstPort: 5060, Line: "INVITE sip:+420555@b.example SIP/2.0",
			SIPLen: 912, PacketLen: 974, CSeqMethod: 1, CSeq: 101},
		{Time: us + 31870, SrcIP: b, SrcPort: 5060, DstIP: a, DstPort: 5060, Line: "SIP/2.0 100 Trying",
			SIPLen: 402, PacketLen: 464, CSeqMethod: 1, CSeq: 101},
		{Time: us + 4_000_015, SrcIP: b, SrcPort: 5060, DstIP: a, DstPort: 5060, Line: `SIP/2.0 200 "OK"`,
			SIPLen: 811, PacketLen: 873, CSeqMethod: 1, CSeq: 101},
		{Time: us + 4_020_377, SrcIP: a, SrcPort: 5060, DstIP: b, DstPort: 5060, Line: "ACK sip:+420555@[2001:db8::5]:5060 SIP/2.0",
			SIPLen: 380, PacketLen: 442, CSeqMethod: 10, CSeq: 101},
	}
}

type fakeRegs []registers.Registration

func (f fakeRegs) Registrations() []registers.Registration {
	return append([]registers.Registration(nil), f...)
}

type fakeStats system.SensorStats

func (f fakeStats) Snapshot() system.SensorStats { return system.SensorStats(f) }

type fakeLife struct{ terminated chan struct{} }

func (f *fakeLife) Reload(context.Context) error { return nil }
func (f *fakeLife) Terminate()                   { close(f.terminated) }

// oneCall is the single active call of the transcripts.
func oneCall() calls.Call {
	return calls.Call{
		CallRef: "7f3a1c0b2e00", CallID: "abc@host", Start: t0, Answer: t0.Add(4 * time.Second), LastPacket: t0.Add(20 * time.Second),
		Caller: "1001", Called: "+420555", CallerName: "Alice", CallerDomain: "a.example", CalledDomain: "b.example",
		CallerAgent: "UA-A", CalledAgent: "UA-B",
		SIPCallerIP: netip.MustParseAddr("192.168.1.1"), SIPCalledIP: netip.MustParseAddr("2001:db8::5"),
		SIPCallerPort: 5060, SIPCalledPort: 5060, LastSIPCode: 200,
		RTPSrc: netip.MustParseAddr("10.0.0.1"), RTPDst: netip.MustParseAddr("10.0.0.2"),
		CallerCodec: 8, CalledCodec: 8, VLAN: -1,
		A: calls.Quality{Present: true, Received: 1000, Lost: 5, LossPct: 0.5, LossLast10Sec: 0.25, Jitter: 1.5, JitterAvg: 1.25, JitterMax: 3,
			MOSF1: 4.4, MOSF2: 4.3, MOSAD: 4.2, MOSF1Avg: 4.41, MOSF2Avg: 4.31, MOSADAvg: 4.21, MOSF1Min: 4.0, MOSF2Min: 3.9, MOSADMin: 3.8},
		Streams: []calls.Stream{{SrcIP: netip.MustParseAddr("10.0.0.1"), SrcPort: 7036, DstIP: netip.MustParseAddr("10.0.0.2"), DstPort: 6036,
			Start: t0.UnixMicro() + 490199, Last: t0.Add(20*time.Second).UnixMicro() + 239629, SSRC: 3739283087, Codec: 8,
			Received: 1000, Lost: 5, JitterAvg: 0.1243, JitterMax: 0.220330}},
	}
}

type testEnv struct {
	srv  *Server
	addr string // TCP
	sock string // unix
	life *fakeLife
	stop func() // shuts the server down and waits for Run (idempotent)
}

// newEnv starts a Server on 127.0.0.1:0 and a unix socket with every
// command group registered over fakes.
func newEnv(t testing.TB, cfg Config, cs []calls.Call) *testEnv {
	t.Helper()
	return newEnvSource(t, cfg, fakeCalls(cs))
}

// newEnvSource is newEnv with the calls of src.
func newEnvSource(t testing.TB, cfg Config, src calls.Source) *testEnv {
	t.Helper()
	reg := command.NewRegistry()
	env := &testEnv{life: &fakeLife{terminated: make(chan struct{})}}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Socket == "" {
		cfg.Socket = filepath.Join(t.TempDir(), "m.sock")
	}
	srv, err := New(reg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return t0.Add(time.Minute) }
	calls.Register(reg, calls.Deps{Source: src, Now: now})
	registers.Register(reg, registers.Deps{Source: fakeRegs{{
		ID: 42, CallDate: t0, SIPCallerIP: netip.MustParseAddr("10.1.2.3"), SIPCalledIP: netip.MustParseAddr("10.1.2.4"),
		SIPCallerPort: 5062, SIPCalledPort: 5060, FromNum: "2001", FromDomain: "pbx", ToNum: "2001", ToDomain: "pbx",
		ContactNum: "2001", ContactDomain: "10.1.2.3", DigestUsername: "2001", DigestRealm: "pbx", Expires: 3600,
		ExpiresAt: t0.Add(time.Hour), State: registers.StateOK, UA: "phone/1.0", RRDAvg: 12, VLAN: -1,
	}}})
	system.Register(reg, system.Deps{
		Version: "1.2.3", Build: "b7", Now: now, Proc: "testdata/proc", Lifecycle: env.life, AES: srv, Sockets: srv,
		Heap: func() system.HeapMem { return system.HeapMem{Size: 40 << 20, Allocated: 25 << 20, Free: 8 << 20} },
		Stats: fakeStats{Start: t0, ActiveCalls: 1, CallsInMemory: 2, Registrations: 1, PacketsPerSec: 100, RTPPerSec: 90, SIPPerSec: 10,
			CDRLastWrite: t0, MbitPerSec: 1.5, CaptureCPU: 2},
	})
	env.srv = srv
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	for _, a := range srv.Addrs() {
		switch a.Network() {
		case "tcp":
			env.addr = a.String()
		case "unix":
			env.sock = a.String()
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var once sync.Once
	env.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run = %v", err)
			}
		})
	}
	t.Cleanup(env.stop)
	return env
}

// exchange writes req on a fresh connection, half-closes and reads the
// whole reply.
func exchange(t testing.TB, network, addr string, req []byte) []byte {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	c.(interface{ CloseWrite() error }).CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read reply to %q: %v", req, err)
	}
	return b
}

var _ = strconv.Itoa
