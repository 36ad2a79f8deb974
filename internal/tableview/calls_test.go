package tableview

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/command"
	"github.com/voipsensor/voipsensor/internal/command/calls"
	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/transport/manager"
)

var benchT0 = time.Date(2026, 4, 14, 10, 0, 0, 0, time.UTC)

func benchSIP(first, callID, toTag, method, extra, body string) []byte {
	to := "To: <sip:2002@example.com>"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	s := fmt.Sprintf("%s\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-%s\r\n"+
		"From: \"Alice A\" <sip:1001@example.com>;tag=a1\r\n%s\r\nCall-ID: %s\r\nCSeq: 1 %s\r\n%s",
		first, callID, to, callID, method, extra)
	if body == "" {
		return []byte(s + "Content-Length: 0\r\n\r\n")
	}
	return []byte(fmt.Sprintf("%sContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", s, len(body), body))
}

func benchSDP(ap netip.AddrPort) string {
	return fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
		ap.Addr(), ap.Addr(), ap.Port())
}

func benchRTP(ssrc uint32) []byte {
	p := make([]byte, 12+160)
	p[0], p[1] = 0x80, 0
	binary.BigEndian.PutUint16(p[2:], 1)
	binary.BigEndian.PutUint32(p[4:], 160)
	binary.BigEndian.PutUint32(p[8:], ssrc)
	return p
}

// loadTable feeds n answered calls, each with one RTP stream per
// direction, into a real call table (INVITE, 200 OK with SDP, RTP both
// ways), as the packet path would.
func loadTable(tb testing.TB, n int) *calltable.Table {
	tb.Helper()
	tab := calltable.New(calltable.Config{}, nil)
	for i := 0; i < n; i++ {
		feedCall(tab, i, benchT0.Add(time.Duration(i)*time.Microsecond))
	}
	if got := tab.Stats().Calls; got != n {
		tb.Fatalf("table holds %d calls, want %d", got, n)
	}
	return tab
}

// loadChurnedTable is loadTable for a table that has run for a while: its
// n calls were created after 2n earlier ones, half of which had ended, so
// they sit in memory the allocator freed at random places, not in creation
// order. The remaining earlier calls end before it returns.
func loadChurnedTable(tb testing.TB, n int) *calltable.Table {
	tb.Helper()
	tab := calltable.New(calltable.Config{}, nil)
	for i := 0; i < 2*n; i++ {
		feedCall(tab, i, benchT0.Add(time.Duration(i)*time.Microsecond))
	}
	perm := rand.New(rand.NewPCG(1, 2)).Perm(2 * n)
	at := benchT0.Add(time.Second)
	for _, i := range perm[:n] {
		endCall(tab, i, at)
	}
	tab.Expire(at.Add(time.Minute)) // past the linger: the ended calls leave
	runtime.GC()
	for i := 2 * n; i < 3*n; i++ {
		feedCall(tab, i, at.Add(time.Minute+time.Duration(i)*time.Microsecond))
	}
	at = at.Add(2 * time.Minute)
	for _, i := range perm[n:] {
		endCall(tab, i, at)
	}
	tab.Expire(at.Add(time.Minute))
	if got := tab.Stats().Calls; got != n {
		tb.Fatalf("table holds %d calls, want %d", got, n)
	}
	return tab
}

// benchAddrs are the SIP and media addresses of loadTable's call i, unique
// for i < 2^22.
func benchAddrs(i int) (sa, sb, ma, mb netip.AddrPort) {
	a := netip.AddrFrom4([4]byte{10, byte(1 + i>>16), byte(i >> 8), byte(i)})
	b := netip.AddrFrom4([4]byte{11, byte(2 + i>>16), byte(i >> 8), byte(i)})
	return netip.AddrPortFrom(a, 5060), netip.AddrPortFrom(b, 5060),
		netip.AddrPortFrom(a, uint16(10000+i%20000*2)), netip.AddrPortFrom(b, uint16(40000+i%10000*2))
}

func benchCallID(i int) string { return fmt.Sprintf("%08x-%d@bench.example", i*2654435761, i) }

// feedCall feeds call i: INVITE, 200 OK with SDP, one RTP packet each way.
func feedCall(tab *calltable.Table, i int, at time.Time) {
	sa, sb, ma, mb := benchAddrs(i)
	id := benchCallID(i)
	for _, d := range []struct {
		src, dst netip.AddrPort
		p        []byte
	}{
		{sa, sb, benchSIP("INVITE sip:2002@example.com SIP/2.0", id, "", "INVITE", "User-Agent: bench-phone/1.0\r\n", benchSDP(ma))},
		{sb, sa, benchSIP("SIP/2.0 200 OK", id, "b1", "INVITE", "Server: bench-pbx/2.0\r\n", benchSDP(mb))},
		{ma, mb, benchRTP(uint32(2 * i))},
		{mb, ma, benchRTP(uint32(2*i + 1))},
	} {
		dg := decode.Datagram{Flow: decode.Flow{Src: d.src, Dst: d.dst, Proto: decode.ProtoUDP}, Time: at, Payload: d.p}
		tab.HandleDatagram(&dg)
	}
}

