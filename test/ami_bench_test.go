package test

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/gen"
)

// BenchmarkAMIReplay replays a generated capture of about a million packets
// (--speed 20) to a daemon with 200 logged-in AMI sessions reading every
// event, plus one session that logs in and never reads. It reports the
// AMI events delivered per second across the readers, checks that every
// reader got every rendered event, that the sensor read every packet and
// the event bus dropped nothing, and that the stalled session was cut off
// as a slow consumer. Run with -benchtime=1x:
//
//	go test -run XXX -bench AMIReplay -benchtime=1x ./test/
func BenchmarkAMIReplay(b *testing.B) {
	const readers = 200
	cfg := gen.DefaultConfig()
	cfg.Calls, cfg.Concurrency, cfg.TalkTime, cfg.RTCP = 500, 100, 20*time.Second, true
	var pcapBuf bytes.Buffer
	sum, err := gen.Generate(cfg, &pcapBuf, nopWriter{})
	if err != nil {
		b.Fatal(err)
	}
	raw := filepath.Join(b.TempDir(), "bench.pcap")
	if err := os.WriteFile(raw, pcapBuf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	pcapBuf = bytes.Buffer{}
	// 60 s of capture-time lead = 3 s at speed 20 to log everyone in.
	pcap := prefixCapture(b, raw, 60*time.Second)
	conf, port := amiConf(b, "writetimeout = 100\n")
	addr := "127.0.0.1:" + strconv.Itoa(port)

	for i := 0; i < b.N; i++ {
		d := startDaemon(b, "-r", pcap, "--speed", "20", "-set", "amiconfig="+conf)
		if !d.waitLog("AMI listening", 5*time.Second) {
			b.Fatal("AMI not listening")
		}
		login := func() (net.Conn, *bufio.Reader) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			c.Write([]byte("Action: Login\r\nUsername: admin\r\nSecret: amipass\r\n\r\n"))
			br := bufio.NewReaderSize(c, 64<<10)
			return c, br
		}
		stalled, _ := login()
		if tc, ok := stalled.(*net.TCPConn); ok {
			tc.SetReadBuffer(4096)
		}
		var (
			wg          sync.WaitGroup
			total       atomic.Int64
			first, last atomic.Int64
			counts      = make([]int64, readers)
		)
		for r := 0; r < readers; r++ {
			c, br := login()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				var n int64
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						break
					}
					if bytes.HasPrefix(line, []byte("Event: ")) && !bytes.HasPrefix(line, []byte("Event: FullyBooted")) {
						now := time.Now().UnixNano()
						if n == 0 {
							first.CompareAndSwap(0, now)
						}
						n++
						last.Store(now)
					}
				}
				counts[r] = n
				total.Add(n)
			}()
		}
		b.ResetTimer()
		if code := d.wait(10 * time.Minute); code != 0 {
			b.Fatalf("daemon exit %d", code)
		}
		wg.Wait()
		b.StopTimer()
		stalled.Close()

		log := d.log.String()
		rendered := logInt(log, "AMI stopped", "events_rendered")
		frames := logInt(log, "sensor stopped", "frames")
		busDropped := logInt(log, "AMI stopped", "bus_dropped")
		slow := logInt(log, "AMI stopped", "slow_consumers")
		secs := float64(last.Load()-first.Load()) / 1e9
		b.ReportMetric(float64(total.Load())/secs, "events/s")
		b.ReportMetric(float64(rendered), "events_rendered")
		b.ReportMetric(float64(frames), "frames")
		b.ReportMetric(float64(busDropped), "bus_dropped")
		b.ReportMetric(float64(slow), "slow_consumers")
		if want := int64(sum.Packets) + 6; frames != want {
			b.Errorf("sensor read %d frames, want %d (capture drops)", frames, want)
		}
		if busDropped != 0 {
			b.Errorf("event bus dropped %d events", busDropped)
		}
		for r, n := range counts {
			if n != rendered {
				b.Errorf("reader %d got %d events, want all %d", r, n, rendered)
				break
			}
		}
		if slow != 1 || !strings.Contains(log, `reason="write timeout"`) {
			b.Errorf("stalled session: slow_consumers=%d, log has write-timeout cut-off: %v", slow,
				strings.Contains(log, `reason="write timeout"`))
		}
		b.Logf("%d readers × %d events in %.1f s; %d frames; bus_dropped=%d slow_consumers=%d",
			readers, rendered, secs, frames, busDropped, slow)
	}
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
