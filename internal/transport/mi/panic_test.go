package mi

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
	"github.com/voipsensor/voipsensor/internal/transport/xmlrpc"
)

// panicJSON is a result value whose encoding panics: a bug in rendering,
// which runs in the listener's goroutine, outside the registry's recover.
type panicJSON struct{}

func (panicJSON) MarshalJSON() ([]byte, error) { panic("render exploded") }

// panicRegistry has a command that panics when it runs ("boom") and one
// whose result panics when it is rendered ("boom_render").
func panicRegistry() *command.Registry {
	reg := testRegistry()
	reg.SetLogger(slog.New(slog.DiscardHandler))
	reg.Register(command.Command{Name: "boom", Doc: "panics", Perm: command.PermReporting,
		Run: func(context.Context, *command.Request) (command.Result, error) { panic("command exploded") }})
	reg.Register(command.Command{Name: "boom_render", Doc: "result panics", Perm: command.PermReporting,
		Run: func(context.Context, *command.Request) (command.Result, error) {
			return command.Value{V: panicJSON{}}, nil
		}})
	return reg
}

// TestPanicContained: over MI HTTP (JSON-RPC and XML-RPC), the FIFO and
// a datagram socket, a command that panics is answered with JSON-RPC's
// internal error (-32603) with its request's id and counted by the
// registry; a panic while the listener renders the result is answered
// with the internal error (id null: the request is not at hand any more)
// and counted by the listener. Either way the listener keeps serving.
func TestPanicContained(t *testing.T) {
	const (
		cmdPanic    = `{"jsonrpc":"2.0","error":{"code":-32603,"message":"Internal error"},"id":7}`
		renderPanic = `{"jsonrpc":"2.0","error":{"code":-32603,"message":"Internal error"},"id":null}`
		uptime      = `{"jsonrpc":"2.0","result":{"Up time":"5 [sec]"},"id":9}`
	)
	requests := []struct{ name, req, want string }{
		{"boom", `{"jsonrpc":"2.0","method":"boom","id":7}`, cmdPanic},
		{"boom_render", `{"jsonrpc":"2.0","method":"boom_render","id":8}`, renderPanic},
		{"uptime", `{"jsonrpc":"2.0","method":"uptime","id":9}`, uptime},
	}
	quiet := slog.New(slog.DiscardHandler)
	// check sends every request over one transport and checks the replies
	// and both counters.
	check := func(t *testing.T, reg *command.Registry, panics func() uint64, call func(req string) string) {
		t.Helper()
		for _, r := range requests {
			if got := call(r.req); got != r.want {
				t.Errorf("%s: reply %s, want %s", r.name, got, r.want)
			}
		}
		if n := reg.Panics(); n != 1 {
			t.Errorf("registry counted %d panics, want 1", n)
		}
		if n := panics(); n != 1 {
			t.Errorf("listener counted %d panics, want 1", n)
		}
	}

	t.Run("http", func(t *testing.T) {
		reg := panicRegistry()
		d := NewDispatcher(reg, Config{})
		srv := NewHTTPServer(d, HTTPConfig{Addr: "127.0.0.1:0", Logger: quiet, XMLRPC: xmlrpc.Responder{Backend: xmlBackend{d}}})
		serve(t, srv)
		post := func(path, ctype, body string) string {
			resp, err := http.Post("http://"+srv.Addr().String()+path, ctype, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ctype {
				t.Errorf("%s: HTTP %d %s, want 200 %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), ctype)
			}
			return string(b)
		}
		check(t, reg, func() uint64 { return srv.Stats().Panics }, func(req string) string {
			return post("/mi", "application/json", req)
		})
		// XML-RPC: the same two panics, as fault -32603.
		for _, m := range []string{"boom", "boom_render"} {
			got := post("/RPC2", "text/xml", "<methodCall><methodName>"+m+"</methodName></methodCall>")
			if !strings.Contains(got, "<int>-32603</int>") {
				t.Errorf("XML-RPC %s: %s, want fault -32603", m, got)
			}
		}
		if n := srv.Stats().Panics; n != 2 {
			t.Errorf("after XML-RPC the listener counted %d panics, want 2", n)
		}
	})

	t.Run("fifo", func(t *testing.T) {
		reg := panicRegistry()
		dir := t.TempDir()
		replyDir := filepath.Join(dir, "replies") + "/"
		os.Mkdir(replyDir, 0o700)
		x := NewFIFO(NewDispatcher(reg, Config{}), FIFOConfig{Path: filepath.Join(dir, "mi_fifo"), ReplyDir: replyDir, Logger: quiet})
		serve(t, x)
		check(t, reg, x.Panics, func(req string) string {
			return fifoCall(t, x.Path(), replyDir, "r", ":r:"+req)
		})
	})

	t.Run("datagram", func(t *testing.T) {
		reg := panicRegistry()
		x := NewDatagram(NewDispatcher(reg, Config{}), "udp:127.0.0.1:0", DatagramConfig{Logger: quiet})
		serve(t, x)
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, MaxDatagram)
		check(t, reg, x.Panics, func(req string) string {
			if _, err := c.WriteTo([]byte(req), x.Addr()); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				t.Fatal(err)
			}
			return string(buf[:n])
		})
	})
}
