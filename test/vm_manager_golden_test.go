package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// This file compares the manager API replies of voipsensor with those the
// real VoIPmonitor sniffer 2026.04.0 gave on the same capture
// (shared/peers/voipmonitor/manager: t5.* and t10.*, 5 s and 10 s into a
// real-time replay of vm_sample_reg_10calls.pcap). It compares shapes:
// column names and order, row length, the JSON type of every cell, key
// order, separators, trailing newlines and fixed texts. The expected types
// of a listcalls row depend on which directions have RTP, so each row is
// checked against the sniffer's row of the same kind (t10 rows have RTP
// both ways, t5 rows none): these rules carry over to any capture, and the
// test applies them to two more. Values are compared only where they mean
// the same on both sides, on the sample, within the sniffer's replay lag
// (it is about a second behind the file).

// vmReplies holds the sniffer's recorded replies of one moment (t5, t10)
// by command, as the README of the recording names the files.
type vmReplies struct {
	moment  string
	byCmd   map[string][]byte
	callref string // what active_call_info was asked about
}

func loadVMReplies(t *testing.T, moment string) vmReplies {
	t.Helper()
	dir := filepath.Join(sharedtest.Dir(t), "peers", "voipmonitor", "manager")
	files, err := filepath.Glob(filepath.Join(dir, moment+".*.txt"))
	if err != nil || len(files) == 0 {
		sharedtest.Missing(t, "no recorded sniffer replies in %s", dir)
	}
	r := vmReplies{moment: moment, byCmd: map[string][]byte{}}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), moment+"."), ".txt")
		if strings.HasPrefix(name, "active_call_info_") {
			name = "active_call_info"
		}
		r.byCmd[name] = b
	}
	ref, err := os.ReadFile(filepath.Join(dir, moment+".callref"))
	if err != nil {
		t.Fatal(err)
	}
	r.callref = strings.TrimSpace(string(ref))
	return r
}

// The sniffer's command files, by the request they answer.
const (
	vmListCalls      = "listcalls"
	vmListCallsLimit = "listcalls___limit__2_"
	vmListRegisters  = "listregisters"
	vmHelp           = "help"
	vmThreads        = "sniffer_threads"
	vmStat           = "sniffer_stat"
	vmStatPlain      = "sniffer_stat_plain"
	vmTotalCalls     = "totalcalls"
	vmTotalRegs      = "totalregisters"
	vmVersion        = "getversion"
	vmUnknown        = "no_such_command_xyz"
	vmCallInfo       = "active_call_info"
)

// scoreboard counts the checks of one capture, shape and value apart.
type scoreboard struct {
	mu                      sync.Mutex
	shape, shapeOK          int
	values, valuesOK        int
	failedShape, failedVals []string
}

// check runs one named check; problems fail the test.
func (sb *scoreboard) check(t *testing.T, value bool, name string, problems []string) {
	t.Helper()
	sb.mu.Lock()
	defer sb.mu.Unlock()
	ok := len(problems) == 0
	if value {
		sb.values++
	} else {
		sb.shape++
	}
	switch {
	case ok && value:
		sb.valuesOK++
	case ok:
		sb.shapeOK++
	case value:
		sb.failedVals = append(sb.failedVals, name)
	default:
		sb.failedShape = append(sb.failedShape, name)
	}
	if !ok {
		if len(problems) > 12 {
			problems = append(problems[:12], fmt.Sprintf("… and %d more", len(problems)-12))
		}
		t.Errorf("%s:\n\t%s", name, strings.Join(problems, "\n\t"))
	}
}

func (sb *scoreboard) report(t *testing.T) {
	t.Helper()
	t.Logf("shape checks: %d of %d match; value checks: %d of %d match", sb.shapeOK, sb.shape, sb.valuesOK, sb.values)
	if len(sb.failedShape)+len(sb.failedVals) > 0 {
		t.Logf("differing: %s", strings.Join(append(sb.failedShape, sb.failedVals...), ", "))
	}
}

// kindOf is the JSON type of one value: null, bool, int, float, string,
// array or object (a number with a fraction or exponent is a float).
func kindOf(raw json.RawMessage) string {
	s := bytes.TrimSpace(raw)
	if len(s) == 0 {
		return "missing"
	}
	switch s[0] {
	case 'n':
		return "null"
	case 't', 'f':
		return "bool"
	case '"':
		return "string"
	case '[':
		return "array"
	case '{':
		return "object"
	}
	if bytes.ContainsAny(s, ".eE") {
		return "float"
	}
	return "int"
}

// member is one key of a JSON object, in document order.
type member struct {
	key string
	raw json.RawMessage
}

// objectMembers decodes a JSON object keeping the order of its keys.
func objectMembers(b []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object: %.60q", b)
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		out = append(out, member{tok.(string), raw})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("text after the object")
	}
	return out, nil
}

func memberKeys(ms []member) []string {
	keys := make([]string, len(ms))
	for i, m := range ms {
		keys[i] = m.key
	}
	return keys
}

// table is a decoded listcalls or listregisters reply.
type table struct {
	header []string
	totals []member // the totals element's object, nil without one
	rows   [][]json.RawMessage
}

// parseTable decodes [[header], [{totals}]?, [cells]…].
func parseTable(b []byte) (table, error) {
	var top []json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return table{}, fmt.Errorf("reply %.80q: %v", b, err)
	}
	var tb table
	if len(top) == 0 || json.Unmarshal(top[0], &tb.header) != nil {
		return table{}, fmt.Errorf("no header in %.80q", b)
	}
	for i, el := range top[1:] {
		var cells []json.RawMessage
		if err := json.Unmarshal(el, &cells); err != nil {
			return table{}, fmt.Errorf("element %d: %v", i+1, err)
		}
		if i == 0 && len(cells) == 1 && kindOf(cells[0]) == "object" {
			ms, err := objectMembers(cells[0])
			if err != nil {
				return table{}, err
			}
			tb.totals = ms
			continue
		}
		tb.rows = append(tb.rows, cells)
	}
	return tb, nil
}