// endCall feeds the caller's BYE of call i.
func endCall(tab *calltable.Table, i int, at time.Time) {
	sa, sb, _, _ := benchAddrs(i)
	dg := decode.Datagram{Flow: decode.Flow{Src: sa, Dst: sb, Proto: decode.ProtoUDP}, Time: at,
		Payload: benchSIP("BYE sip:2002@example.com SIP/2.0", benchCallID(i), "b1", "BYE", "", "")}
	tab.HandleDatagram(&dg)
}

// TestActiveCalls checks the adapter on a real table: every answered call
// appears once, with the caller/called, SIP addresses and both RTP
// directions the packets carried.
func TestActiveCalls(t *testing.T) {
	tab := loadTable(t, 50)
	got := Source{t: tab, idSensor: 3}.ActiveCalls(true)
	if len(got) != 50 {
		t.Fatalf("ActiveCalls returned %d calls, want 50", len(got))
	}
	seen := map[string]bool{}
	for _, c := range got {
		seen[c.CallID] = true
		if c.Caller != "1001" || c.Called != "2002" || c.SensorID != 3 || c.LastSIPCode != 200 {
			t.Errorf("call %s: caller %q called %q sensor %d code %d", c.CallID, c.Caller, c.Called, c.SensorID, c.LastSIPCode)
		}
		if !c.A.Present || !c.B.Present || c.A.Received != 1 || c.B.Received != 1 || c.CallerCodec != 0 || c.CalledCodec != 0 {
			t.Errorf("call %s: quality A %+v B %+v codecs %d/%d", c.CallID, c.A, c.B, c.CallerCodec, c.CalledCodec)
		}
		if c.SIPCallerIP.As4()[1] != 1 || c.SIPCalledIP.As4()[1] != 2 || c.CallerAgent != "bench-phone/1.0" || c.CalledAgent != "bench-pbx/2.0" {
			t.Errorf("call %s: %v → %v agents %q %q", c.CallID, c.SIPCallerIP, c.SIPCalledIP, c.CallerAgent, c.CalledAgent)
		}
		if len(c.Streams) != 2 || c.CallRef[:2] != "0x" {
			t.Errorf("call %s: %d streams, ref %q", c.CallID, len(c.Streams), c.CallRef)
		}
		// The sniffer's figures of a stream in its first 10 s: MOS 4.5 and
		// its minimum too, no average yet; stream times in µs; no tunnel.
		if q := c.A; q.MOSF1 != 4.5 || q.MOSAD != 4.5 || q.MOSF1Avg != 0 || q.MOSF2Min != 4.5 || q.Jitter != 0 || q.LossLast10Sec != 0 {
			t.Errorf("call %s: quality A %+v, want the sniffer's before its first interval", c.CallID, q)
		}
		if s := c.Streams[0]; s.Start != c.Start.UnixMicro() || s.Last != s.Start {
			t.Errorf("call %s: stream from %d to %d µs, want the call's start %d", c.CallID, s.Start, s.Last, c.Start.UnixMicro())
		}
		if c.CallerEncap.IsValid() || c.CalledEncap.IsValid() || len(c.SIPProxies) != 0 {
			t.Errorf("call %s: encaps %v %v proxies %v, want none", c.CallID, c.CallerEncap, c.CalledEncap, c.SIPProxies)
		}
	}
	if len(seen) != 50 {
		t.Errorf("%d distinct Call-IDs, want 50", len(seen))
	}
	for _, c := range (Source{t: tab, idSensor: 3}).ActiveCalls(false) {
		if c.Streams != nil || !c.A.Present || !c.B.Present {
			t.Errorf("call %s without streams: %d streams, quality present %v/%v", c.CallID, len(c.Streams), c.A.Present, c.B.Present)
		}
	}
}

// TestActiveCallsParallel: with several goroutines converting each batch
// and calls that are no longer in progress (BYE seen, still lingering)
// scattered through the table, the rows are exactly the calls in
// progress, each once, in creation order, each with its own numbers and
// streams.
func TestActiveCallsParallel(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	const n = 5000
	tab := loadTable(t, n)
	var refs []uint64
	ended := map[string]bool{}
	tab.EachCall(nil, func(c calltable.CallView) { refs = append(refs, c.Ref()) })
	for i := 0; i < n; i += 7 {
		endCall(tab, i, benchT0.Add(time.Second))
		ended[benchCallID(i)] = true
	}
	src := Source{t: tab, pool: new(rowPool)}
	for round := range 2 { // the second round reuses the pooled buffer
		rows := src.ActiveCalls(true)
		if len(rows) != n-len(ended) {
			t.Fatalf("round %d: %d rows, want %d", round, len(rows), n-len(ended))
		}
		j := 0
		for i := range rows {
			c := &rows[i]
			for ended[benchCallID(int(refs[j]-1))] {
				j++
			}
			k := int(refs[j] - 1) // loadTable's i of this call
			wantID := benchCallID(k)
			if c.CallID != wantID || c.CallRef != CallRef(refs[j]) {
				t.Fatalf("round %d: row %d is %s (%s), want %s (%s)", round, i, c.CallID, c.CallRef, wantID, CallRef(refs[j]))
			}
			if len(c.Streams) != 2 || c.Streams[0].SSRC != uint32(2*k) || c.Streams[1].SSRC != uint32(2*k+1) ||
				c.SIPCallerIP != netip.AddrFrom4([4]byte{10, 1, byte(k >> 8), byte(k)}) {
				t.Fatalf("round %d: row %d (%s): streams %+v, caller %v", round, i, c.CallID, c.Streams, c.SIPCallerIP)
			}
			j++
		}
		src.Recycle(rows)
	}
}

