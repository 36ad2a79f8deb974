package registers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/voipsensor/voipsensor/internal/command"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// regFilter is the compiled state_from_le, rrd_ge and filter options of
// listregisters: every predicate must hold.
type regFilter struct {
	preds []func(r *Registration) bool
}

func (f *regFilter) match(r *Registration) bool {
	for _, p := range f.preds {
		if !p(r) {
			return false
		}
	}
	return true
}

// likeRE compiles a legacy pattern: '%' matches any run, '_' one
// character, the rest literally, case-insensitive, the whole value.
func likeRE(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("(?is)^")
	for _, r := range p {
		switch r {
		case '%':
			b.WriteString(".*")
		case '_':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// textFields are the filter keys matched as text (with % wildcards; a
// comma separates alternatives).
var textFields = map[string]func(r *Registration) string{
	"from_num": func(r *Registration) string { return r.FromNum }, "to_num": func(r *Registration) string { return r.ToNum },
	"contact_num": func(r *Registration) string { return r.ContactNum }, "from_domain": func(r *Registration) string { return r.FromDomain },
	"to_domain": func(r *Registration) string { return r.ToDomain }, "contact_domain": func(r *Registration) string { return r.ContactDomain },
	"digestusername": func(r *Registration) string { return r.DigestUsername }, "digestrealm": func(r *Registration) string { return r.DigestRealm },
	"ua": func(r *Registration) string { return r.UA },
}

// numFields are the filter keys compared as integers: _ge is >=, _lt <.
var numFields = map[string]func(r *Registration) int64{
	"expires":       func(r *Registration) int64 { return int64(r.Expires) },
	"rrd_avg":       func(r *Registration) int64 { return int64(r.RRDAvg) },
	"sipcallerport": func(r *Registration) int64 { return int64(r.SIPCallerPort) },
	"sipcalledport": func(r *Registration) int64 { return int64(r.SIPCalledPort) },
}

// parseRegFilter compiles the top-level state_from_le (unix s: the last
// state at or before it) and rrd_ge (rrd_avg at least, ms) options and the
// filter object(s). Filter keys: sipcallerip, sipcalledip (address or
// CIDR prefix, comma-separated alternatives), the textFields with %
// wildcards, expires/rrd_avg/sipcallerport/sipcalledport with _ge and _lt,
// calldate_from/calldate_to (unix s or "YYYY-MM-DD HH:MM:SS" UTC). Keys the
// legacy server knows but this one does not (groups, countries) are
// ignored, as the legacy server ignores unknown ones.
func parseRegFilter(m map[string]json.RawMessage) (*regFilter, error) {
	f := &regFilter{}
	num := func(k string, raw json.RawMessage) (int64, bool, error) {
		s, err := command.JSONText(raw)
		if err != nil || s == "" {
			return 0, false, err
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("%s: %w", k, err)
		}
		return n, true, nil
	}
	if n, ok, err := num("state_from_le", m["state_from_le"]); err != nil {
		return nil, err
	} else if ok {
		f.preds = append(f.preds, func(r *Registration) bool { return r.CallDate.Unix() <= n })
	}
	if n, ok, err := num("rrd_ge", m["rrd_ge"]); err != nil {
		return nil, err
	} else if ok {
		f.preds = append(f.preds, func(r *Registration) bool { return int64(r.RRDAvg) >= n })
	}
	raw := bytes.TrimSpace(m["filter"])
	if len(raw) == 0 || string(raw) == "null" || string(raw) == `""` {
		return f, nil
	}
	var objs []map[string]json.RawMessage
	if raw[0] == '[' {
		if err := json.Unmarshal(raw, &objs); err != nil {
			return nil, fmt.Errorf("filter: %w", err)
		}
	} else {
		var o map[string]json.RawMessage
		if err := json.Unmarshal(raw, &o); err != nil {
			return nil, fmt.Errorf("filter: %w", err)
		}
		objs = append(objs, o)
	}
	for _, o := range objs {
		for k, v := range o {
			s, err := command.JSONText(v)
			if err != nil {
				return nil, fmt.Errorf("filter %s: %w", k, err)
			}
			if s == "" {
				continue
			}
			p, err := regPredicate(k, s)
			if err != nil {
				return nil, fmt.Errorf("filter %s: %w", k, err)
			}
			if p != nil {
				f.preds = append(f.preds, p)
			}
		}
	}
	return f, nil
}

func regPredicate(k, s string) (func(r *Registration) bool, error) {
	if get, ok := textFields[k]; ok {
		var res []*regexp.Regexp
		for _, alt := range strings.Split(s, ",") {
			res = append(res, likeRE(strings.TrimSpace(alt)))
		}
		return func(r *Registration) bool {
			v := get(r)
			for _, re := range res {
				if re.MatchString(v) {
					return true
				}
			}
			return false
		}, nil
	}
	switch k {
	case "sipcallerip", "sipcalledip":
		var ps []netip.Prefix
		for _, alt := range strings.Split(s, ",") {
			alt = strings.TrimSpace(alt)
			p, err := netip.ParsePrefix(alt)
			if err != nil {
				a, err2 := netip.ParseAddr(alt)
				if err2 != nil {
					return nil, err2
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			ps = append(ps, p)
		}
		caller := k == "sipcallerip"
		return func(r *Registration) bool {
			a := r.SIPCalledIP
			if caller {
				a = r.SIPCallerIP
			}
			for _, p := range ps {
				if p.Contains(a.Unmap()) {
					return true
				}
			}
			return false
		}, nil
	case "calldate_from", "calldate_to":
		t, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			tm, err2 := parseDateTime(s)
			if err2 != nil {
				return nil, err2
			}
			t = tm
		}
		if k == "calldate_from" {
			return func(r *Registration) bool { return r.CallDate.Unix() >= t }, nil
		}
		return func(r *Registration) bool { return r.CallDate.Unix() <= t }, nil
	}
	for name, get := range numFields {
		var ge bool
		switch k {
		case name + "_ge":
			ge = true
		case name + "_lt":
		default:
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, err
		}
		if ge {
			return func(r *Registration) bool { return get(r) >= n }, nil
		}
		return func(r *Registration) bool { return get(r) < n }, nil
	}
	return nil, nil // unknown key: ignored
}

// parseDateTime reads "YYYY-MM-DD HH:MM:SS" (UTC) as unix seconds.
func parseDateTime(s string) (int64, error) {
	t, err := time.Parse(time.DateTime, s)
	if err != nil {
		return 0, err
	}
	return t.Unix(), nil
}
