package manager

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/voipsensor/voipsensor/internal/command"
)

// renderFunc writes the legacy byte-exact rendering of one command's result.
type renderFunc func(w io.Writer, req *command.Request, res command.Result) error

// renderers holds the legacy renderings keyed by command name; any other
// command uses renderDefault.
var renderers = map[string]renderFunc{
	"listcalls":        renderListCalls,
	"listregisters":    renderListRegisters,
	"active_call_info": renderCallInfo,
	"sniffer_stat":     renderSnifferStat,
	"sniffer_threads":  renderSnifferThreads,
}

func render(w *replyWriter, req *command.Request, res command.Result) {
	if wantsZip(req.Args) {
		w.gzip()
	}
	if r := renderers[req.Name]; r != nil {
		if err := r(w, req, res); err != nil && w.err == nil {
			io.WriteString(w, "error: "+err.Error()+"\n")
		}
		return
	}
	renderDefault(w, res)
}

// wantsZip reports whether the request's JSON options ask for a gzipped
// reply ("zip":"yes", as listcalls, listregisters and active_call_info
// take it): compression is the manager transport's business, so any
// command's reply can be compressed.
func wantsZip(args []string) bool {
	for _, a := range args {
		if !strings.HasPrefix(a, "{") {
			continue
		}
		var o struct {
			Zip any `json:"zip"`
		}
		if json.Unmarshal([]byte(a), &o) == nil {
			switch z := o.Zip.(type) {
			case string:
				return strings.EqualFold(z, "yes") || z == "1" || strings.EqualFold(z, "true")
			case bool:
				return z
			case float64:
				return z != 0
			}
		}
	}
	return false
}

// renderDefault writes Text as is, nothing for Empty, compact JSON for a
// Value, and the legacy table JSON for a Table.
func renderDefault(w io.Writer, res command.Result) error {
	switch r := res.(type) {
	case command.Text:
		_, err := io.WriteString(w, string(r))
		return err
	case command.Empty, nil:
		return nil
	case command.Value:
		b, err := json.Marshal(r.V)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	case *command.Table:
		return writeTable(w, r, tableStyle{})
	}
	return fmt.Errorf("manager: cannot render %T", res)
}

// cellXform is a per-column legacy transformation of cells.
type cellXform uint8

const (
	xfNone     cellXform = iota
	xfMOS                // MOS 1–5 float → integer ×10
	xfNoCodec            // integer: -1 (no codec yet) → 0, the sniffer's calledcodec before RTP
	xfPort               // integer → quoted decimal (active_call_info rtp_streams ports)
	xfAddrText           // address → quoted text, IPv4 too
	xfFloatG             // float in C++ ostream's default form: 6 significant digits
	xfSlash              // text with '/' escaped as \/, as the sniffer's json_string_escape does
)

// listCallsXform maps listcalls columns to their legacy encodings.
func listCallsXform(name string) cellXform {
	switch {
	case strings.Contains(name, "_mos"):
		return xfMOS
	case name == "calledcodec":
		return xfNoCodec
	}
	return xfNone
}

// streamXform maps active_call_info's rtp_streams members to the
// sniffer's encodings (RTP::getJson through JsonExport): addresses and
// ports as strings, floats as an ostream writes them.
func streamXform(name string) cellXform {
	switch {
	case strings.HasSuffix(name, "_ip"):
		return xfAddrText
	case strings.HasSuffix(name, "_port"):
		return xfPort
	case strings.HasPrefix(name, "jitter"):
		return xfFloatG
	}
	return xfNone
}

// sipPacketXform maps active_call_info's sip_packets members to the
// sniffer's encodings (sSipPacketInfo::getJson through JsonExport):
// addresses and ports as strings, the first line escaped by its
// json_string_escape ("SIP\/2.0").
func sipPacketXform(name string) cellXform {
	if name == "sip" {
		return xfSlash
	}
	return streamXform(name)
}

// listCallsTail is what the sniffer writes after the cells of a listcalls
// row: its record holds five more fields than it has names (the space it
// reserves for custom headers), all unset.
const listCallsTail = ",null,null,null,null,null"

