package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestHumanTable renders replies recorded from the demo (testdata/*.json)
// for people and compares with golden files, at the default width (120,
// when stdout is not a terminal) and at 80. It also checks the rules
// themselves: no line over the width, IPs dotted (the reply carries IPv4
// addresses as integers), registration states named, no totals element.
func TestHumanTable(t *testing.T) {
	for _, tc := range []struct {
		cmd, file string
		width     int
	}{
		{"listcalls", "listcalls.json", 120},
		{"listcalls", "listcalls.json", 80},
		{"listregisters", "listregisters.json", 120},
	} {
		t.Run(tc.file+"@"+string(rune('0'+tc.width/40)), func(t *testing.T) {
			reply, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got := humanTable(tc.cmd, reply, nil, false, tc.width)
			for _, line := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
				if n := runeLen(line); n > tc.width {
					t.Errorf("line of %d characters, over %d: %q", n, tc.width, line)
				}
			}
			if strings.Contains(got, `"total"`) {
				t.Error("the totals element was printed")
			}
			// Every IPv4 integer of the reply appears dotted.
			var raw []json.RawMessage
			json.Unmarshal(reply, &raw)
			var header []string
			json.Unmarshal(raw[0], &header)
			for _, rr := range raw[1:] {
				var r []json.RawMessage
				json.Unmarshal(rr, &r)
				for i, h := range header {
					if (h == "callerip" || h == "calledip" || h == "sipcallerip") && i < len(r) {
						var n uint32
						if json.Unmarshal(r[i], &n) == nil && tc.width >= 120 {
							ip := make(net.IP, 4)
							binary.BigEndian.PutUint32(ip, n)
							if !strings.Contains(got, ip.String()) {
								t.Errorf("%s %d is not shown as %s", h, n, ip)
							}
						}
					}
				}
			}
			if tc.cmd == "listregisters" && (!strings.Contains(got, " OK ") || !strings.Contains(got, " Failed ")) {
				t.Errorf("states not named:\n%s", got)
			}
			golden := filepath.Join("testdata", strings.TrimSuffix(tc.file, ".json")+"."+itoa(tc.width)+".golden")
			if *update {
				os.WriteFile(golden, []byte(got), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if got != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestHumanTableColumns(t *testing.T) {
	reply, _ := os.ReadFile("testdata/listcalls.json")
	got := humanTable("listcalls", reply, []string{"callid", "src_received", "aloss_abs"}, false, 200)
	if h := headerLine(got); !strings.HasPrefix(h, "CALL-ID ") || !strings.Contains(h, " src_received ") || !strings.HasSuffix(h, "A→B LOST") {
		t.Errorf("header %q", h)
	}
	all := humanTable("listcalls", reply, nil, true, 0)
	var raw []json.RawMessage
	json.Unmarshal(reply, &raw)
	var header []string
	json.Unmarshal(raw[0], &header)
	if n := len(strings.Fields(headerLine(all))); n != len(header) {
		t.Errorf("--all shows %d columns, the reply has %d", n, len(header))
	}
	if humanTable("getversion", []byte("1.2.3"), nil, false, 120) != "1.2.3" {
		t.Error("a non-table reply must pass through")
	}
}

// TestHumanTableSniffer renders the replies the real VoIPmonitor sniffer
// gave (shared/peers/voipmonitor: 73 values per listcalls row for 68
// names, null texts, rrd_avg a float, ", [" before the registrations'
// totals) as it renders voipsensor's.
func TestHumanTableSniffer(t *testing.T) {
	dir := filepath.Join(sharedtest.Dir(t), "peers", "voipmonitor", "manager")
	for _, tc := range []struct {
		cmd, file string
		want      []string
	}{
		{"listcalls", "t10.listcalls.txt", []string{"CALL-ID", "10-1379@127.0.0.1", "sipp", "service", "answered", "PCMA", "4.5", "0.0%", "127.0.0.1"}},
		// Before RTP the sniffer sends callercodec -1 and calledcodec 0: no codec yet.
		{"listcalls", "t5.listcalls.txt", []string{"7-1379@127.0.0.1", "answered"}},
		{"listregisters", "t10.listregisters.txt", []string{"alice@127.0.0.1", "bob@127.0.0.1", " OK ", "127.0.0.1:5073", "4.0", "3.1", "sipp-lab-reg"}},
	} {
		reply, err := os.ReadFile(filepath.Join(dir, tc.file))
		if err != nil {
			sharedtest.Missing(t, "%v", err)
		}
		got := humanTable(tc.cmd, reply, nil, false, 120)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: no %q in\n%s", tc.file, w, got)
			}
		}
		if strings.Contains(got, "total") || strings.Contains(got, "PCMU") || strings.Contains(got, "null") {
			t.Errorf("%s: totals, a codec before RTP or a null shown:\n%s", tc.file, got)
		}
	}
}

// headerLine is the table's title line (after the date note, if any).
func headerLine(out string) string {
	lines := strings.Split(out, "\n")
	if strings.HasPrefix(lines[0], "Calls started on ") {
		return lines[1]
	}
	return lines[0]
}

func itoa(n int) string {
	b := []byte{}
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