// cell returns row r's value of column name ("missing" kind if absent).
func (tb table) cell(r []json.RawMessage, name string) json.RawMessage {
	i := slices.Index(tb.header, name)
	if i < 0 || i >= len(r) {
		return nil
	}
	return r[i]
}

func (tb table) str(r []json.RawMessage, name string) string {
	var s string
	json.Unmarshal(tb.cell(r, name), &s)
	return s
}

func (tb table) num(r []json.RawMessage, name string) (float64, bool) {
	var f float64
	if err := json.Unmarshal(tb.cell(r, name), &f); err != nil || kindOf(tb.cell(r, name)) == "null" {
		return 0, false
	}
	return f, true
}

// rowByCallID finds the row of a Call-ID.
func (tb table) rowByCallID(id string) []json.RawMessage {
	for _, r := range tb.rows {
		if tb.str(r, "callid") == id {
			return r
		}
	}
	return nil
}

// callRules are the sniffer's listcalls row types: with RTP in both
// directions (its t10 rows) and in none (its t5 rows).
type callRules struct {
	header     []string
	rowLen     int
	both, none []string // kinds per position, rowLen long
}

func newCallRules(t *testing.T, t5, t10 vmReplies) callRules {
	t.Helper()
	a, err := parseTable(t10.byCmd[vmListCalls])
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseTable(t5.byCmd[vmListCalls])
	if err != nil {
		t.Fatal(err)
	}
	cr := callRules{header: a.header, rowLen: len(a.rows[0])}
	for _, r := range a.rows[0] {
		cr.both = append(cr.both, kindOf(r))
	}
	for _, r := range b.rows[0] {
		cr.none = append(cr.none, kindOf(r))
	}
	if !slices.Equal(a.header, b.header) || len(b.rows[0]) != cr.rowLen {
		t.Fatalf("the recorded t5 and t10 listcalls disagree on their header or row length")
	}
	return cr
}

// textColumns are the listcalls columns the sniffer fills from a C string:
// null when the string is empty, never "".
var textColumns = map[string]bool{
	"caller": true, "called": true, "callername": true, "callerdomain": true, "calleddomain": true,
	"calleragent": true, "calledagent": true, "sipproxies": true,
}

// expect returns the kind the sniffer gives column i of a row whose
// caller→called direction has RTP (src) and called→caller (dst), and
// whether a null also fits (text columns).
func (cr callRules) expect(i int, src, dst bool) (kind string, orNull bool) {
	name := ""
	if i < len(cr.header) {
		name = cr.header[i]
	}
	present := src && dst
	switch {
	case strings.HasPrefix(name, "src_"):
		present = src
	case strings.HasPrefix(name, "dst_"):
		present = dst
	case name == "rtp_src" || name == "rtp_dst":
		present = src || dst
	}
	k := cr.none[i]
	if present {
		k = cr.both[i]
	}
	if textColumns[name] {
		return "string", true
	}
	return k, false
}

// rowProblems checks one listcalls row (or active_call_info call object as
// cells in header order) against the rules.
func (cr callRules) rowProblems(tb table, r []json.RawMessage, withTail bool) []string {
	var out []string
	want := len(cr.header)
	if withTail {
		want = cr.rowLen
	}
	if len(r) != want {
		out = append(out, fmt.Sprintf("row of %s has %d values, want %d", tb.str(r, "callid"), len(r), want))
	}
	src := kindOf(tb.cell(r, "src_received")) != "null"
	dst := kindOf(tb.cell(r, "dst_received")) != "null"
	for i := range min(len(r), cr.rowLen) {
		k, orNull := cr.expect(i, src, dst)
		got := kindOf(r[i])
		name := fmt.Sprintf("#%d", i)
		if i < len(cr.header) {
			name = cr.header[i]
		}
		if got != k && !(orNull && got == "null") {
			out = append(out, fmt.Sprintf("%s: %s is %s (%s), want %s (rtp src %v dst %v)", tb.str(r, "callid"), name, got, r[i], k, src, dst))
		}
		if got == "string" && string(r[i]) == `""` {
			out = append(out, fmt.Sprintf("%s: %s is \"\", the sniffer sends null for an empty text", tb.str(r, "callid"), name))
		}
	}
	return out
}

// managerAsk sends one request line over the manager unix socket as
// `printf 'CMD\r\n' | nc -N` does and returns the whole reply.
func managerAsk(t *testing.T, sock, line string) []byte {
	t.Helper()
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", sock, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, line+"\r\n"); err != nil {
		t.Fatal(err)
	}
	c.(*net.UnixConn).CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reply to %q: %v", line, err)
	}
	return b
}

// pollUntil polls cond every 50 ms until it holds (true) or the deadline
// passes (false).
func pollUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// waitFor is pollUntil that fails the test at the deadline.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	if !pollUntil(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// replies is one moment's voipsensor replies.
type replies map[string][]byte

// askAll sends every command the sniffer was asked (and a few more), as
// close together as it can.
func askAll(t *testing.T, sock string) replies {
	t.Helper()
	r := replies{}
	r[vmListCalls] = managerAsk(t, sock, "listcalls")
	r[vmListCallsLimit] = managerAsk(t, sock, `listcalls {"limit":2}`)
	r["leading_space"] = managerAsk(t, sock, " listcalls")
	r[vmListRegisters] = managerAsk(t, sock, "listregisters")
	r[vmTotalCalls] = managerAsk(t, sock, "totalcalls")
	r[vmTotalRegs] = managerAsk(t, sock, "totalregisters")
	r[vmStat] = managerAsk(t, sock, "sniffer_stat")
	r[vmStatPlain] = managerAsk(t, sock, "sniffer_stat plain")
	r[vmThreads] = managerAsk(t, sock, "sniffer_threads")
	r[vmHelp] = managerAsk(t, sock, "help")
	r[vmVersion] = managerAsk(t, sock, "getversion")
	r[vmUnknown] = managerAsk(t, sock, "no_such_command_xyz")
	r["active_call_info_noarg"] = managerAsk(t, sock, "active_call_info")
	r["active_call_info_unknown"] = managerAsk(t, sock, "active_call_info 0x7fffffffffff")
	return r
}