// renderListCalls writes [[header],[totals]?,[cells…, 5 nulls],…], empty
// texts as null (the sniffer's RecordArray fields).
func renderListCalls(w io.Writer, _ *command.Request, res command.Result) error {
	t, ok := res.(*command.Table)
	if !ok {
		return renderDefault(w, res) // limit 0: the totals object alone
	}
	style := tableStyle{xform: listCallsXform, emptyNull: true, rowTail: listCallsTail}
	if t.Totals != nil {
		b, err := json.Marshal(t.Totals)
		if err != nil {
			return err
		}
		style.totals = b
	}
	return writeTable(w, t, style)
}

// renderListRegisters writes [[header], [{"total": N}],rows…] (the totals
// element with a space before it and after its colon, only when there
// are rows), empty texts as null.
func renderListRegisters(w io.Writer, _ *command.Request, res command.Result) error {
	t, ok := res.(*command.Table)
	if !ok {
		return renderDefault(w, res)
	}
	style := tableStyle{emptyNull: true, totalsSep: ", ["}
	if t.Len > 0 && t.Totals != nil {
		b, err := json.Marshal(t.Totals)
		if err != nil {
			return err
		}
		style.totals = bytes.ReplaceAll(b, []byte(`":`), []byte(`": `))
	}
	return writeTable(w, t, style)
}

// callInfo is what active_call_info's result offers its rendering
// (calls.Info): the call as a one-row listcalls table, the sip_packets
// text, or the packets as a table with the sip_packets members as columns
// when they are kept (nil otherwise), and the streams as a table with the
// rtp_streams members as columns.
type callInfo interface {
	CallTable() *command.Table
	SIPPacketsText() string
	SIPPacketTable() *command.Table
	StreamTable() *command.Table
}

// renderCallInfo writes the sniffer's active_call_info object:
// {"call":{…listcalls row as members…},"sip_packets":…,"rtp_streams":[…]},
// sip_packets being the text of its active_call_info = no or, with yes,
// the array of its sSipPacketInfo objects (ports as strings, as in
// rtp_streams).
func renderCallInfo(w io.Writer, _ *command.Request, res command.Result) error {
	v, ok := res.(command.Value)
	if !ok {
		return renderDefault(w, res)
	}
	ci, ok := v.V.(callInfo)
	if !ok {
		return renderDefault(w, res)
	}
	b := []byte(`{"call":`)
	if ct := ci.CallTable(); ct != nil && ct.Len > 0 {
		b = appendObjectRow(b, ct, 0, columnXforms(ct, listCallsXform), true)
	} else {
		b = append(b, "{}"...)
	}
	b = append(b, `,"sip_packets":`...)
	if pt := ci.SIPPacketTable(); pt != nil {
		b = appendObjectArray(b, pt, sipPacketXform)
	} else {
		b = appendJSONString(b, ci.SIPPacketsText())
	}
	b = append(b, `,"rtp_streams":`...)
	b = appendObjectArray(b, ci.StreamTable(), streamXform)
	b = append(b, '}')
	_, err := w.Write(b)
	return err
}

// appendJSONStringSlash is appendJSONString with each '/' written as \/,
// as JsonExport writes a string (json_string_escape).
func appendJSONStringSlash(b []byte, s string) []byte {
	if !strings.Contains(s, "/") {
		return appendJSONString(b, s)
	}
	return append(b, bytes.ReplaceAll(appendJSONString(nil, s), []byte("/"), []byte(`\/`))...)
}

// appendObjectArray appends t's rows as a JSON array of objects, the
// column names as keys, each column in its xform encoding.
func appendObjectArray(b []byte, t *command.Table, xform func(string) cellXform) []byte {
	b = append(b, '[')
	xf := columnXforms(t, xform)
	for i := 0; i < t.Len; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendObjectRow(b, t, i, xf, false)
	}
	return append(b, ']')
}

// appendFloat appends f with its column's legacy transformation: MOS as
// an integer ×10, xfFloatG as ostream's default (%g with 6 significant
// digits), others with 6 decimals; NaN and infinities as null.
func appendFloat(b []byte, f float64, xf cellXform) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	switch xf {
	case xfMOS:
		return appendInt(b, int64(math.Round(f*10)))
	case xfFloatG:
		return strconv.AppendFloat(b, f, 'g', 6, 64)
	}
	return appendFixed6(b, f)
}

