package mi

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// pyOpenSIPS is the exact request python-opensips writes (spec §2, E2):
// no trailing newline.
const pyOpenSIPS = `:opensips_fifo_reply_11704_1795420471_465665:{"jsonrpc": "2.0", "id": "23589", "method": "get_statistics", "params": {"statistics": ["dialog:", "core:"]}}`

// kamctlLine is what kamctl writes (spec §7, E1), newline included.
const kamctlLine = `{"jsonrpc": "2.0", "method": "core.uptime", "reply_name": "kamailio_receiver_11534", "id": 11534}` + "\n"

func TestFramer(t *testing.T) {
	type fr struct {
		D    Dialect
		Name string
		Body string
		Err  error
	}
	tests := []struct {
		name string
		in   string
		want []fr
	}{
		{"python-opensips", pyOpenSIPS, []fr{{DialectOpenSIPS, "opensips_fifo_reply_11704_1795420471_465665",
			`{"jsonrpc": "2.0", "id": "23589", "method": "get_statistics", "params": {"statistics": ["dialog:", "core:"]}}`, nil}}},
		{"kamctl", kamctlLine, []fr{{DialectKamailio, "kamailio_receiver_11534",
			`{"jsonrpc": "2.0", "method": "core.uptime", "reply_name": "kamailio_receiver_11534", "id": 11534}`, nil}}},
		{"no-reply prefix", `::{"jsonrpc":"2.0","method":"uptime"}`, []fr{{DialectOpenSIPS, "", `{"jsonrpc":"2.0","method":"uptime"}`, nil}}},
		{"leading blanks", " \n\t:r:{}", []fr{{DialectOpenSIPS, "r", `{}`, nil}}},
		{"multiline json", ":r:{\n\"a\":\n[1,\n2]}\n", []fr{{DialectOpenSIPS, "r", "{\n\"a\":\n[1,\n2]}", nil}}},
		{"braces in strings", `:r:{"m":"}{\"}"}`, []fr{{DialectOpenSIPS, "r", `{"m":"}{\"}"}`, nil}}},
		{"two in one write", ":a:{}\n{\"reply_name\":\"b\"}", []fr{{DialectOpenSIPS, "a", `{}`, nil}, {DialectKamailio, "b", `{"reply_name":"b"}`, nil}}},
		{"garbage resyncs at newline", "hello world\n:r:{}", []fr{{Err: ErrFraming}, {DialectOpenSIPS, "r", `{}`, nil}}},
		{"bad json after name goes to the dispatcher", ":r:nonsense\n:s:{}", []fr{{DialectOpenSIPS, "r", "nonsense", nil}, {DialectOpenSIPS, "s", `{}`, nil}}},
		{"incomplete waits", `:r:{"a":`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every split point must give the same frames.
			for split := 0; split <= len(tt.in); split++ {
				f := NewFramer(0)
				var got []fr
				for _, part := range []string{tt.in[:split], tt.in[split:]} {
					f.Write([]byte(part))
					for {
						x, ok := f.Next()
						if !ok {
							break
						}
						got = append(got, fr{x.Dialect, x.ReplyName, string(x.Body), x.Err})
					}
				}
				if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b error) bool { return errors.Is(a, b) })); diff != "" {
					t.Fatalf("split at %d (-want +got):\n%s", split, diff)
				}
			}
		})
	}
}

func TestFramerTooLarge(t *testing.T) {
	f := NewFramer(100)
	f.Write([]byte(":r:{\"a\":\"" + string(bytes.Repeat([]byte("x"), 200))))
	x, ok := f.Next()
	if !ok || !errors.Is(x.Err, ErrTooLarge) || f.Pending() != 0 {
		t.Fatalf("Next = %+v, %v; pending %d; want ErrTooLarge and an empty buffer", x, ok, f.Pending())
	}
	f.Write([]byte(":r:{}"))
	if x, ok := f.Next(); !ok || string(x.Body) != "{}" {
		t.Errorf("after overflow Next = %+v, %v", x, ok)
	}
}

func FuzzFramer(f *testing.F) {
	for _, s := range []string{pyOpenSIPS, kamctlLine, "::{}", ":a:{}\n{\"reply_name\":\"b\"}", "x\n:r:[", `:r:{"m":"}{\"}"}`} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, split uint8) {
		collect := func(parts ...[]byte) []Frame {
			fr := NewFramer(1 << 10)
			var out []Frame
			for _, p := range parts {
				fr.Write(p)
				for {
					x, ok := fr.Next()
					if !ok {
						break
					}
					out = append(out, x)
				}
			}
			if fr.Pending() > 1<<10 {
				t.Fatalf("pending %d over the limit", fr.Pending())
			}
			return out
		}
		whole := collect(in)
		k := int(split) % (len(in) + 1)
		parts := collect(in[:k], in[k:])
		for _, x := range whole {
			if x.Err == nil && x.Dialect == DialectKamailio && len(x.Body) > 0 && x.Body[0] != '{' && x.Body[0] != '[' {
				t.Fatalf("kamailio frame body %q", x.Body)
			}
		}
		// Frames that end before the split are independent of it: the
		// whole-buffer run must contain at least as many good frames.
		good := func(fs []Frame) (n int) {
			for _, x := range fs {
				if x.Err == nil {
					n++
				}
			}
			return n
		}
		if good(whole) == 0 && good(parts) > 0 && !bytes.Contains(in, []byte("\n")) {
			t.Fatalf("split run found frames the whole run did not: %q", in)
		}
	})
}