// benchTables are the two 100,000-call tables the listcalls benchmarks
// run on: one loaded in a single pass (calls lie in memory in creation
// order) and one after churn (calls scattered over memory freed by
// earlier calls, as in a sensor that has run for a while).
var benchTables = []struct {
	name string
	load func(testing.TB, int) *calltable.Table
}{{"Ordered", loadTable}, {"Churned", loadChurnedTable}}

// BenchmarkActiveCalls100k measures the sensor's share of listcalls
// server time: copying 100,000 calls out of a real call table and
// converting them to listcalls rows.
//
// Pooled is the daemon's setup (rows recycled after each reply); Fresh
// allocates new rows every time, as a source without a pool does.
func BenchmarkActiveCalls100k(b *testing.B) {
	for _, bt := range benchTables {
		tab := bt.load(b, 100_000)
		for _, bb := range []struct {
			name string
			pool *rowPool
		}{{"Pooled", new(rowPool)}, {"Fresh", nil}} {
			b.Run(bt.name+"/"+bb.name, func(b *testing.B) {
				src := Source{t: tab, pool: bb.pool}
				b.ReportAllocs()
				for b.Loop() {
					rows := src.ActiveCalls(false)
					if len(rows) != 100_000 {
						b.Fatalf("%d calls", len(rows))
					}
					src.Recycle(rows)
				}
			})
		}
	}
}

// BenchmarkListCallsSensor100k is listcalls end to end on the server
// side: a real table with 100,000 calls behind the sensor adapter, the
// command registry and the manager transport, timed from sending the
// request to the last reply byte over a unix socket. The target
// is 150 ms.
func BenchmarkListCallsSensor100k(b *testing.B) {
	for _, bt := range benchTables {
		tab := bt.load(b, 100_000)
		runtime.GC()
		b.Run(bt.name, func(b *testing.B) {
			reg := command.NewRegistry()
			calls.Register(reg, calls.Deps{Source: Source{t: tab, pool: new(rowPool)}})
			sock := b.TempDir() + "/m.sock"
			srv, err := manager.New(reg, manager.Config{Socket: sock})
			if err != nil {
				b.Fatal(err)
			}
			if err := srv.Listen(); err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srv.Run(ctx) }()
			defer func() { cancel(); <-done }()
			b.ReportAllocs()
			var n int64
			buf := make([]byte, 256<<10) // io.Discard alone would read 8 KiB at a time
			for b.Loop() {
				c, err := net.Dial("unix", sock)
				if err != nil {
					b.Fatal(err)
				}
				io.WriteString(c, "listcalls\n")
				n, err = io.CopyBuffer(struct{ io.Writer }{io.Discard}, c, buf)
				c.Close()
				if err != nil || n < 100_000*300 {
					b.Fatalf("reply %d bytes, %v", n, err)
				}
			}
			b.ReportMetric(float64(n), "reply-bytes")
		})
	}
}

// TestRowPool checks the listcalls row pool: buffers lent at the same time
// are distinct, a recycled buffer is reused by the next request (and then
// holds that request's calls), and concurrent use is race-free.
func TestRowPool(t *testing.T) {
	tab := loadTable(t, 20)
	src := Source{t: tab, pool: new(rowPool)}
	a, b := src.ActiveCalls(true), src.ActiveCalls(true)
	if &a[0] == &b[0] {
		t.Fatal("two outstanding ActiveCalls share a buffer")
	}
	src.Recycle(a)
	c := src.ActiveCalls(true)
	if &c[0] != &a[0] {
		t.Errorf("recycled buffer not reused")
	}
	if len(c) != 20 || len(c[0].Streams) != 2 {
		t.Errorf("reused buffer: %d calls, %d streams in the first", len(c), len(c[0].Streams))
	}
	src.Recycle(b)
	src.Recycle(c)
	src.Recycle(c) // a second Recycle of the same rows is ignored
	if n := len(src.pool.idle); n > maxIdleRows {
		t.Errorf("%d idle buffers, want at most %d", n, maxIdleRows)
	}
	done := make(chan bool)
	for range 4 {
		go func() {
			for range 20 {
				rows := src.ActiveCalls(true)
				ok := len(rows) == 20
				for i := range rows {
					ok = ok && rows[i].Caller == "1001"
				}
				src.Recycle(rows)
				if !ok {
					done <- false
					return
				}
			}
			done <- true
		}()
	}
	for range 4 {
		if !<-done {
			t.Error("concurrent ActiveCalls returned wrong rows")
		}
	}
}