// appendAddr appends an IPv4 address as its unsigned 32-bit number and an
// IPv6 one as a quoted string, as the legacy server does.
func appendAddr(b []byte, a netip.Addr) []byte {
	a = a.Unmap()
	if a.Is4() {
		v := a.As4()
		return appendUint(b, uint64(v[0])<<24|uint64(v[1])<<16|uint64(v[2])<<8|uint64(v[3]))
	}
	b = append(b, '"')
	b = a.AppendTo(b)
	return append(b, '"')
}

// appendFixed6 appends f as strconv.AppendFloat(b, f, 'f', 6, 64) does,
// faster for the magnitudes listcalls carries. It scales by 10^6 in
// float64 and rounds; when the scaled value lies too close to a rounding
// tie for the float product to be trusted (or f is large or rounds to a
// negative zero) it defers to strconv, so the output is always identical.
func appendFixed6(b []byte, f float64) []byte {
	if !(f > -1e6 && f < 1e6) {
		return strconv.AppendFloat(b, f, 'f', 6, 64)
	}
	neg := math.Signbit(f) // also -0, which strconv prints as -0.000000
	if neg {
		f = -f
	}
	m := f * 1e6 // < 1e12: its ulp is below 2^-12, far under the guard
	r := math.Floor(m)
	if frac := m - r; frac > 0.5-1e-3 && frac < 0.5+1e-3 {
		if neg {
			f = -f
		}
		return strconv.AppendFloat(b, f, 'f', 6, 64)
	} else if frac > 0.5 {
		r++
	}
	n := uint64(r)
	if neg {
		if n == 0 {
			return append(b, "-0.000000"...)
		}
		b = append(b, '-')
	}
	b = appendUint(b, n/1e6)
	frac := n % 1e6
	hi, mid, lo := 2*(frac/1e4), 2*(frac/100%100), 2*(frac%100)
	return append(b, '.', digitPairs[hi], digitPairs[hi+1], digitPairs[mid], digitPairs[mid+1],
		digitPairs[lo], digitPairs[lo+1])
}

// appendDateTime appends t as a quoted "2006-01-02 15:04:05" (what
// AppendFormat with that layout gives, for years 0–9999, without parsing
// the layout per cell).
func appendDateTime(b []byte, t time.Time) []byte {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	if y < 0 || y > 9999 {
		b = append(b, '"')
		b = t.AppendFormat(b, "2006-01-02 15:04:05")
		return append(b, '"')
	}
	return append(b, '"',
		byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+int(mo)/10), byte('0'+int(mo)%10), '-', byte('0'+d/10), byte('0'+d%10), ' ',
		byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':',
		byte('0'+s/10), byte('0'+s%10), '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Text that is not valid
// UTF-8 is stripped to ASCII first, as the legacy server does.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	if plainJSON(s) { // the common case: printable ASCII, copied at once
		b = append(b, s...)
		return append(b, '"')
	}
	ascii := !utf8.ValidString(s)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 0x80:
			if !ascii {
				b = append(b, c)
			}
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// plainJSON reports whether s needs no escaping in a JSON string: no
// control character, quote, backslash or non-ASCII byte. It tests eight
// bytes at a time (the strings of a listcalls row are ~120 bytes; a byte
// at a time this test was a tenth of the rendering).
func plainJSON(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := s[i : i+8]
		x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		// (v-ones)&^v has a byte's top bit set where v has a zero byte
		// (and possibly above one, through the borrow: exact for "any");
		// with 0x20 in place of ones it flags bytes below 0x20 in an
		// ASCII word; x itself flags the non-ASCII bytes.
		q, bs := x^(ones*'"'), x^(ones*'\\')
		if ((x-ones*0x20)&^x|(q-ones)&^q|(bs-ones)&^bs|x)&highs != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			return false
		}
	}
	return true
}

// pair is one member of a flat JSON object, in document order.
type pair struct {
	key string
	raw json.RawMessage
}