// callInfoFor asks active_call_info about the row of callID (or the
// first row).
func callInfoFor(t *testing.T, sock string, lc table, callID string) []byte {
	t.Helper()
	row := lc.rowByCallID(callID)
	if row == nil && len(lc.rows) > 0 {
		row = lc.rows[0]
	}
	if row == nil {
		return nil
	}
	return managerAsk(t, sock, "active_call_info "+lc.str(row, "callreference"))
}

func TestVMManagerGolden(t *testing.T) {
	t5, t10 := loadVMReplies(t, "t5"), loadVMReplies(t, "t10")
	rules := newCallRules(t, t5, t10)

	t.Run("vm_sample_reg_10calls", func(t *testing.T) {
		t.Parallel()
		sb := &scoreboard{}
		defer sb.report(t)
		sock := startGoldenDaemon(t, "vm_sample_reg_10calls.pcap")
		started := time.Now()
		// Each moment: once voipsensor has seen what the sniffer had (its
		// calls, the capture second of its newest packet, as many RTP
		// packets per call): t5 is 7 calls at 4.7 s into the file, t10 10
		// calls at about 9.4 s. The sniffer lags the file, so voipsensor is
		// then ahead of it, never behind. t10 must come before the first
		// BYE (10.7 s), which ends a call.
		for _, m := range []struct {
			ref      vmReplies
			deadline time.Duration
		}{{t5, 9 * time.Second}, {t10, 10500 * time.Millisecond}} {
			ref := m.ref
			want, _ := parseTable(ref.byCmd[vmListCalls])
			var asked struct {
				Call struct {
					CallID string `json:"callid"`
				} `json:"call"`
			}
			json.Unmarshal(ref.byCmd[vmCallInfo], &asked)
			reached := pollUntil(time.Until(started.Add(m.deadline)), func() bool {
				lc, err := parseTable(managerAsk(t, sock, "listcalls"))
				if err != nil || len(lc.rows) < len(want.rows) || newestPacket(lc) < newestPacket(want) {
					return false
				}
				for _, w := range want.rows {
					g := lc.rowByCallID(want.str(w, "callid"))
					for _, c := range []string{"src_received", "dst_received"} {
						a, _ := want.num(w, c)
						if b, _ := lc.num(g, c); g == nil || b < a {
							return false
						}
					}
				}
				return true
			})
			// Never reaching the sniffer's progress is a value difference:
			// compare what there is.
			sb.check(t, true, ref.moment+" progress reached", map[bool][]string{false: {"voipsensor never showed the sniffer's calls and packets"}}[reached])
			got := askAll(t, sock)
			lc, _ := parseTable(got[vmListCalls])
			got[vmCallInfo] = callInfoFor(t, sock, lc, asked.Call.CallID)
			compareMoment(t, sb, rules, ref, got, true)
		}
	})

	// Other captures: the same shape rules, no recorded values.
	for _, c := range []struct {
		pcap string
		// ready tells when the moment to compare has come.
		ready func(lc table) bool
		calls int
	}{
		// Through a proxy (sipproxies), two registrations: once the first
		// call has RTP both ways.
		{"sipp_kamailio.pcap", func(lc table) bool { return anyRow(lc, bothRTP) }, 1},
		// A 20 s call: once its first 10 s MOS interval has closed.
		{"baresip_rtcp.pcap", func(lc table) bool {
			return anyRow(lc, func(lc table, r []json.RawMessage) bool {
				n, _ := lc.num(r, "src_mosf1_avg")
				return n > 0
			})
		}, 1},
	} {
		t.Run(strings.TrimSuffix(c.pcap, ".pcap"), func(t *testing.T) {
			t.Parallel()
			sb := &scoreboard{}
			defer sb.report(t)
			sock := startGoldenDaemon(t, c.pcap)
			waitFor(t, "the moment to compare", 25*time.Second, func() bool {
				lc, err := parseTable(managerAsk(t, sock, "listcalls"))
				return err == nil && c.ready(lc)
			})
			got := askAll(t, sock)
			lc, _ := parseTable(got[vmListCalls])
			got[vmCallInfo] = callInfoFor(t, sock, lc, "")
			compareMoment(t, sb, rules, t10, got, false)
		})
	}
}

// newestPacket is the latest lastpackettime of a listing.
func newestPacket(lc table) float64 {
	var n float64
	for _, r := range lc.rows {
		if v, ok := lc.num(r, "lastpackettime"); ok && v > n {
			n = v
		}
	}
	return n
}

func bothRTP(lc table, r []json.RawMessage) bool {
	return kindOf(lc.cell(r, "src_received")) != "null" && kindOf(lc.cell(r, "dst_received")) != "null"
}

func anyRow(lc table, f func(table, []json.RawMessage) bool) bool {
	for _, r := range lc.rows {
		if f(lc, r) {
			return true
		}
	}
	return false
}

// startGoldenDaemon replays a shared capture in real time with the manager
// on a unix socket, in UTC (the sniffer was recorded with utc = yes).
func startGoldenDaemon(t *testing.T, pcap string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "manager.sock")
	d := newDaemon(t, "-r", sharedtest.Pcap(t, pcap), "--realtime", "-set", "managersocket="+sock)
	d.cmd.Env = append(os.Environ(), "TZ=UTC")
	startDaemonFrom(t, d)
	return sock
}

