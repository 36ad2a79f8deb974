package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// A humanColumn is one column of `ctl --table`: a title and how to make
// its text from a reply row (cells by header name).
type humanColumn struct {
	name   string // what --columns takes
	title  string
	text   func(r row) string
	right  bool // numbers: right-aligned
	shrink bool // long free text (Call-ID, numbers, agents): shortened with "…" to fit
	// drop orders the columns left out when even shortened ones do not
	// fit: the highest first; 0 is never left out.
	drop int
}

// row is one listcalls or listregisters row, cells by header name.
type row map[string]json.RawMessage

func (r row) str(k string) string {
	v, ok := r[k]
	if !ok || string(v) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}

func (r row) num(k string) (float64, bool) {
	v, ok := r[k]
	if !ok || string(v) == "null" {
		return 0, false
	}
	var f float64
	if json.Unmarshal(v, &f) == nil {
		return f, true
	}
	if f, err := strconv.ParseFloat(r.str(k), 64); err == nil {
		return f, true
	}
	return 0, false
}

// ip turns the manager's integer IPv4 (or textual IPv6) into dotted form.
func (r row) ip(k string) string {
	if n, ok := r.num(k); ok && n >= 0 && n <= 0xffffffff {
		u := uint32(n)
		return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)}).String()
	}
	return r.str(k)
}

func dash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// codecNames are the static RTP payload types listcalls reports.
var codecNames = map[int]string{0: "PCMU", 3: "GSM", 4: "G723", 8: "PCMA", 9: "G722", 18: "G729", 13: "CN", 101: "DTMF"}

func codec(r row, k string) string {
	n, ok := r.num(k)
	if !ok || n < 0 {
		return ""
	}
	if s, ok := codecNames[int(n)]; ok {
		return s
	}
	return "PT" + strconv.Itoa(int(n))
}

// callCodec names the codec of the first direction with RTP, the
// caller's, else the called's. Before any RTP the reply carries the
// sniffer's -1 (caller) and 0 (called), which name nothing.
func callCodec(r row) string {
	for _, d := range [...]struct{ received, codec string }{{"src_received", "callercodec"}, {"dst_received", "calledcodec"}} {
		if n, ok := r.num(d.received); ok && n > 0 {
			return codec(r, d.codec)
		}
	}
	return ""
}

// rrd shows a registration's round-trip time (ms, a float in the reply)
// with one decimal.
func rrd(r row) string {
	n, ok := r.num("rrd_avg")
	if !ok {
		return ""
	}
	return strconv.FormatFloat(n, 'f', 1, 64)
}

// mos shows the direction's MOS (f1, ×10 in the reply) as x.x, or "–"
// while it has no media: a 4.5 with nothing measured would only look
// reassuring.
func mos(r row, side string) string {
	if n, ok := r.num(side + "_received"); !ok || n == 0 {
		return "–"
	}
	m, ok := r.num(side + "_mosf1")
	if !ok || m <= 0 {
		return "–"
	}
	return strconv.FormatFloat(m/10, 'f', 1, 64)
}

// loss shows the direction's loss in percent, "–" without media.
func loss(r row, side string) string {
	if n, ok := r.num(side + "_received"); !ok || n == 0 {
		return "–"
	}
	l, _ := r.num(side + "_loss")
	return fmt.Sprintf("%.1f%%", l)
}