// objectPairs decodes a JSON object's members in order.
func objectPairs(v any) ([]pair, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("manager: want a JSON object, got %.20s", b)
	}
	var out []pair
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		out = append(out, pair{key: t.(string), raw: raw})
	}
	return out, nil
}

// renderSnifferStat writes the legacy sniffer_stat object: built by string
// concatenation, so `"key": "value"` with a space after the colon, string
// values (including pbStatString) inserted without JSON escaping, and a
// trailing newline. With "plain" it writes key=value lines instead.
func renderSnifferStat(w io.Writer, req *command.Request, res command.Result) error {
	v, ok := res.(command.Value)
	if !ok {
		return renderDefault(w, res)
	}
	pairs, err := objectPairs(v.V)
	if err != nil {
		return err
	}
	var b []byte
	if req.HasArg("plain") {
		for _, p := range pairs {
			if p.key == "disk_io" {
				continue // the sniffer's plain form has no disk_io line
			}
			b = appendPlain(b, p.key, p.raw)
		}
		_, err = w.Write(b)
		return err
	}
	b = append(b, '{')
	for i, p := range pairs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, p.key...)
		b = append(b, `": `...)
		var s string
		if len(p.raw) > 0 && p.raw[0] == '"' && json.Unmarshal(p.raw, &s) == nil {
			b = append(b, '"')
			b = append(b, s...)
			b = append(b, '"')
		} else {
			b = append(b, p.raw...)
		}
	}
	b = append(b, "}\n"...)
	_, err = w.Write(b)
	return err
}

func appendPlain(b []byte, key string, raw json.RawMessage) []byte {
	var s string
	if len(raw) > 0 && raw[0] == '"' {
		json.Unmarshal(raw, &s)
	} else if len(raw) > 0 && raw[0] == '{' {
		pairs, _ := objectPairs(orderedRaw(raw))
		for _, p := range pairs {
			b = appendPlain(b, key+"_"+p.key, p.raw)
		}
		return b
	} else {
		s = string(raw)
	}
	if key == "pbStatString" {
		for _, kv := range splitStatString(s) {
			b = append(b, kv[0]...)
			b = append(b, '=')
			b = append(b, kv[1]...)
			b = append(b, '\n')
		}
		return b
	}
	b = append(b, key...)
	b = append(b, '=')
	b = append(b, s...)
	return append(b, '\n')
}

// orderedRaw lets objectPairs re-read a raw object keeping its order.
type orderedRaw json.RawMessage

func (o orderedRaw) MarshalJSON() ([]byte, error) { return o, nil }

// splitStatString splits a pbStatString into key/value pairs: each
// space-separated token "key[value]suffix" gives key=value+suffix (value
// may hold spaces), a token without a name gives total_traffic, and the
// double calls[..][..] token gives calls_active and calls_final. Tokens
// without brackets (the version) are skipped.
func splitStatString(s string) [][2]string {
	var out [][2]string
	for i := 0; i < len(s); {
		if s[i] == ' ' {
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] != '[' && s[j] != ' ' {
			j++
		}
		if j == len(s) || s[j] == ' ' {
			i = j // no brackets
			continue
		}
		key := s[i:j]
		var vals []string
		for j < len(s) && s[j] == '[' {
			depth, k := 0, j
			for ; k < len(s); k++ {
				if s[k] == '[' {
					depth++
				} else if s[k] == ']' {
					depth--
					if depth == 0 {
						break
					}
				}
			}
			vals = append(vals, s[j+1:min(k, len(s))])
			j = min(k+1, len(s))
		}
		e := j
		for e < len(s) && s[e] != ' ' {
			e++
		}
		suffix := s[j:e]
		i = e
		switch {
		case key == "calls" && len(vals) == 2:
			out = append(out, [2]string{"calls_active", vals[0]}, [2]string{"calls_final", vals[1] + suffix})
		case key == "":
			out = append(out, [2]string{"total_traffic", strings.Join(vals, "") + suffix})
		default:
			out = append(out, [2]string{key, strings.Join(vals, "") + suffix})
		}
	}
	return out
}