// compareMoment runs every check of one moment: got are voipsensor's
// replies, ref the sniffer's; withValues compares values too (same
// capture).
func compareMoment(t *testing.T, sb *scoreboard, rules callRules, ref vmReplies, got replies, withValues bool) {
	t.Helper()
	m := ref.moment + " "
	shape := func(name string, p []string) { t.Helper(); sb.check(t, false, m+name, p) }
	value := func(name string, p []string) { t.Helper(); sb.check(t, true, m+name, p) }

	// Trailing newline (or none) of every reply, as the sniffer's.
	var nl []string
	for _, cmd := range []string{vmListCalls, vmListCallsLimit, vmListRegisters, vmTotalCalls, vmTotalRegs, vmStat,
		vmStatPlain, vmThreads, vmHelp, vmVersion, vmUnknown, vmCallInfo} {
		want, have := ref.byCmd[cmd], got[cmd]
		if len(want) == 0 {
			continue
		}
		if len(have) == 0 || (have[len(have)-1] == '\n') != (want[len(want)-1] == '\n') {
			nl = append(nl, fmt.Sprintf("%s ends %q, the sniffer's ends %q", cmd, tail(have), tail(want)))
		}
	}
	shape("trailing newlines", nl)

	// listcalls: header, row length, cell types.
	refLC, _ := parseTable(ref.byCmd[vmListCalls])
	lc, err := parseTable(got[vmListCalls])
	if err != nil {
		shape("listcalls parses", []string{err.Error()})
		return
	}
	shape("listcalls header", diffStrings(lc.header, refLC.header))
	var p []string
	if lc.totals != nil {
		p = append(p, "a totals element without parameters")
	}
	if len(lc.rows) == 0 {
		p = append(p, "no rows to compare")
	}
	for _, r := range lc.rows {
		if len(r) != rules.rowLen {
			p = append(p, fmt.Sprintf("row %s has %d values, the sniffer's %d", lc.str(r, "callid"), len(r), rules.rowLen))
		}
	}
	shape("listcalls row length", p)
	p = nil
	for _, r := range lc.rows {
		p = append(p, rules.rowProblems(lc, r, true)...)
	}
	shape("listcalls cell types", p)

	// {"limit":2}: the totals element, its keys and types, at most 2 rows.
	refLim, _ := parseTable(ref.byCmd[vmListCallsLimit])
	lim, err := parseTable(got[vmListCallsLimit])
	p = nil
	if err != nil {
		p = append(p, err.Error())
	} else {
		p = append(p, totalsProblems(lim.totals, refLim.totals)...)
		if len(lim.rows) > 2 {
			p = append(p, fmt.Sprintf("%d rows for limit 2", len(lim.rows)))
		}
		for i := 1; i < len(lim.rows); i++ {
			a, _ := lim.num(lim.rows[i-1], "calldate_num")
			b, _ := lim.num(lim.rows[i], "calldate_num")
			if a < b {
				p = append(p, "rows not newest first")
			}
		}
	}
	shape(`listcalls {"limit":2}`, p)

	// " listcalls": the sniffer takes the command by substring and its
	// parameter text is then not empty, so the totals element comes.
	ls, err := parseTable(got["leading_space"])
	p = nil
	if err != nil {
		p = append(p, err.Error())
	} else {
		p = append(p, totalsProblems(ls.totals, refLim.totals)...)
		if len(ls.rows) != len(lc.rows) {
			p = append(p, fmt.Sprintf("%d rows, plain listcalls %d", len(ls.rows), len(lc.rows)))
		}
	}
	shape(`" listcalls" (leading space)`, p)

	// active_call_info: key order, the call object as a listcalls row,
	// the sip_packets text, rtp_streams members and types.
	shape("active_call_info shape", callInfoProblems(rules, ref.byCmd[vmCallInfo], got[vmCallInfo]))
	shape("active_call_info without an argument", exact(got["active_call_info_noarg"], "call not found"))
	shape("active_call_info of an unknown call", exact(got["active_call_info_unknown"], "call not found"))

	// listregisters: the separator after the header, types, order.
	shape("listregisters shape", registersProblems(ref.byCmd[vmListRegisters], got[vmListRegisters]))

	// Fixed texts and layouts.
	shape("help layout", helpProblems(ref.byCmd[vmHelp], got[vmHelp]))
	shape("sniffer_threads layout", threadsProblems(got[vmThreads]))
	shape("sniffer_stat keys and separators", statProblems(ref.byCmd[vmStat], got[vmStat]))
	shape("sniffer_stat pbStatString", statStringProblems(t10StatString(t), got[vmStat]))
	shape("sniffer_stat plain keys", plainProblems(ref.byCmd[vmStatPlain], got[vmStatPlain]))
	shape("unknown command", exact(got[vmUnknown], string(ref.byCmd[vmUnknown])))
	p = nil
	for _, cmd := range []string{vmTotalCalls, vmTotalRegs} {
		if !regexp.MustCompile(`^[0-9]+$`).Match(got[cmd]) {
			p = append(p, fmt.Sprintf("%s = %q, want digits alone", cmd, got[cmd]))
		}
	}
	if !regexp.MustCompile(`^[0-9][0-9A-Za-z.+-]*$`).Match(got[vmVersion]) {
		p = append(p, fmt.Sprintf("getversion = %q, want a version alone", got[vmVersion]))
	}
	shape("totalcalls, totalregisters, getversion", p)

	if !withValues {
		return
	}
	value("totalcalls, totalregisters", valueCounts(ref, got))
	value("listcalls values", callValueProblems(refLC, lc))
	value("listregisters values", registerValueProblems(ref.byCmd[vmListRegisters], got[vmListRegisters]))
	// Progress is compared only where the sniffer's listing had the
	// call's RTP (at t5 it had none yet, but active_call_info did).
	var asked struct {
		Call struct {
			CallID string `json:"callid"`
		} `json:"call"`
	}
	json.Unmarshal(ref.byCmd[vmCallInfo], &asked)
	progress := refLC.rowByCallID(asked.Call.CallID) != nil && bothRTP(refLC, refLC.rowByCallID(asked.Call.CallID))
	value("active_call_info rtp_streams values", streamValueProblems(ref.byCmd[vmCallInfo], got[vmCallInfo], progress))
}

