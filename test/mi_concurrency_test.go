package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// countFrames counts a pcap's records with gopacket's reader (not ours).
func countFrames(t *testing.T, name string) int {
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		if _, _, err := r.ReadPacketData(); err != nil {
			if err == io.EOF {
				return n
			}
			t.Fatal(err)
		}
		n++
	}
}

// miCheck is one request with the test for its reply's result.
type miCheck struct {
	method, params string // params: JSON text or ""
	ok             func(result json.RawMessage) bool
}

func miChecks(total int) []miCheck {
	return []miCheck{
		{"which", `["log_level"]`, func(r json.RawMessage) bool { return string(r) == `[[],["level"],["level","pid"]]` }},
		{"version", "", func(r json.RawMessage) bool { return bytes.HasPrefix(r, []byte(`{"Server":"voipsensor (`)) }},
		{"uptime", "", func(r json.RawMessage) bool { return bytes.Contains(r, []byte(` [sec]"}`)) }},
		{"get_statistics", `[["capture:frames","capture:drops"]]`, func(r json.RawMessage) bool {
			var v map[string]int
			return json.Unmarshal(r, &v) == nil && v["capture:frames"] <= total && v["capture:drops"] == 0 && len(v) == 2
		}},
		{"ul_show_contact", `{"table_name":"nosuch","aor":"a@b"}`, nil}, // error 404 Table not found
	}
}

func jsonReq(c miCheck, id string) string {
	s := `{"jsonrpc":"2.0","method":"` + c.method + `","id":"` + id + `"`
	if c.params != "" {
		s += `,"params":` + c.params
	}
	return s + "}"
}

func verify(c miCheck, id string, reply []byte) error {
	var r rpcReply
	if err := json.Unmarshal(reply, &r); err != nil {
		return fmt.Errorf("%s: reply %q: %v", c.method, reply, err)
	}
	if string(r.ID) != `"`+id+`"` {
		return fmt.Errorf("%s: id %s, want %q", c.method, r.ID, id)
	}
	if c.ok == nil {
		if r.Error == nil || r.Error.Code != 404 || r.Error.Message != "Table not found" {
			return fmt.Errorf("%s: %s, want error 404", c.method, reply)
		}
		return nil
	}
	if r.Error != nil || !c.ok(r.Result) {
		return fmt.Errorf("%s: wrong reply %s", c.method, reply)
	}
	return nil
}

// xmlCall builds the XML-RPC form of c (positional params only here).
func xmlCall(c miCheck) string {
	p := ""
	switch c.params {
	case `["log_level"]`:
		p = `<param><value><string>log_level</string></value></param>`
	case `[["capture:frames","capture:drops"]]`:
		p = `<param><value><array><data><value><string>capture:frames</string></value><value><string>capture:drops</string></value></data></array></value></param>`
	case `{"table_name":"nosuch","aor":"a@b"}`:
		p = `<param><value><struct><member><name>table_name</name><value><string>nosuch</string></value></member><member><name>aor</name><value><string>a@b</string></value></member></struct></value></param>`
	}
	return `<?xml version="1.0"?><methodCall><methodName>` + c.method + `</methodName><params>` + p + `</params></methodCall>`
}

