package mi

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/voipsensor/voipsensor/internal/command"
	"github.com/voipsensor/voipsensor/internal/transport/xmlrpc"
)

var update = flag.Bool("update", false, "rewrite the server part of testdata/transcripts/*.txt with the replies received")

// transcriptToken is the mi_http_token of the transcripts' HTTP listener.
const transcriptToken = "s3cret"

// transcriptRegistry is testRegistry with a command that fails plainly
// (-32000).
func transcriptRegistry() *command.Registry {
	reg := testRegistry()
	reg.Register(command.Command{Name: "fail", Doc: "fails", Perm: command.PermReporting,
		Run: func(context.Context, *command.Request) (command.Result, error) {
			return nil, errors.New("disk full")
		}})
	return reg
}

// xmlBackend adapts the dispatcher to xmlrpc.Backend as the sensor does.
type xmlBackend struct{ d *Dispatcher }

func (b xmlBackend) Call(ctx context.Context, method string, params json.RawMessage, perm command.Perm) (json.RawMessage, error) {
	res, e := b.d.Call(ctx, method, params, perm, "mi-xmlrpc")
	if e != nil {
		return nil, xmlrpc.FaultFor(e.Code, e.Message)
	}
	return res, nil
}

// transcript is one testdata/transcripts file: comment lines starting
// with "#", the client part, a line "----------", the server part. The
// newline before the separator belongs to the client part; a server part
// that does not end in a newline ends the file without one. MI is text:
// there are no escapes.
type transcript struct {
	comment, client, server string
}

func readTranscript(t *testing.T, path string) transcript {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var tr transcript
	s := string(raw)
	for strings.HasPrefix(s, "#") {
		line, rest, _ := strings.Cut(s, "\n")
		tr.comment += line + "\n"
		s = rest
	}
	client, server, ok := strings.Cut(s, "\n----------\n")
	if !ok {
		t.Fatal("no ---------- separator")
	}
	tr.client, tr.server = client+"\n", server
	return tr
}

// check compares the server part with got, or with -update writes got in.
func (tr transcript) check(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(tr.comment+tr.client+"----------\n"+got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got != tr.server {
		t.Errorf("request\n%s\n got %q\nwant %q", tr.client, got, tr.server)
	}
}

// TestTranscripts runs testdata/transcripts/*.txt (go test -update
// rewrites their server parts):
//
//   - http_*.txt: the client part is a request line "METHOD PATH", header
//     lines, a blank line and the body (Content-Length is computed; a Host
//     header sets the Host); the server part is the response as
//     "PROTO STATUS", its headers but Date in sorted order, a blank line
//     and the body. The listener has the token [transcriptToken] and
//     serves XML-RPC on /RPC2.
//   - fifo_*.txt: the client part is written to the FIFO in one write;
//     the server part is, for each request with a reply name in order,
//     ":name:" and what came through that reply FIFO up to EOF, and a
//     newline.
func TestTranscripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/transcripts/*.txt")
	if len(files) == 0 {
		t.Fatal("no transcripts")
	}
	d := NewDispatcher(transcriptRegistry(), Config{})
	srv := NewHTTPServer(d, HTTPConfig{Addr: "127.0.0.1:0", Token: transcriptToken, XMLRPC: xmlrpc.Responder{Backend: xmlBackend{d}}})
	serve(t, srv)
	dir := t.TempDir()
	replyDir := filepath.Join(dir, "replies") + "/"
	os.Mkdir(replyDir, 0o700)
	fifo := NewFIFO(d, FIFOConfig{Path: filepath.Join(dir, "mi_fifo"), ReplyDir: replyDir, Logger: slog.New(slog.DiscardHandler)})
	serve(t, fifo)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			tr := readTranscript(t, f)
			switch name := filepath.Base(f); {
			case strings.HasPrefix(name, "http_"):
				tr.check(t, f, httpExchange(t, "http://"+srv.Addr().String(), tr.client))
			case strings.HasPrefix(name, "fifo_"):
				tr.check(t, f, fifoExchange(t, fifo.Path(), replyDir, tr.client))
			default:
				t.Fatal("transcript name starts with neither http_ nor fifo_")
			}
		})
	}
}

// httpExchange sends the request a transcript's client part describes and
// renders the response.
func httpExchange(t *testing.T, base, client string) string {
	t.Helper()
	head, body, _ := strings.Cut(client, "\n\n")
	body = strings.TrimSuffix(body, "\n")
	lines := strings.Split(strings.TrimSuffix(head, "\n"), "\n")
	method, path, ok := strings.Cut(lines[0], " ")
	if !ok {
		t.Fatalf("request line %q: want METHOD PATH", lines[0])
	}
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			t.Fatalf("header line %q", l)
		}
		if v = strings.TrimSpace(v); strings.EqualFold(k, "Host") {
			req.Host = v
		} else {
			req.Header.Add(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	out.WriteString(resp.Proto + " " + resp.Status + "\n")
	keys := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		if k != "Date" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range resp.Header[k] {
			out.WriteString(k + ": " + v + "\n")
		}
	}
	out.WriteString("\n")
	out.Write(b)
	return out.String()
}

// fifoExchange writes a transcript's client part to the FIFO in one write
// and renders what each reply FIFO received.
func fifoExchange(t *testing.T, fifo, replyDir, client string) string {
	t.Helper()
	var names []string
	fr := NewFramer(0)
	fr.Write([]byte(client))
	for {
		f, ok := fr.Next()
		if !ok {
			break
		}
		if f.Err == nil && CheckReplyName(replyDir, f.ReplyName) == nil {
			names = append(names, f.ReplyName)
		}
	}
	var out strings.Builder
	for i, b := range fifoReplies(t, fifo, replyDir, client, names) {
		out.WriteString(":" + names[i] + ":" + string(b) + "\n")
	}
	return out.String()
}