func tail(b []byte) string {
	if len(b) > 3 {
		b = b[len(b)-3:]
	}
	return string(b)
}

func exact(got []byte, want string) []string {
	if string(got) != want {
		return []string{fmt.Sprintf("got %q, want %q", got, want)}
	}
	return nil
}

func diffStrings(got, want []string) []string {
	if slices.Equal(got, want) {
		return nil
	}
	var p []string
	for i := range max(len(got), len(want)) {
		g, w := "(none)", "(none)"
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			p = append(p, fmt.Sprintf("position %d: %s, want %s", i, g, w))
		}
	}
	return p
}

func totalsProblems(got, want []member) []string {
	if got == nil {
		return []string{"no totals element"}
	}
	var p []string
	p = append(p, diffStrings(memberKeys(got), memberKeys(want))...)
	for i := range min(len(got), len(want)) {
		if kindOf(got[i].raw) != kindOf(want[i].raw) {
			p = append(p, fmt.Sprintf("totals %s is %s, want %s", got[i].key, kindOf(got[i].raw), kindOf(want[i].raw)))
		}
	}
	return p
}

// callInfoProblems compares the shape of an active_call_info reply.
func callInfoProblems(rules callRules, want, got []byte) []string {
	gm, err := objectMembers(got)
	if err != nil {
		return []string{fmt.Sprintf("reply %.80q: %v", got, err)}
	}
	wm, _ := objectMembers(want)
	p := diffStrings(memberKeys(gm), memberKeys(wm))
	for _, m := range gm {
		switch m.key {
		case "call":
			cm, err := objectMembers(m.raw)
			if err != nil {
				p = append(p, "call: "+err.Error())
				continue
			}
			p = append(p, diffStrings(memberKeys(cm), rules.header)...)
			tb := table{header: memberKeys(cm)}
			row := make([]json.RawMessage, len(cm))
			for i, c := range cm {
				row[i] = c.raw
			}
			p = append(p, rules.rowProblems(tb, row, false)...)
		case "sip_packets":
			for _, w := range wm {
				if w.key == m.key && kindOf(m.raw) == "string" && !bytes.Equal(w.raw, m.raw) {
					p = append(p, fmt.Sprintf("sip_packets %s, want %s", m.raw, w.raw))
				}
			}
		case "rtp_streams":
			var gs, ws []json.RawMessage
			json.Unmarshal(m.raw, &gs)
			for _, w := range wm {
				if w.key == m.key {
					json.Unmarshal(w.raw, &ws)
				}
			}
			if len(gs) == 0 || len(ws) == 0 {
				p = append(p, fmt.Sprintf("rtp_streams: %d streams, the sniffer's %d", len(gs), len(ws)))
				continue
			}
			ref, _ := objectMembers(ws[0])
			for _, s := range gs {
				sm, err := objectMembers(s)
				if err != nil {
					p = append(p, "rtp stream: "+err.Error())
					continue
				}
				p = append(p, diffStrings(memberKeys(sm), memberKeys(ref))...)
				for i := range min(len(sm), len(ref)) {
					gk, wk := kindOf(sm[i].raw), kindOf(ref[i].raw)
					if strings.HasPrefix(sm[i].key, "jitter") && (gk == "int" || gk == "float") {
						continue // %g: 0 has no fraction
					}
					if gk != wk {
						p = append(p, fmt.Sprintf("rtp stream %s is %s (%s), want %s", sm[i].key, gk, sm[i].raw, wk))
					}
				}
				for _, k := range []string{"time", "time_last"} {
					for _, f := range sm {
						if v, _ := strconv.ParseFloat(string(f.raw), 64); f.key == k && (v < 1e15 || v > 1e17) {
							p = append(p, fmt.Sprintf("rtp stream %s = %s, want microseconds", k, f.raw))
						}
					}
				}
				for _, f := range sm {
					if strings.HasPrefix(f.key, "jitter") && significantDigits(string(f.raw)) > 6 {
						p = append(p, fmt.Sprintf("rtp stream %s = %s, want at most 6 significant digits", f.key, f.raw))
					}
				}
			}
		}
	}
	return p
}

// significantDigits counts the significant digits of a JSON number.
func significantDigits(n string) int {
	n, _, _ = strings.Cut(strings.ToLower(strings.TrimPrefix(n, "-")), "e")
	n = strings.TrimLeft(strings.Replace(n, ".", "", 1), "0")
	if strings.Contains(n, ".") {
		return 99
	}
	return len(n)
}