// TestMIConcurrency: 100 clients over HTTP JSON-RPC, XML-RPC, the FIFO,
// UDP and unix datagrams while a capture replays. Every answer must be
// right, and the capture must be processed whole (frames = the file's,
// no drops).
func TestMIConcurrency(t *testing.T) {
	pcap := sharedtest.Pcap(t, "baresip_rtcp.pcap")
	total := countFrames(t, pcap)
	// 100 clients from one address: more than the per-address cap of a
	// default sensor (max_connections_per_ip = 64), which this test is not
	// about.
	m := startMIDaemon(t, "-r", pcap, "--speed", "3", "-set", "max_connections_per_ip=1000")
	checks := miChecks(total)
	const clients, rounds = 100, 15
	errs := make(chan error, clients*rounds)
	var wg sync.WaitGroup
	start := time.Now()
	hc := &http.Client{Timeout: 10 * time.Second}
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var dg net.PacketConn
			var dst net.Addr
			switch c % 5 {
			case 3:
				dg, _ = net.ListenPacket("udp", "127.0.0.1:0")
				dst, _ = net.ResolveUDPAddr("udp", m.udp)
			case 4:
				var err error
				dg, err = net.ListenPacket("unixgram", filepath.Join(filepath.Dir(m.unix), fmt.Sprintf("c%d.sock", c)))
				if err != nil {
					errs <- err
					return
				}
				dst = &net.UnixAddr{Name: m.unix, Net: "unixgram"}
			}
			if dg != nil {
				defer dg.Close()
			}
			buf := make([]byte, 65536)
			for i := 0; i < rounds; i++ {
				ch := checks[(c+i)%len(checks)]
				id := fmt.Sprintf("c%d-%d", c, i)
				var reply []byte
				var err error
				switch c % 5 {
				case 0: // JSON-RPC over HTTP
					var resp *http.Response
					resp, err = hc.Post("http://"+m.http+"/mi", "application/json", strings.NewReader(jsonReq(ch, id)))
					if err == nil {
						reply, err = io.ReadAll(resp.Body)
						resp.Body.Close()
					}
				case 1: // XML-RPC: the reply is checked through the fault/value text
					var resp *http.Response
					resp, err = hc.Post("http://"+m.http+"/RPC2", "text/xml", strings.NewReader(xmlCall(ch)))
					if err == nil {
						b, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if !xmlOK(ch, string(b)) {
							err = fmt.Errorf("xmlrpc %s: %s", ch.method, b)
						}
					}
				case 2: // FIFO, OpenSIPS framing
					reply, err = fifoRoundTrip(m.fifo, fmt.Sprintf("mi_conc_%d_%d_%d", os.Getpid(), c, i), jsonReq(ch, id))
				default: // datagrams
					dg.SetDeadline(time.Now().Add(5 * time.Second))
					if _, err = dg.WriteTo([]byte(jsonReq(ch, id)), dst); err == nil {
						var n int
						n, _, err = dg.ReadFrom(buf)
						reply = buf[:n]
					}
				}
				if err == nil && c%5 != 1 {
					err = verify(ch, id, reply)
				}
				if err != nil {
					errs <- fmt.Errorf("client %d round %d: %w", c, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if code := m.wait(60 * time.Second); code != 0 {
		t.Fatalf("daemon exit %d", code)
	}
	if got := logInt(m.log.String(), "sensor stopped", "frames"); got != int64(total) {
		t.Errorf("frames processed %d, want %d (the file's)", got, total)
	}
	t.Logf("%d clients × %d requests over 5 transports in %v (%.0f req/s) during replay", clients, rounds, elapsed, float64(clients*rounds)/elapsed.Seconds())
}

func xmlOK(c miCheck, body string) bool {
	switch c.method {
	case "which":
		return strings.Contains(body, `<array><data></data></array></value><value><array><data><value><string>level</string></value></data></array></value><value><array><data><value><string>level</string></value><value><string>pid</string></value></data></array>`)
	case "version":
		return strings.Contains(body, `<name>Server</name><value><string>voipsensor (`)
	case "uptime":
		return strings.Contains(body, ` [sec]</string>`)
	case "get_statistics":
		return strings.Contains(body, `<name>capture:drops</name><value><int>0</int></value>`)
	}
	return strings.Contains(body, `<int>404</int>`) && strings.Contains(body, "Table not found")
}

// fifoRoundTrip writes one OpenSIPS-framed request and reads the reply,
// as python-opensips does.
func fifoRoundTrip(fifo, name, req string) ([]byte, error) {
	rp := "/tmp/" + name
	os.Remove(rp)
	if err := syscall.Mkfifo(rp, 0o600); err != nil {
		return nil, err
	}
	defer os.Remove(rp)
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	_, err = w.Write([]byte(":" + name + ":" + req))
	w.Close()
	if err != nil {
		return nil, err
	}
	r, err := os.OpenFile(rp, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	r.SetReadDeadline(time.Now().Add(10 * time.Second))
	return io.ReadAll(r)
}
