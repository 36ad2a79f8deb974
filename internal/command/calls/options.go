package calls

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/voipsensor/voipsensor/internal/command"
)

type options struct {
	limit     int // -1 all
	sortField string
	sortDesc  bool
	zip       bool
	filters   []*filter // all must match
}

// parseOptions reads listcalls' JSON options. Text that is not a JSON
// object leaves the defaults, as the sniffer's JsonItem::parse ignores it;
// a member of the wrong type is an error.
func parseOptions(raw string) (*options, error) {
	o := &options{limit: -1, sortField: "calldate_num", sortDesc: true}
	if raw == "" {
		return o, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return o, nil
	}
	for k, v := range m {
		var err error
		switch k {
		case "limit":
			var s string
			if s, err = command.JSONText(v); err == nil && s != "" {
				o.limit, err = strconv.Atoi(s)
			}
		case "sort_field":
			var s string
			if s, err = command.JSONText(v); err == nil && s != "" {
				o.sortField = s
			}
		case "sort_dir":
			var s string
			s, err = command.JSONText(v)
			o.sortDesc = strings.HasPrefix(strings.ToLower(s), "desc")
		case "zip":
			var s string
			s, err = command.JSONText(v)
			o.zip = s == "yes"
		case "filter", "form_filters":
			var fs []*filter
			fs, err = parseFilters(v)
			o.filters = append(o.filters, fs...)
		}
		if err != nil {
			return nil, command.BadParam(k, err)
		}
	}
	return o, nil
}

func (o *options) match(c *Call) bool {
	for _, f := range o.filters {
		if !f.match(c) {
			return false
		}
	}
	return true
}

// filter is one compiled filter object: its predicates are ANDed, or ORed
// with "OR":1.
type filter struct {
	or    bool
	preds []func(c *Call) bool
}

func (f *filter) match(c *Call) bool {
	if len(f.preds) == 0 {
		return true
	}
	for _, p := range f.preds {
		if p(c) == f.or {
			return f.or
		}
	}
	return !f.or
}

func parseFilters(raw json.RawMessage) ([]*filter, error) {
	raw = bytes.TrimSpace(raw)
	var objs []map[string]json.RawMessage
	if len(raw) > 0 && raw[0] == '[' {
		if err := json.Unmarshal(raw, &objs); err != nil {
			return nil, err
		}
	} else {
		var o map[string]json.RawMessage
		if err := json.Unmarshal(raw, &o); err != nil {
			return nil, err
		}
		objs = append(objs, o)
	}
	out := make([]*filter, 0, len(objs))
	for _, o := range objs {
		f, err := compileFilter(o)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

func compileFilter(o map[string]json.RawMessage) (*filter, error) {
	s := make(map[string]string, len(o))
	for k, v := range o {
		t, err := command.JSONText(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		s[k] = strings.TrimSpace(t)
	}
	f := &filter{or: s["OR"] == "1"}
	searchType := s["callerd_search_type"]
	// keys in a fixed order so that errors are deterministic
	if v := s["caller"]; v != "" {
		m, err := compileList(v, searchType, true)
		if err != nil {
			return nil, fmt.Errorf("caller: %w", err)
		}
		if s["callerd_type"] == "0" {
			f.add(func(c *Call) bool { return m.match(c.Caller) || m.match(c.Called) })
		} else {
			f.add(func(c *Call) bool { return m.match(c.Caller) })
		}
	}
	if v := s["called"]; v != "" {
		m, err := compileList(v, searchType, true)
		if err != nil {
			return nil, fmt.Errorf("called: %w", err)
		}
		f.add(func(c *Call) bool { return m.match(c.Called) })
	}
	strKeys := []struct {
		key string
		get func(c *Call) string
	}{
		{"callid", func(c *Call) string { return c.CallID }},
		{"callername", func(c *Call) string { return c.CallerName }},
		{"caller_domain", func(c *Call) string { return c.CallerDomain }},
		{"called_domain", func(c *Call) string { return c.CalledDomain }},
		{"caller_agent", func(c *Call) string { return c.CallerAgent }},
		{"called_agent", func(c *Call) string { return c.CalledAgent }},
	}
	for _, k := range strKeys {
		v := s[k.key]
		if v == "" {
			continue
		}
		m, err := compileList(v, "", false)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k.key, err)
		}
		get := k.get
		f.add(func(c *Call) bool { return m.match(get(c)) })
	}
	for _, k := range []string{"sipcallerip", "sipcalledip"} {
		v := s[k]
		if v == "" {
			continue
		}
		m, err := compileIPList(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		switch {
		case s["sipcallerdip_type"] == "0":
			f.add(func(c *Call) bool { return m.match(c.SIPCallerIP) || m.match(c.SIPCalledIP) })
		case k == "sipcallerip":
			f.add(func(c *Call) bool { return m.match(c.SIPCallerIP) })
		default:
			f.add(func(c *Call) bool { return m.match(c.SIPCalledIP) })
		}
	}
	if v := s["codec"]; v != "" {
		set, err := intSet(v)
		if err != nil {
			return nil, fmt.Errorf("codec: %w", err)
		}
		f.add(func(c *Call) bool { return set[c.CallerCodec] || set[c.CalledCodec] })
	}
	if v := s["exclude_codec"]; v != "" {
		set, err := intSet(v)
		if err != nil {
			return nil, fmt.Errorf("exclude_codec: %w", err)
		}
		f.add(func(c *Call) bool { return !set[c.CallerCodec] && !set[c.CalledCodec] })
	}
	if s["connected"] == "1" {
		f.add(func(c *Call) bool { return !c.Answer.IsZero() })
	}
	for _, k := range []string{"calldate", "calldate_from", "calldate_to"} {
		v := s[k]
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		if k == "calldate_to" {
			f.add(func(c *Call) bool { return c.Start.Unix() < n })
		} else {
			f.add(func(c *Call) bool { return c.Start.Unix() >= n })
		}
	}
	for _, k := range []string{"vlan", "sensor_id"} {
		v := s[k]
		if v == "" {
			continue
		}
		set, err := intSet(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		if k == "vlan" {
			f.add(func(c *Call) bool { return set[c.VLAN] })
		} else {
			f.add(func(c *Call) bool { return set[c.SensorID] })
		}
	}
	return f, nil
}

func (f *filter) add(p func(c *Call) bool) { f.preds = append(f.preds, p) }

func splitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == ';' })
}