// registersProblems compares the shape of listregisters replies.
func registersProblems(want, got []byte) []string {
	var p []string
	if bytes.Count(got, []byte("],")) == 0 {
		// No registrations: the header alone, as the sniffer writes it.
		if !regexp.MustCompile(`^\[\[("[a-z_A-Z]+",?)+\]\]$`).Match(got) {
			p = append(p, fmt.Sprintf("without registrations %.60q…, want [[header]]", got))
		}
		wt, _ := parseTable(want)
		gt, _ := parseTable(got)
		return append(p, diffStrings(gt.header, wt.header)...)
	}
	hdrEnd := bytes.Index(want, []byte("], ["))
	if hdrEnd < 0 {
		return []string{"the recorded reply has no totals separator"}
	}
	sep := regexp.MustCompile(`^\[\[[^\]]*\], \[\{"total": [0-9]+\}\],\[`)
	if !sep.Match(got) {
		p = append(p, fmt.Sprintf("does not start like the sniffer's [[header], [{\"total\": N}],[…: %.40q…", got[min(len(got), hdrEnd-20):]))
	}
	wt, err := parseTable(want)
	if err != nil {
		return append(p, err.Error())
	}
	gt, err := parseTable(got)
	if err != nil {
		return append(p, err.Error())
	}
	p = append(p, diffStrings(gt.header, wt.header)...)
	p = append(p, totalsProblems(gt.totals, wt.totals)...)
	if len(gt.rows) == 0 {
		return append(p, "no registrations")
	}
	textOrNull := map[string]bool{"from_num": true, "from_name": true, "from_domain": true, "to_num": true, "to_domain": true,
		"contact_num": true, "contact_domain": true, "digestusername": true, "digestrealm": true, "ua": true}
	for _, r := range gt.rows {
		if len(r) != len(wt.rows[0]) {
			p = append(p, fmt.Sprintf("row of %d values, want %d", len(r), len(wt.rows[0])))
		}
		for i := range min(len(r), len(wt.rows[0])) {
			g, w := kindOf(r[i]), kindOf(wt.rows[0][i])
			name := gt.header[min(i, len(gt.header)-1)]
			if textOrNull[name] && (g == "string" || g == "null") && (w == "string" || w == "null") {
				if string(r[i]) == `""` {
					p = append(p, fmt.Sprintf("%s is \"\", the sniffer sends null for an empty text", name))
				}
				continue
			}
			if g != w {
				p = append(p, fmt.Sprintf("%s is %s (%s), want %s", name, g, r[i], w))
			}
		}
	}
	// The sniffer's register map order: to_num, then to_domain, without case.
	for i := 1; i < len(gt.rows); i++ {
		a := strings.ToLower(gt.str(gt.rows[i-1], "to_num") + "\x00" + gt.str(gt.rows[i-1], "to_domain"))
		b := strings.ToLower(gt.str(gt.rows[i], "to_num") + "\x00" + gt.str(gt.rows[i], "to_domain"))
		if a > b {
			p = append(p, fmt.Sprintf("row %d (%q) before %q: not in to_num, to_domain order", i, a, b))
		}
	}
	return p
}

var helpEntry = regexp.MustCompile(`^(\S+) \.\.\. (.*)\.$`)

func helpProblems(want, got []byte) []string {
	var p []string
	const head = "List of commands:\n\n"
	if !bytes.HasPrefix(got, []byte(head)) {
		p = append(p, fmt.Sprintf("starts %.30q, want %q", got, head))
	}
	if !bytes.HasPrefix(want, []byte(head)) {
		p = append(p, "the recording does not start with the header")
	}
	body := strings.TrimPrefix(string(got), head)
	if !strings.HasSuffix(body, ".\n\n") {
		p = append(p, fmt.Sprintf("ends %q, want an entry ending \".\\n\\n\"", tail([]byte(body))))
	}
	n := 0
	for _, e := range strings.Split(strings.TrimSuffix(body, "\n\n"), "\n\n") {
		if !helpEntry.MatchString(e) {
			p = append(p, fmt.Sprintf("entry %q is not \"name ... text.\"", e))
		}
		n++
	}
	if n < 10 {
		p = append(p, fmt.Sprintf("only %d commands", n))
	}
	return p
}

// threadLine is one sniffer_threads line: the description padded to 45,
// the tid right-aligned in 7, the CPU in %5.1f, then the scheduling (11
// columns: blank, "nice" padded, or "policy prio") and the context
// switches in 8 and 8 with the ratio in %7.3f (or 10 blanks).
var threadLine = regexp.MustCompile(`^.{45} \([ 0-9]{7}\) : [ 0-9.]{4}[0-9](?: {11}|  [-0-9 ]{5} {4}|  [a-z ]{5} [ 0-9]{3})  [ 0-9]{7}[0-9] / [ 0-9]{7}[0-9](?: / [ 0-9.]{6}[0-9]| {10})$`)

func threadsProblems(got []byte) []string {
	var p []string
	lines := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
	last := lines[len(lines)-1]
	if !regexp.MustCompile(`^CPU ALL : [ 0-9.]{4}[0-9]$`).MatchString(last) {
		p = append(p, fmt.Sprintf("last line %q, want \"CPU ALL : \" and a figure in 5 columns", last))
	}
	for _, l := range lines[:len(lines)-1] {
		if l != "" && !threadLine.MatchString(l) {
			p = append(p, fmt.Sprintf("line %q is not in the sniffer's fixed-width layout", l))
		}
	}
	return p
}

// statObject splits the sniffer_stat text object into keys and raw values
// as written (the sniffer writes `"key": value` pairs without escaping).
var statPair = regexp.MustCompile(`"([^"]+)": ("[^"]*"|null|true|false|[0-9]+)`)

func statProblems(want, got []byte) []string {
	var p []string
	if !bytes.HasPrefix(got, []byte(`{"`)) || !bytes.HasSuffix(got, []byte("}\n")) {
		p = append(p, fmt.Sprintf("not {…}\\n: %.40q", got))
	}
	keys := func(b []byte) []string {
		var ks []string
		for _, m := range statPair.FindAllSubmatch(b, -1) {
			if string(m[1]) != "initializing" { // only while the sniffer starts
				ks = append(ks, string(m[1]))
			}
		}
		return ks
	}
	p = append(p, diffStrings(keys(got), keys(want))...)
	if n := len(statPair.FindAll(got, -1)); strings.Count(string(got), `": `) != n {
		p = append(p, "a member not written as \"key\": value")
	}
	return p
}

