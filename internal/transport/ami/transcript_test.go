package ami

import (
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the server part of the transcripts with what the server answers (then review the diff)")

// crlf turns a transcript's lines into AMI's CRLF lines. A transcript is
// all text: AMI's wire is CRLF-terminated throughout, and values that held
// CR or LF are escaped on the wire (a literal "\r" in a file is the two
// characters the server sent).
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// timestamps matches the only value that changes from run to run (Ping's
// Timestamp); transcripts hold "*" in its place.
var timestamps = regexp.MustCompile(`(?m)^(Timestamp: )[0-9]+\.[0-9]+\r$`)

// exchangeAMI sends req on a new connection, shuts the sending side (as
// `printf … | nc -N` does) and returns everything the server wrote until
// it closed, banner included.
func exchangeAMI(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the answer: %v (got %q)", err, got)
	}
	return string(got)
}

// TestTranscripts runs testdata/transcripts/*.txt, AMI's behaviour pinned
// byte for byte: the client's actions, a line "----------", then the
// server's bytes from the banner to the close. Leading "#" lines are
// comments. The test server's registry and manager.conf are the other
// tests' (newHarness).
func TestTranscripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/transcripts/*.txt")
	if len(files) == 0 {
		t.Fatal("no transcripts")
	}
	h := startServer(t, nil)
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
			client, server, ok := strings.Cut(s, "\n----------\n")
			if !ok {
				t.Fatal("no ---------- separator")
			}
			got := timestamps.ReplaceAllString(exchangeAMI(t, h.addr, crlf(client+"\n")), "${1}*\r")
			if *update {
				text := strings.ReplaceAll(got, "\r\n", "\n")
				if strings.ContainsRune(text, '\r') {
					t.Fatal("not updated: the answer has a bare CR")
				}
				if err := os.WriteFile(f, []byte(head+client+"\n----------\n"+text), 0o644); err != nil {
					t.Fatal(err)
				}
				server = text
			}
			if want := crlf(server); got != want {
				t.Errorf("actions %q\n got %q\nwant %q", client, got, want)
			}
		})
	}
}
