package manager

import (
	"context"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
	"github.com/voipsensor/voipsensor/internal/command/calls"
)

func benchCalls(n int) []calls.Call {
	base := oneCall()
	out := make([]calls.Call, n)
	for i := range out {
		c := base
		c.CallRef = strconv.FormatUint(uint64(0x7f0000000000+i*0x200), 16)
		c.CallID = strconv.Itoa(i) + "@bench"
		c.Caller = strconv.Itoa(100000 + i)
		c.SIPCallerIP = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		c.Start = base.Start.Add(time.Duration(i) * time.Millisecond)
		c.B = c.A
		out[i] = c
	}
	return out
}

type sharedCalls []calls.Call

func (s sharedCalls) ActiveCalls(bool) []calls.Call { return s }

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// BenchmarkListCalls100k measures listcalls over 100,000 active calls:
// filter/sort in command/calls plus the legacy table rendering (what the
// connection goroutine does after reading the request). Target < 150 ms.
func BenchmarkListCalls100k(b *testing.B) {
	reg := command.NewRegistry()
	cs := benchCalls(100_000)
	// The source hands out its slice without copying: the snapshot copy is
	// the call table's cost, measured there.
	calls.Register(reg, calls.Deps{Source: sharedCalls(cs), Now: func() time.Time { return t0.Add(time.Minute) }})
	b.ReportAllocs()
	var w countWriter
	for b.Loop() {
		req := &command.Request{Name: "listcalls", Perm: command.PermAll}
		res, err := reg.Run(context.Background(), req)
		if err != nil {
			b.Fatal(err)
		}
		w.n = 0
		if err := renderListCalls(&w, req, res); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(w.n), "reply-bytes")
}

// BenchmarkListCalls100kTCP is the same over a loopback TCP connection.
func BenchmarkListCalls100kTCP(b *testing.B) {
	env := newEnv(b, Config{}, benchCalls(100_000))
	b.ReportAllocs()
	var n int64
	for b.Loop() {
		c, err := net.Dial("tcp", env.addr)
		if err != nil {
			b.Fatal(err)
		}
		io.WriteString(c, "listcalls\r\n\r\n")
		n, err = io.Copy(io.Discard, c)
		c.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n), "reply-bytes")
}

// BenchmarkParallelClients measures commands per second with 50 parallel
// clients, each a new connection running totalcalls.
func BenchmarkParallelClients(b *testing.B) {
	env := newEnv(b, Config{}, benchCalls(10))
	b.SetParallelism((50 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ReportAllocs()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 64)
		for pb.Next() {
			c, err := net.Dial("tcp", env.addr)
			if err != nil {
				b.Error(err)
				return
			}
			io.WriteString(c, "totalcalls\r\n\r\n")
			n, _ := io.ReadFull(c, buf[:2])
			c.Close()
			if n != 2 || string(buf[:2]) != "10" {
				b.Errorf("reply %q", buf[:n])
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "cmds/s")
}