// t10StatString is the sniffer's pbStatString at t10 (t5's is empty).
func t10StatString(t *testing.T) string {
	r := loadVMReplies(t, "t10").byCmd[vmStat]
	m := regexp.MustCompile(`"pbStatString": "([^"]*)"`).FindSubmatch(r)
	if m == nil {
		t.Fatalf("no pbStatString in the recording")
	}
	return string(m[1])
}

// statToken is one pbStatString token: a name (possibly empty, for the
// traffic figure; a leading * marks LA over the CPU count) and brackets.
var statToken = regexp.MustCompile(`(\*?[A-Za-z/_0-9]*)\[[^\]]*\](?:\[[^\]]*\])?[A-Za-z/]* `)

func statStringProblems(want string, got []byte) []string {
	m := regexp.MustCompile(`"pbStatString": "([^"]*)"`).FindSubmatch(got)
	if m == nil {
		return []string{"no pbStatString"}
	}
	s := string(m[1])
	if s == "" {
		return nil // still starting, as the sniffer's t5
	}
	names := func(s string) []string {
		var out []string
		for _, t := range statToken.FindAllStringSubmatch(s, -1) {
			out = append(out, strings.TrimPrefix(t[1], "*"))
		}
		return out
	}
	var p []string
	// voipsensor may add tokens of its own, but the sniffer's must all be
	// there, in its order.
	gn, wn := names(s), names(want)
	j := 0
	for _, n := range gn {
		if j < len(wn) && n == wn[j] {
			j++
		}
	}
	if j < len(wn) {
		p = append(p, fmt.Sprintf("tokens %v lack the sniffer's %v in its order (from %q on)", gn, wn, wn[j]))
	}
	if !strings.HasSuffix(s, " ") {
		p = append(p, "no trailing space")
	}
	if !regexp.MustCompile(` \*?LA\[[0-9]+\.[0-9]{2} [0-9]+\.[0-9]{2} [0-9]+\.[0-9]{2}\|[0-9]+h?\] `).MatchString(s) {
		p = append(p, fmt.Sprintf("no LA[a b c|Nh] token in %q", s))
	}
	if !regexp.MustCompile(`^calls\[[0-9]+,r:[0-9]+\]\[[0-9]+,r:[0-9]+\] `).MatchString(s) {
		p = append(p, fmt.Sprintf("does not start with calls[N,r:N][N,r:N]: %q", s))
	}
	if !regexp.MustCompile(` v[^ ]+ $`).MatchString(s) {
		p = append(p, "does not end with the version and a space")
	}
	return p
}

func plainProblems(want, got []byte) []string {
	keys := func(b []byte) []string {
		var ks []string
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			k, _, _ := strings.Cut(l, "=")
			if k != "initializing" {
				ks = append(ks, k)
			}
		}
		return ks
	}
	// The pbStatString keys vary with the sensor's state; compare the
	// object's own keys around them.
	fixed := func(ks []string) []string {
		own := map[string]bool{"version": true, "build": true, "rrd_version": true, "storingCdrLastWriteAt": true,
			"pbCountPacketDrop": true, "uptime": true, "memory_is_full": true, "count_live_sniffers": true,
			"upgrade_by_git": true, "use_new_config": true, "terminating_error": true, "disk_io": true}
		var out []string
		for _, k := range ks {
			if own[k] {
				out = append(out, k)
			}
		}
		return out
	}
	return diffStrings(fixed(keys(got)), fixed(keys(want)))
}

// valueCounts compares totalcalls and totalregisters with the sniffer's.
func valueCounts(ref vmReplies, got replies) []string {
	var p []string
	for _, cmd := range []string{vmTotalCalls, vmTotalRegs} {
		w, _ := strconv.Atoi(string(ref.byCmd[cmd]))
		g, _ := strconv.Atoi(string(got[cmd]))
		// The sniffer is about a second behind: one call more is the lag.
		if g < w || g > w+2 {
			p = append(p, fmt.Sprintf("%s = %d, the sniffer %d", cmd, g, w))
		}
	}
	return p
}

// sameMeaning are the listcalls columns whose values mean the same in both
// (per call); rtpSame those that do once both have the call's RTP.
var (
	sameMeaning = []string{"callid", "calldate", "calldate_num", "caller", "called", "caller_country", "called_country",
		"caller_international", "called_international", "callername", "callerdomain", "calleddomain", "calleragent",
		"calledagent", "callerip", "calledip", "callerip_country", "calledip_country", "callerip_encaps", "calledip_encaps",
		"callerip_encaps_prot", "calledip_encaps_prot", "sipproxies", "lastSIPresponseNum", "id_sensor", "vlan"}
	rtpSame = []string{"rtp_src", "rtp_dst", "callercodec", "calledcodec",
		"src_mosf1", "src_mosf1_avg", "src_mosf1_min", "src_mosf2", "src_mosf2_avg", "src_mosf2_min", "src_mosAD", "src_mosAD_avg", "src_mosAD_min",
		"dst_mosf1", "dst_mosf1_avg", "dst_mosf1_min", "dst_mosf2", "dst_mosf2_avg", "dst_mosf2_min", "dst_mosAD", "dst_mosAD_avg", "dst_mosAD_min",
		"src_loss_abs", "dst_loss_abs", "src_loss", "dst_loss", "src_loss_last10sec", "dst_loss_last10sec"}
)