func intSet(v string) (map[int]bool, error) {
	set := map[int]bool{}
	for _, it := range splitList(v) {
		n, err := strconv.Atoi(it)
		if err != nil {
			return nil, err
		}
		set[n] = true
	}
	return set, nil
}

// list is a compiled value list: it matches when any positive item
// matches (or there are none) and no negated item matches.
type list struct{ pos, neg []func(string) bool }

func (l *list) match(s string) bool {
	for _, m := range l.neg {
		if m(s) {
			return false
		}
	}
	if len(l.pos) == 0 {
		return true
	}
	for _, m := range l.pos {
		if m(s) {
			return true
		}
	}
	return false
}

var errEmptyItem = errors.New("empty list item")

// compileList compiles a caller/called style list. Items may be negated
// with '!', contain SQL LIKE wildcards (% and _), or, when numeric is set,
// be digit ranges "100-199". searchType is callerd_search_type: "" or 0
// exact, 1 prefix, 2 suffix, 3 contains, 4 regexp.
func compileList(v, searchType string, numeric bool) (*list, error) {
	l := &list{}
	for _, it := range splitList(v) {
		neg := strings.HasPrefix(it, "!")
		if neg {
			it = it[1:]
		}
		if it == "" {
			return nil, errEmptyItem
		}
		var m func(string) bool
		lo, hi, isRange := digitRange(it)
		switch {
		case numeric && isRange:
			m = func(s string) bool {
				n, err := strconv.ParseUint(s, 10, 64)
				return err == nil && n >= lo && n <= hi
			}
		case searchType == "4":
			re, err := regexp.Compile(it)
			if err != nil {
				return nil, err
			}
			m = re.MatchString
		default:
			pat := strings.ToLower(it)
			if !strings.ContainsAny(pat, "%_") {
				switch searchType {
				case "1":
					pat += "%"
				case "2":
					pat = "%" + pat
				case "3":
					pat = "%" + pat + "%"
				}
			}
			if strings.ContainsAny(pat, "%_") {
				m = func(s string) bool { return like(strings.ToLower(s), pat) }
			} else {
				m = func(s string) bool { return strings.EqualFold(s, pat) }
			}
		}
		if neg {
			l.neg = append(l.neg, m)
		} else {
			l.pos = append(l.pos, m)
		}
	}
	return l, nil
}

func digitRange(s string) (lo, hi uint64, ok bool) {
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	lo, err1 := strconv.ParseUint(a, 10, 64)
	hi, err2 := strconv.ParseUint(b, 10, 64)
	return lo, hi, err1 == nil && err2 == nil
}

// like reports whether s matches the SQL LIKE pattern p (% any run, _ one
// byte), by the classic greedy star-backtracking walk.
func like(s, p string) bool {
	si, pi := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '_' || p[pi] == s[si]):
			si++
			pi++
		case pi < len(p) && p[pi] == '%':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '%' {
		pi++
	}
	return pi == len(p)
}

type ipList struct {
	pos, neg []netip.Prefix
}