func duration(r row, k string) string {
	n, ok := r.num(k)
	if !ok || n < 0 {
		return ""
	}
	s := int(n)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// callState names the state of a call in progress from its last SIP
// response: answered after a 2xx, ringing after a 180/183, calling
// before; a final failure shows its code.
func callState(r row) string {
	switch c, _ := r.num("lastSIPresponseNum"); {
	case c >= 200 && c < 300:
		return "answered"
	case c == 180 || c == 183:
		return "ringing"
	case c >= 300:
		return strconv.Itoa(int(c))
	}
	return "calling"
}

// extraCallColumns are offered by --columns besides the default ones.
var extraCallColumns = []humanColumn{
	{name: "aloss_abs", title: "A→B LOST", text: func(r row) string { return r.str("src_loss_abs") }, right: true},
	{name: "bloss_abs", title: "B→A LOST", text: func(r row) string { return r.str("dst_loss_abs") }, right: true},
	{name: "ajitter", title: "A→B JIT ms", text: func(r row) string { return r.str("src_jitter") }, right: true},
	{name: "bjitter", title: "B→A JIT ms", text: func(r row) string { return r.str("dst_jitter") }, right: true},
	{name: "agent", title: "CALLER UA", text: func(r row) string { return r.str("calleragent") }, shrink: true},
}

var callColumns = []humanColumn{
	{name: "callid", title: "CALL-ID", text: func(r row) string { return r.str("callid") }, shrink: true},
	{name: "caller", title: "CALLER", text: func(r row) string { return r.str("caller") }, shrink: true},
	{name: "called", title: "CALLED", text: func(r row) string { return r.str("called") }, shrink: true},
	{name: "start", title: "START", text: func(r row) string { return r.str("calldate") }}, // shortened by sameDay
	{name: "duration", title: "DUR", text: func(r row) string { return duration(r, "duration") }, right: true},
	{name: "state", title: "STATE", text: callState, drop: 2},
	{name: "codec", title: "CODEC", text: func(r row) string { return dash(callCodec(r)) }, drop: 3},
	{name: "aloss", title: "A→B LOSS", text: func(r row) string { return loss(r, "src") }, right: true},
	{name: "amos", title: "MOS", text: func(r row) string { return mos(r, "src") }, right: true},
	{name: "bloss", title: "B→A LOSS", text: func(r row) string { return loss(r, "dst") }, right: true},
	{name: "bmos", title: "MOS", text: func(r row) string { return mos(r, "dst") }, right: true},
	{name: "callerip", title: "CALLER IP", text: func(r row) string { return r.ip("callerip") }, drop: 5},
	{name: "calledip", title: "CALLED IP", text: func(r row) string { return r.ip("calledip") }, drop: 4},
}

// regStates are listregisters' state numbers (command/registers).
var regStates = map[int]string{1: "OK", 2: "Failed", 3: "UnknownMessageOK", 4: "ManyRegMessages", 5: "Expired", 6: "Unregister"}

var regColumns = []humanColumn{
	{name: "user", title: "USER", text: func(r row) string { return r.str("to_num") + "@" + r.str("to_domain") }, shrink: true},
	{name: "state", title: "STATE", text: func(r row) string {
		n, _ := r.num("state")
		if s, ok := regStates[int(n)]; ok {
			return s
		}
		return r.str("state")
	}},
	{name: "since", title: "SINCE", text: func(r row) string { return r.str("calldate") }},
	{name: "expires", title: "EXPIRES", text: func(r row) string { return r.str("expires_at") }, drop: 2},
	{name: "contact", title: "CONTACT", text: func(r row) string { return dash(r.str("contact_num") + "@" + r.str("contact_domain")) }, shrink: true},
	{name: "from", title: "FROM IP", text: func(r row) string {
		p := r.str("sipcallerport")
		return r.ip("sipcallerip") + ":" + p
	}},
	{name: "rrd", title: "RRD ms", text: rrd, right: true, drop: 1},
	{name: "ua", title: "USER AGENT", text: func(r row) string { return r.str("ua") }, shrink: true, drop: 3},
}

// humanTable renders a listcalls or listregisters reply for people:
// a few useful columns (or the ones named, or all of the reply's with
// all), values as people read them, fitted to width. Other replies, and
// replies it cannot parse, are returned as they are.
func humanTable(cmd string, reply []byte, columns []string, all bool, width int) string {
	var cols []humanColumn
	switch {
	case strings.HasPrefix(cmd, "listcalls"):
		cols = callColumns
	case strings.HasPrefix(cmd, "listregisters"):
		cols = regColumns
	default:
		return string(reply)
	}
	var raw []json.RawMessage
	if json.Unmarshal(reply, &raw) != nil || len(raw) == 0 {
		return string(reply)
	}
	var header []string
	if json.Unmarshal(raw[0], &header) != nil {
		return string(reply)
	}
	var rows []row
	for _, r := range raw[1:] {
		var cells []json.RawMessage
		if json.Unmarshal(r, &cells) != nil {
			return string(reply)
		}
		if len(cells) == 1 && bytes.HasPrefix(bytes.TrimSpace(cells[0]), []byte("{")) {
			continue // the totals element
		}
		m := make(row, len(header))
		for i, h := range header {
			if i < len(cells) {
				m[h] = cells[i]
			}
		}
		rows = append(rows, m)
	}
	if all {
		cols = nil
		for _, h := range header {
			cols = append(cols, humanColumn{name: h, title: h, text: func(r row) string { return r.str(h) }, shrink: true})
		}
	} else if len(columns) > 0 {
		known := cols
		if strings.HasPrefix(cmd, "listcalls") {
			known = append(append([]humanColumn(nil), cols...), extraCallColumns...)
		}
		cols = pickColumns(known, header, columns)
	}
	note := sameDay(cols, rows)
	return note + renderColumns(cols, rows, width)
}

// sameDay leaves the time of day in the START cells when every call
// started on the same day, and returns the line that says which.
func sameDay(cols []humanColumn, rows []row) string {
	for i, c := range cols {
		if c.name != "start" || len(rows) == 0 {
			continue
		}
		day, _, _ := strings.Cut(rows[0].str("calldate"), " ")
		for _, r := range rows {
			if d, _, _ := strings.Cut(r.str("calldate"), " "); d != day {
				return ""
			}
		}
		cols[i].text = func(r row) string { _, t, _ := strings.Cut(r.str("calldate"), " "); return t }
		return "Calls started on " + day + " (sensor time):\n"
	}
	return ""
}

// pickColumns takes the named columns: a human column by name, or any
// column of the reply by its header name.
func pickColumns(known []humanColumn, header []string, names []string) []humanColumn {
	var out []humanColumn
	for _, n := range names {
		n = strings.TrimSpace(n)
		found := false
		for _, c := range known {
			if c.name == n {
				out, found = append(out, c), true
				break
			}
		}
		if !found {
			out = append(out, humanColumn{name: n, title: n, text: func(r row) string { return r.str(n) }, shrink: true})
		}
	}
	return out
}

// renderColumns lays the cells out in aligned columns, shortening the
// widest free-text column (with "…", never below 8 characters) until the
// lines fit width; dates, addresses and figures are never cut, but when
// nothing is left to shorten the columns with the highest drop are left
// out.
func renderColumns(cols []humanColumn, rows []row, width int) string {
	for {
		out, fits := layout(cols, rows, width)
		worst := -1
		for i, c := range cols {
			if c.drop > 0 && (worst < 0 || c.drop > cols[worst].drop) {
				worst = i
			}
		}
		if fits || worst < 0 {
			return out
		}
		cols = append(append([]humanColumn(nil), cols[:worst]...), cols[worst+1:]...)
	}
}

// layout renders cols and reports whether the lines fit width.
func layout(cols []humanColumn, rows []row, width int) (string, bool) {
	cells := make([][]string, len(rows))
	w := make([]int, len(cols))
	for i, c := range cols {
		w[i] = runeLen(c.title)
	}
	for j, r := range rows {
		cells[j] = make([]string, len(cols))
		for i, c := range cols {
			s := c.text(r)
			cells[j][i] = s
			w[i] = max(w[i], runeLen(s))
		}
	}
	total := func() int {
		n := 0
		for _, x := range w {
			n += x + 2
		}
		return n - 2
	}
	for width > 0 && total() > width {
		widest := -1
		for i := range w {
			if cols[i].shrink && w[i] > 8 && (widest < 0 || w[i] > w[widest]) {
				widest = i
			}
		}
		if widest < 0 {
			break // nothing sensible left to shorten
		}
		w[widest]--
	}
	var b strings.Builder
	line := func(vals []string) {
		var l strings.Builder
		for i, v := range vals {
			v = shorten(v, w[i])
			pad := strings.Repeat(" ", w[i]-runeLen(v))
			if cols[i].right {
				l.WriteString(pad + v)
			} else {
				l.WriteString(v + pad)
			}
			if i < len(vals)-1 {
				l.WriteString("  ")
			}
		}
		b.WriteString(strings.TrimRight(l.String(), " ") + "\n")
	}
	titles := make([]string, len(cols))
	for i, c := range cols {
		titles[i] = c.title
	}
	line(titles)
	for _, c := range cells {
		line(c)
	}
	return b.String(), width <= 0 || total() <= width
}

func runeLen(s string) int { return len([]rune(s)) }

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n <= 1 {
		return string(r[:n])
	}
	return string(r[:n-1]) + "…"
}

// terminalWidth is stdout's width when it is a terminal, else 120.
func terminalWidth() int {
	if c, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && c > 20 {
		return c
	}
	var ws struct{ row, col, x, y uint16 }
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, os.Stdout.Fd(), syscall.TIOCGWINSZ, uintptr(unsafe.Pointer(&ws))); e == 0 && ws.col > 20 {
		return int(ws.col)
	}
	return 120
}
