package mi

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// listener is the surface every MI listener has.
type listener interface {
	Listen() error
	Run(ctx context.Context) error
}

// serve binds x and runs it until the test ends, when Run must return nil.
func serve(t *testing.T, x listener) {
	t.Helper()
	if err := x.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- x.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func runFIFO(t *testing.T, readOnly bool) (fifo, replyDir string) {
	t.Helper()
	dir := t.TempDir()
	replyDir = filepath.Join(dir, "replies") + "/"
	os.Mkdir(replyDir, 0o700)
	x := NewFIFO(NewDispatcher(testRegistry(), Config{}), FIFOConfig{Path: filepath.Join(dir, "run", "mi_fifo"), ReplyDir: replyDir, ReadOnly: readOnly})
	t.Cleanup(func() { // after serve's: Run has returned
		if _, err := os.Stat(x.Path()); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("FIFO not removed after Run: %v", err)
		}
	})
	serve(t, x)
	return x.Path(), replyDir
}

// fifoCall does what python-opensips does (spec §2): mkfifo the reply,
// write the request, read the reply to EOF, unlink.
func fifoCall(t *testing.T, fifo, replyDir, name, req string) string {
	t.Helper()
	return string(fifoReplies(t, fifo, replyDir, req, []string{name})[0])
}

// fifoReplies makes a reply FIFO for each name, writes req to the FIFO in
// one write and returns what each reply FIFO received up to EOF. The
// reply FIFOs are read from their own goroutines, started before the
// request is written, so that each is waiting in open (which is what a
// client's reader does) when the server opens it to reply.
func fifoReplies(t *testing.T, fifo, replyDir, req string, names []string) [][]byte {
	t.Helper()
	type reply struct {
		b   []byte
		err error
	}
	replies := make([]chan reply, len(names))
	for i, name := range names {
		path := replyDir + name
		if err := syscall.Mkfifo(path, 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(path)
		replies[i] = make(chan reply, 1)
		go func() {
			r, err := os.OpenFile(path, os.O_RDONLY, 0)
			if err != nil {
				replies[i] <- reply{err: err}
				return
			}
			defer r.Close()
			r.SetReadDeadline(time.Now().Add(5 * time.Second))
			b, err := io.ReadAll(r)
			replies[i] <- reply{b, err}
		}()
	}
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	out := make([][]byte, len(names))
	for i, name := range names {
		var r reply
		select {
		case r = <-replies[i]:
		case <-time.After(10 * time.Second):
			// Release the reader blocked in open before failing.
			if w, err := os.OpenFile(replyDir+name, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
			t.Fatalf("reply FIFO %s: no reply", name)
		}
		if r.err != nil {
			t.Fatalf("reply FIFO %s: %v", name, r.err)
		}
		out[i] = r.b
	}
	return out
}

func TestFIFOByteExact(t *testing.T) {
	fifo, rd := runFIFO(t, false)
	fi, err := os.Stat(fifo)
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("FIFO mode = %v, %v; want a named pipe with 0600", fi.Mode(), err)
	}
	tests := []struct{ name, req, want string }{
		// OpenSIPS framing, python-opensips bytes: the reply is the compact
		// JSON with no trailing newline, closed by EOF.
		{"opensips_fifo_reply_1_2_3", `:opensips_fifo_reply_1_2_3:{"jsonrpc": "2.0", "id": "23589", "method": "echo", "params": {"a": "v"}}`,
			`{"jsonrpc":"2.0","result":["v",""],"id":"23589"}`},
		// Kamailio framing, kamctl bytes (newline-terminated line).
		{"kamailio_receiver_11534", `{"jsonrpc": "2.0", "method": "uptime", "reply_name": "kamailio_receiver_11534", "id": 11534}` + "\n",
			`{"jsonrpc":"2.0","result":{"Up time":"5 [sec]"},"id":11534}`},
		{"r_err", `:r_err:{"jsonrpc":"2.0","method":"nope","id":1}`, `{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":1}`},
		{"r_parse", ":r_parse:{\"jsonrpc\":\"2.0\",}\n", `{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}`},
		// A notification on a sync command: the reply FIFO opens and closes with 0 bytes.
		{"r_notify", `:r_notify:{"jsonrpc":"2.0","method":"uptime"}`, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fifoCall(t, fifo, rd, tt.name, tt.req); got != tt.want {
				t.Errorf("reply\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestFIFOReadOnly(t *testing.T) {
	fifo, rd := runFIFO(t, true)
	got := fifoCall(t, fifo, rd, "ro", `:ro:{"jsonrpc":"2.0","method":"kill","id":1}`)
	if !strings.Contains(got, `"code":403`) {
		t.Errorf("kill on read-only FIFO = %s, want 403", got)
	}
}

func TestWriteReplyChecks(t *testing.T) {
	dir := t.TempDir() + "/"
	target := dir + "target"
	syscall.Mkfifo(target, 0o600)
	os.Symlink(target, dir+"link")
	os.WriteFile(dir+"plain", nil, 0o600)
	syscall.Mkfifo(dir+"hard", 0o600)
	os.Link(dir+"hard", dir+"hard2")
	tests := []struct {
		name string
		want error
	}{
		{"a.b", ErrReplyName},
		{"", ErrReplyName},
		{strings.Repeat("x", 130), ErrReplyName},
		{"link", ErrReplyFIFO},   // O_NOFOLLOW
		{"plain", ErrReplyFIFO},  // not a FIFO
		{"hard", ErrReplyFIFO},   // two links (checked once a reader is there)
		{"absent", ErrReplyFIFO}, // nobody made it
	}
	for _, tt := range tests {
		if tt.name == "hard" {
			r, err := os.OpenFile(dir+"hard", os.O_RDONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
		}
		if err := WriteReply(dir, tt.name, []byte("x")); !errors.Is(err, tt.want) {
			t.Errorf("WriteReply(%q) = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func runDatagram(t *testing.T, spec string) *Datagram {
	t.Helper()
	x := NewDatagram(NewDispatcher(testRegistry(), Config{}), spec, DatagramConfig{})
	serve(t, x)
	return x
}

func TestDatagram(t *testing.T) {
	dir := t.TempDir()
	for _, spec := range []string{"udp:127.0.0.1:0", "unix:" + dir + "/mi.sock"} {
		t.Run(spec, func(t *testing.T) {
			x := runDatagram(t, spec)
			var c net.PacketConn
			var err error
			if x.Addr().Network() == "unixgram" {
				fi, _ := os.Stat(dir + "/mi.sock")
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("socket mode %v, want 0600", fi.Mode().Perm())
				}
				c, err = net.ListenPacket("unixgram", dir+"/client.sock")
			} else {
				c, err = net.ListenPacket("udp", "127.0.0.1:0")
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tests := []struct{ req, want string }{
				{`{"jsonrpc":"2.0","method":"echo","params":["d"],"id":5}`, `{"jsonrpc":"2.0","result":["d",""],"id":5}`},
				{`{"jsonrpc":"2.0","method":"uptime","id":6}{"ignored":1}`, `{"jsonrpc":"2.0","result":{"Up time":"5 [sec]"},"id":6}`},
				{`not json`, `400 Parse_error`},
			}
			buf := make([]byte, MaxDatagram)
			for _, tt := range tests {
				c.WriteTo([]byte(tt.req), x.Addr())
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, _, err := c.ReadFrom(buf)
				if err != nil {
					t.Fatal(err)
				}
				if got := string(buf[:n]); got != tt.want {
					t.Errorf("reply to %s = %q, want %q", tt.req, got, tt.want)
				}
			}
		})
	}
}

func TestReplyAllowed(t *testing.T) {
	tests := []struct {
		from          net.Addr
		req, rep      int
		allow, wantOK bool
	}{
		{&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, 60, 60000, false, true},
		{&net.UDPAddr{IP: net.ParseIP("::1")}, 60, 60000, false, true},
		{&net.UDPAddr{IP: net.IPv4(192, 0, 2, 1)}, 60, 60000, false, false},
		{&net.UDPAddr{IP: net.IPv4(192, 0, 2, 1)}, 60, 60, false, true},
		{&net.UDPAddr{IP: net.IPv4(192, 0, 2, 1)}, 60, 60000, true, true},
		{&net.UnixAddr{Name: "/x", Net: "unixgram"}, 60, 60000, false, true},
	}
	for _, tt := range tests {
		if got := ReplyAllowed(tt.from, tt.req, tt.rep, tt.allow); got != tt.wantOK {
			t.Errorf("ReplyAllowed(%v, %d, %d, %v) = %v, want %v", tt.from, tt.req, tt.rep, tt.allow, got, tt.wantOK)
		}
	}
}

func TestParseDatagramAddr(t *testing.T) {
	tests := []struct{ in, net, addr string }{
		{"udp:127.0.0.1:8080", "udp", "127.0.0.1:8080"},
		{"udp:::1:8080", "udp", "[::1]:8080"},
		{"udp:[::1]:8080", "udp", "[::1]:8080"},
		{"unix:/run/x.sock", "unixgram", "/run/x.sock"},
		{"/run/x.sock", "unixgram", "/run/x.sock"},
		{"relative", "", ""},
		{"udp:nohost", "", ""},
	}
	for _, tt := range tests {
		n, a, err := ParseDatagramAddr(tt.in)
		if n != tt.net || a != tt.addr || (err != nil) != (tt.net == "") {
			t.Errorf("ParseDatagramAddr(%q) = %q, %q, %v; want %q, %q", tt.in, n, a, err, tt.net, tt.addr)
		}
	}
}

func TestHTTP(t *testing.T) {
	srv := NewHTTPServer(NewDispatcher(testRegistry(), Config{}), HTTPConfig{Addr: "127.0.0.1:0", Token: "s3cret"})
	serve(t, srv)
	url := "http://" + srv.Addr().String() + "/mi"
	tests := []struct {
		name, method, body, auth string
		status                   int
		want                     string
	}{
		{"ok", "POST", `{"jsonrpc":"2.0","method":"uptime","id":1}`, "Bearer s3cret", 200, `{"jsonrpc":"2.0","result":{"Up time":"5 [sec]"},"id":1}`},
		{"error in 200", "POST", `{"jsonrpc":"2.0","method":"x","id":1}`, "Bearer s3cret", 200, `{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":1}`},
		{"notification 202", "POST", `{"jsonrpc":"2.0","method":"uptime"}`, "Bearer s3cret", 202, ``},
		{"GET 405", "GET", ``, "Bearer s3cret", 405, "405 Method Not Allowed\n"},
		{"empty 400", "POST", ``, "Bearer s3cret", 400, "400 Bad Request: empty body\n"},
		{"no token 401", "POST", `{}`, "", 401, "401 Unauthorized\n"},
		{"wrong token 401", "POST", `{}`, "Bearer nope", 401, "401 Unauthorized\n"},
		{"too large 413", "POST", strings.Repeat(" ", MaxRequest+1), "Bearer s3cret", 413, "413 Request Entity Too Large\n"},
		{"text/plain 415 (CSRF)", "POST", `{"jsonrpc":"2.0","method":"uptime","id":1}`, "Bearer s3cret", 415, "415 Unsupported Media Type: want Content-Type application/json\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, url, strings.NewReader(tt.body))
			if tt.status == 415 {
				req.Header.Set("Content-Type", "text/plain")
			} else {
				req.Header.Set("Content-Type", "application/json")
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || string(b) != tt.want {
				t.Errorf("%s: %d %q, want %d %q", tt.name, resp.StatusCode, b, tt.status, tt.want)
			}
		})
	}
}
