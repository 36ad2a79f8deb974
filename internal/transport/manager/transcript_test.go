package manager

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/voipsensor/voipsensor/internal/command/calls"
)

// unescapeTranscript decodes the two escapes transcripts use for bytes
// that are invisible in a text file: \r and \xHH. A line starting with
// "#" at the top of the file is a comment.
func unescapeTranscript(s string) []byte {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case 'r':
				b = append(b, '\r')
				i++
				continue
			case 'x':
				if i+3 < len(s) {
					if n, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
						b = append(b, byte(n))
						i += 3
						continue
					}
				}
			}
		}
		b = append(b, s[i])
	}
	return b
}

var update = flag.Bool("update", false, "rewrite the server part of the transcripts with what the server answers (then review the diff)")

// TestTranscripts runs testdata/transcripts/*.txt: the client bytes, a
// line "----------", then the exact server bytes (up to the close). The
// newline before the separator belongs to the client part; a server part
// that must not end in a newline ends the file without one.
func TestTranscripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/transcripts/*.txt")
	if len(files) == 0 {
		t.Fatal("no transcripts")
	}
	env := newEnv(t, Config{}, []calls.Call{oneCall()})
	// Transcripts whose comment says "active_call_info = yes" talk to a
	// sensor that keeps the SIP packets of its calls.
	withPackets := newEnvSource(t, Config{}, packetCalls{fakeCalls{oneCall()},
		map[string][]calls.SIPPacket{oneCall().CallRef: onePackets()}})
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			s := string(raw)
			for strings.HasPrefix(s, "#") {
				_, s, _ = strings.Cut(s, "\n")
			}
			head := string(raw[:len(raw)-len(s)])
			env := env
			if strings.Contains(head, "active_call_info = yes") {
				env = withPackets
			}
			client, server, ok := strings.Cut(s, "\n----------\n")
			if !ok {
				t.Fatal("no ---------- separator")
			}
			req := unescapeTranscript(client + "\n")
			want := unescapeTranscript(server)
			if *update {
				got := exchange(t, "tcp", env.addr, req)
				if !bytes.Equal(unescapeTranscript(string(got)), got) {
					t.Fatalf("not updated: the reply has bytes a transcript escapes")
				}
				want = got
				if err := os.WriteFile(f, []byte(head+client+"\n----------\n"+string(got)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for _, network := range []string{"tcp", "unix"} {
				addr := env.addr
				if network == "unix" {
					addr = env.sock
				}
				got := exchange(t, network, addr, req)
				if !bytes.Equal(got, want) {
					t.Errorf("%s: request %q\n got %q\nwant %q", network, req, got, want)
				}
			}
		})
	}
}