func compileIPList(v string) (*ipList, error) {
	l := &ipList{}
	for _, it := range splitList(v) {
		neg := strings.HasPrefix(it, "!")
		if neg {
			it = it[1:]
		}
		var p netip.Prefix
		var err error
		if strings.Contains(it, "/") {
			p, err = netip.ParsePrefix(it)
			p = p.Masked()
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(it)
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if err != nil {
			return nil, err
		}
		if neg {
			l.neg = append(l.neg, p)
		} else {
			l.pos = append(l.pos, p)
		}
	}
	return l, nil
}

func (l *ipList) match(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range l.neg {
		if p.Contains(a) {
			return false
		}
	}
	if len(l.pos) == 0 {
		return true
	}
	for _, p := range l.pos {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// sortTable orders l by the named column (case-insensitive), with the
// start time as the secondary key (calldate_num refined to nanoseconds, so
// that calls started in the same second keep a stable order whatever order
// the source lists them in), both in the same direction.
func sortTable(l *listing, field string, desc bool) error {
	col, sec := -1, -1
	for i, c := range columns {
		if strings.EqualFold(c.name, field) {
			col = i
		}
		if c.name == "calldate" {
			sec = i // a KindTime cell: Unix nanoseconds in Int
		}
	}
	if col < 0 {
		return command.BadParam("sort_field", fmt.Errorf("unknown column %q", field))
	}
	n := len(l.calls)
	l.order = make([]int, n)
	for i := range l.order {
		l.order[i] = i
	}
	sign := 1
	if desc {
		sign = -1
	}
	// Secondary keys are start times in nanoseconds. Ties of both keys
	// keep source order (the result equals a stable sort), so an unstable
	// sort with the index as last key is enough. Both keys are read in
	// one pass: 100,000 rows are 70 MB, and each pass over them is a
	// cache miss per row.
	keys2 := make([]int64, n)
	get := func(r int) command.Cell { return l.cell(col, r) }
	get2 := func(r int) command.Cell { return l.cell(sec, r) }
	if n > 0 && get(0).Kind == command.KindInt {
		// Integer columns (the default sort) sort on int64 keys.
		keys := make([]int64, n)
		for i := range keys {
			c := get(i)
			if c.Kind != command.KindInt {
				keys = nil
				break
			}
			keys[i], keys2[i] = c.Int, get2(i).Int
		}
		if keys != nil {
			cmp := func(i, j int) int {
				if c := cmpInt(keys[i], keys[j]); c != 0 {
					return c
				}
				return cmpInt(keys2[i], keys2[j])
			}
			if presorted(l.order, cmp, desc) {
				return nil
			}
			slices.SortFunc(l.order, func(i, j int) int {
				if c := cmp(i, j); c != 0 {
					return sign * c
				}
				return i - j
			})
			return nil
		}
	}
	keys := make([]command.Cell, n)
	for i := range keys {
		keys[i], keys2[i] = get(i), get2(i).Int
	}
	slices.SortFunc(l.order, func(i, j int) int {
		if c := compareCells(&keys[i], &keys[j]); c != 0 {
			return sign * c
		}
		if c := cmpInt(keys2[i], keys2[j]); c != 0 {
			return sign * c
		}
		return i - j
	})
	return nil
}

// presorted handles the common case in one pass: the source lists calls
// in start order, so sorted on start time (the default) the rows are
// already in order or in exactly the reverse order. If cmp orders the rows
// strictly (no ties, which the index would have to break) one way or the
// other, presorted sets order (the identity on entry) to the result of the
// sort and reports true; otherwise it leaves order alone.
func presorted(order []int, cmp func(i, j int) int, desc bool) bool {
	up, down := true, true
	for i := 1; i < len(order) && (up || down); i++ {
		c := cmp(i-1, i)
		up, down = up && c < 0, down && c > 0
	}
	switch {
	case up && !desc, down && desc:
		return true
	case up || down:
		slices.Reverse(order)
		return true
	}
	return false
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compareCells orders null first, then by value within a kind.
func compareCells(a, b *command.Cell) int {
	if a.Kind != b.Kind {
		return cmpInt(int64(a.Kind), int64(b.Kind))
	}
	switch a.Kind {
	case command.KindString:
		return strings.Compare(a.Str, b.Str)
	case command.KindInt:
		return cmpInt(a.Int, b.Int)
	case command.KindFloat:
		switch {
		case a.Float < b.Float:
			return -1
		case a.Float > b.Float:
			return 1
		}
	case command.KindBool:
		return cmpInt(b2i(a.Bool), b2i(b.Bool))
	case command.KindAddr:
		return a.Addr.Compare(b.Addr)
	case command.KindTime:
		return cmpInt(a.Int, b.Int)
	}
	return 0
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