func callValueProblems(want, got table) []string {
	var p []string
	seen := 0
	for _, w := range want.rows {
		id := want.str(w, "callid")
		g := got.rowByCallID(id)
		if g == nil {
			p = append(p, fmt.Sprintf("call %s missing", id))
			continue
		}
		seen++
		cols := sameMeaning
		if bothRTP(want, w) && bothRTP(got, g) {
			cols = append(slices.Clip(cols), rtpSame...)
			// The average jitter is the sniffer's definition on both
			// sides, a second apart: once a stream has 100 packets it moves
			// slowly.
			for _, d := range []string{"src_", "dst_"} {
				a, _ := want.num(w, d+"jitter_avg")
				b, _ := got.num(g, d+"jitter_avg")
				if n, _ := want.num(w, d+"received"); n >= 100 && math.Abs(a-b) > 0.25 {
					p = append(p, fmt.Sprintf("%s %sjitter_avg = %v, the sniffer %v", id, d, b, a))
				}
			}
			for _, c := range []string{"src_received", "dst_received"} {
				a, _ := want.num(w, c)
				b, _ := got.num(g, c)
				if b < a || b > a+200 { // 50 packets/s, up to 4 s apart
					p = append(p, fmt.Sprintf("%s %s = %v, the sniffer %v", id, c, b, a))
				}
			}
		}
		for _, c := range cols {
			a, b := want.cell(w, c), got.cell(g, c)
			if !bytes.Equal(a, b) {
				p = append(p, fmt.Sprintf("%s %s = %s, the sniffer %s", id, c, b, a))
			}
		}
		// Last packet and durations: within the lag. The durations run on
		// the sniffer's clock, which is ahead of its packet figures (they
		// lag the file): one second less is the same moment.
		for _, c := range []string{"lastpackettime", "duration", "connect_duration"} {
			a, _ := want.num(w, c)
			b, _ := got.num(g, c)
			if b < a-1 || b > a+5 || c == "lastpackettime" && b < a {
				p = append(p, fmt.Sprintf("%s %s = %v, the sniffer %v", id, c, b, a))
			}
		}
	}
	if seen == 0 {
		p = append(p, "no call in common")
	}
	return p
}

func registerValueProblems(want, got []byte) []string {
	wt, err1 := parseTable(want)
	gt, err2 := parseTable(got)
	if err1 != nil || err2 != nil {
		return []string{fmt.Sprint(err1, err2)}
	}
	var p []string
	if len(gt.rows) != len(wt.rows) {
		p = append(p, fmt.Sprintf("%d rows, the sniffer %d", len(gt.rows), len(wt.rows)))
	}
	for i := range min(len(gt.rows), len(wt.rows)) {
		w, g := wt.rows[i], gt.rows[i]
		for _, c := range wt.header {
			if c == "ID" {
				continue // numbering differs: both count from 1 in their own order
			}
			a, b := wt.cell(w, c), gt.cell(g, c)
			if c == "rrd_avg" {
				x, _ := wt.num(w, c)
				y, _ := gt.num(g, c)
				if math.Abs(x-y) > 0.001 {
					p = append(p, fmt.Sprintf("row %d rrd_avg %s, the sniffer %s", i, b, a))
				}
				continue
			}
			if !bytes.Equal(a, b) {
				p = append(p, fmt.Sprintf("row %d %s = %s, the sniffer %s", i, c, b, a))
			}
		}
	}
	return p
}

// streamValueProblems compares the RTP streams of the same call: first
// packet time (µs), ports, SSRC, codec; counts within the lag.
func streamValueProblems(want, got []byte, progress bool) []string {
	type stream struct {
		SrcIP, SrcPort, DstIP, DstPort string
		Time, TimeLast                 int64
		SSRC                           uint32
		Codec                          int
		Received                       int
	}
	decode := func(b []byte) (string, []stream) {
		var v struct {
			Call struct {
				CallID string `json:"callid"`
			} `json:"call"`
			Streams []struct {
				SrcIP    string `json:"src_ip"`
				SrcPort  string `json:"src_port"`
				DstIP    string `json:"dst_ip"`
				DstPort  string `json:"dst_port"`
				Time     int64  `json:"time"`
				TimeLast int64  `json:"time_last"`
				SSRC     uint32 `json:"ssrc"`
				Codec    int    `json:"codec"`
				Received int    `json:"received"`
			} `json:"rtp_streams"`
		}
		json.Unmarshal(b, &v)
		var out []stream
		for _, s := range v.Streams {
			out = append(out, stream{s.SrcIP, s.SrcPort, s.DstIP, s.DstPort, s.Time, s.TimeLast, s.SSRC, s.Codec, s.Received})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].SrcPort < out[j].SrcPort })
		return v.Call.CallID, out
	}
	wid, ws := decode(want)
	gid, gs := decode(got)
	if wid != gid {
		return []string{fmt.Sprintf("asked about %q, the sniffer about %q", gid, wid)}
	}
	var p []string
	if len(gs) != len(ws) {
		return []string{fmt.Sprintf("%d streams, the sniffer %d", len(gs), len(ws))}
	}
	for i := range ws {
		w, g := ws[i], gs[i]
		if w.SrcIP != g.SrcIP || w.SrcPort != g.SrcPort || w.DstIP != g.DstIP || w.DstPort != g.DstPort || w.SSRC != g.SSRC || w.Codec != g.Codec {
			p = append(p, fmt.Sprintf("stream %+v, the sniffer %+v", g, w))
		}
		if w.Received > 0 && g.Time != w.Time {
			p = append(p, fmt.Sprintf("stream %s first packet at %d µs, the sniffer %d", g.SrcPort, g.Time, w.Time))
		}
		// The sniffer answered active_call_info a moment after listcalls;
		// voipsensor is compared at listcalls' moment: up to half a second
		// (25 packets) behind, as a count and as the last packet's time.
		if progress && (g.Received+25 < w.Received || g.TimeLast+500000 < w.TimeLast || g.Received > w.Received+100) {
			p = append(p, fmt.Sprintf("stream %s: %d packets to %d µs, the sniffer's %d to %d", g.SrcPort, g.Received, g.TimeLast, w.Received, w.TimeLast))
		}
	}
	return p
}