// threadsView mirrors the sniffer_threads JSON shape (the contract between
// command/system and this renderer).
type threadsView struct {
	CPUAll  float64 `json:"cpu_all"`
	Threads []struct {
		Description string   `json:"description"`
		TID         int      `json:"tid"`
		CPU         float64  `json:"cpu_perc"`
		SchedType   string   `json:"sched_type"`
		SchedPrio   int      `json:"sched_priority"`
		Nice        *int     `json:"nice"`
		CSNonVol    uint64   `json:"cs_non_voluntary"`
		CSVol       uint64   `json:"cs_voluntary"`
		CSRatio     *float64 `json:"cs_ratio"`
	} `json:"threads"`
}

// schedNames are the sniffer's names of scheduling policies
// (get_sched_type_str).
var schedNames = map[string]string{
	"SCHED_OTHER": "other", "SCHED_FIFO": "fifo", "SCHED_RR": "rr", "SCHED_BATCH": "batch",
	"SCHED_IDLE": "idle", "SCHED_DEADLINE": "deadline",
}

// renderSnifferThreads writes the JSON form with "json", the one-line form
// with "line", and otherwise the sniffer's fixed-width text
// (cThreadMonitor::output): per thread the description padded to 45, the
// tid in 7, the CPU in %5.1f, 11 columns of scheduling (blank for
// SCHED_OTHER at nice 0, the nice value, or policy and priority), the
// non-voluntary and voluntary context switches in 8 columns each and
// their ratio in %7.3f; a blank line after an odd number of threads (its
// two-column remnant), then "CPU ALL : " and the total in 5 columns.
func renderSnifferThreads(w io.Writer, req *command.Request, res command.Result) error {
	v, ok := res.(command.Value)
	if !ok || req.HasArg("json") {
		return renderDefault(w, res)
	}
	raw, err := json.Marshal(v.V)
	if err != nil {
		return err
	}
	var tv threadsView
	if err := json.Unmarshal(raw, &tv); err != nil {
		return err
	}
	var b strings.Builder
	if req.HasArg("line") {
		for i, t := range tv.Threads {
			if i > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "%s (%d) : %.1f", truncate(t.Description, 45), t.TID, t.CPU)
		}
		if tv.CPUAll != 0 {
			_, err = fmt.Fprintf(w, "ALL : %.1f; %s", tv.CPUAll, b.String())
			return err
		}
		_, err = io.WriteString(w, b.String())
		return err
	}
	for _, t := range tv.Threads {
		fmt.Fprintf(&b, "%-45s (%7d) : %5.1f", truncate(t.Description, 45), t.TID, t.CPU)
		switch policy := schedNames[t.SchedType]; {
		case t.SchedType != "" && t.SchedType != "SCHED_OTHER" || t.SchedPrio != 0:
			if policy == "" {
				policy = strings.ToLower(strings.TrimPrefix(t.SchedType, "SCHED_"))
			}
			fmt.Fprintf(&b, "  %-5s %3d", policy, t.SchedPrio)
		case t.Nice != nil && *t.Nice != 0:
			fmt.Fprintf(&b, "  %-5d    ", *t.Nice)
		default:
			b.WriteString("           ")
		}
		fmt.Fprintf(&b, "  %8d / %8d", t.CSNonVol, t.CSVol)
		if t.CSVol > 0 {
			fmt.Fprintf(&b, " / %7.3f", float64(t.CSNonVol)/float64(t.CSVol))
		} else {
			b.WriteString("          ")
		}
		b.WriteByte('\n')
	}
	if len(tv.Threads)%2 == 1 {
		b.WriteByte('\n')
	}
	if len(tv.Threads) == 0 {
		// No thread was printed, so the stream is not yet in fixed mode:
		// the total comes out as ostream's default form.
		fmt.Fprintf(&b, "CPU ALL : %5s\n", strconv.FormatFloat(tv.CPUAll, 'g', 1, 64))
	} else {
		fmt.Fprintf(&b, "CPU ALL : %5.1f\n", tv.CPUAll)
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// truncate cuts s to at most n bytes, as the sniffer's substr does.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
