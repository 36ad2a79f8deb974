package registers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
)

// State is a registration state, numbered as in the legacy listregisters.
type State int

// Registration states.
const (
	StateOK State = iota + 1
	StateFailed
	StateUnknownMessageOK
	StateManyRegMessages
	StateExpired
	StateUnregister
)

var stateNames = map[string]State{
	"ok": StateOK, "failed": StateFailed, "unknownmessageok": StateUnknownMessageOK,
	"manyregmessages": StateManyRegMessages, "expired": StateExpired, "unregister": StateUnregister,
}

// ParseState parses a legacy state name (case-insensitive).
func ParseState(s string) (State, error) {
	if st, ok := stateNames[strings.ToLower(strings.TrimSpace(s))]; ok {
		return st, nil
	}
	return 0, fmt.Errorf("registers: unknown state %q", s)
}

// Registration is a copy of one observed REGISTER binding.
type Registration struct {
	ID                            uint64
	SensorID                      int       // <= 0: unset (-1)
	CallDate                      time.Time // time of the last state
	SIPCallerIP, SIPCalledIP      netip.Addr
	SIPCallerPort, SIPCalledPort  uint16
	FromNum, FromName, FromDomain string
	ToNum, ToDomain               string
	ContactNum, ContactDomain     string
	DigestUsername, DigestRealm   string
	Expires                       int // seconds
	ExpiresAt                     time.Time
	State                         State
	UA                            string
	RRDAvg                        float64 // register round trip, ms
	SIPALGDetected                bool
	VLAN                          int // -1 none
}

// Source provides a copy of the current registrations, taken under the
// table lock and owned by the caller afterwards.
type Source interface {
	Registrations() []Registration
}

// Deps are the data sources of the registers group.
type Deps struct {
	Source Source
}

// Register adds listregisters and totalregisters to reg.
func Register(reg *command.Registry, d Deps) {
	g := &group{d: d}
	reg.Register(command.Command{
		Name: "listregisters", Perm: command.PermCall,
		Doc: `list registrations as a table (JSON options: states, limit, sort_field, sort_dir, zip, state_from_le, rrd_ge, filter)`,
		Params: []command.Param{{Name: "options",
			Doc: `JSON object, e.g. {"states":"OK,Failed","limit":50}; other text is ignored, as the sniffer ignores it`}},
		Run: g.list,
	})
	reg.Register(command.Command{
		Name: "totalregisters", Perm: command.PermCall,
		Doc: "number of registrations in memory",
		Run: g.total,
	})
}

type group struct{ d Deps }

func (g *group) regs() ([]Registration, error) {
	if g.d.Source == nil {
		return nil, fmt.Errorf("%w: no registration source", command.ErrUnavailable)
	}
	return g.d.Source.Registrations(), nil
}

func (g *group) total(context.Context, *command.Request) (command.Result, error) {
	rs, err := g.regs()
	if err != nil {
		return nil, err
	}
	return command.Text(strconv.Itoa(len(rs))), nil
}

type options struct {
	States    any    `json:"states"`
	Limit     any    `json:"limit"`
	SortField string `json:"sort_field"`
	SortDir   string `json:"sort_dir"`
	Zip       string `json:"zip"`
}

func asString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return ""
}

// Totals is the listregisters summary element.
type Totals struct {
	Total int `json:"total"`
}

func (g *group) list(_ context.Context, req *command.Request) (command.Result, error) {
	var o options
	f := &regFilter{}
	var m map[string]json.RawMessage
	// Text that is not a JSON object is ignored, as the sniffer ignores it.
	if raw, _ := req.Param("options"); json.Unmarshal([]byte(raw), &m) == nil {
		if err := json.Unmarshal([]byte(raw), &o); err != nil {
			return nil, command.BadParam("options", err)
		}
		var err error
		if f, err = parseRegFilter(m); err != nil {
			return nil, command.BadParam("filter", err)
		}
	}
	states := map[State]bool{}
	for _, s := range strings.Split(asString(o.States), ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		st, err := ParseState(s)
		if err != nil {
			return nil, command.BadParam("states", err)
		}
		states[st] = true
	}
	limit := 0
	if l := asString(o.Limit); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			return nil, command.BadParam("limit", err)
		}
		limit = n
	}
	all, err := g.regs()
	if err != nil {
		return nil, err
	}
	keep := all[:0]
	for i := range all {
		if (len(states) == 0 || states[all[i].State]) && f.match(&all[i]) {
			keep = append(keep, all[i])
		}
	}
	if o.SortField == "" {
		// The sniffer lists its register map in key order: To number, To
		// domain, then digest user name where both have one, without case.
		sort.SliceStable(keep, func(a, b int) bool { return mapOrder(&keep[a], &keep[b]) < 0 })
	} else {
		col := -1
		for i, c := range columns {
			if strings.EqualFold(c.name, o.SortField) {
				col = i
			}
		}
		if col < 0 {
			return nil, command.BadParam("sort_field", fmt.Errorf("unknown column %q", o.SortField))
		}
		desc := strings.HasPrefix(strings.ToLower(o.SortDir), "desc")
		get := columns[col].get
		sort.SliceStable(keep, func(a, b int) bool {
			c := compare(get(&keep[a]), get(&keep[b]))
			if desc {
				return c > 0
			}
			return c < 0
		})
	}
	t := newTable(keep)
	t.Totals = Totals{Total: len(keep)}
	if limit > 0 && limit < t.Len {
		t.Len = limit
	}
	return t, nil
}

// mapOrder compares a and b as the sniffer's RegisterId does (with its
// default register comparison options), then by ID.
func mapOrder(a, b *Registration) int {
	lower := strings.ToLower
	if c := strings.Compare(lower(a.ToNum), lower(b.ToNum)); c != 0 {
		return c
	}
	if c := strings.Compare(lower(a.ToDomain), lower(b.ToDomain)); c != 0 {
		return c
	}
	if a.DigestUsername != "" && b.DigestUsername != "" {
		if c := strings.Compare(lower(a.DigestUsername), lower(b.DigestUsername)); c != 0 {
			return c
		}
	}
	return cmpOrd(int64(a.ID), int64(b.ID))
}

func compare(a, b command.Cell) int {
	if a.Kind != b.Kind {
		return int(a.Kind) - int(b.Kind)
	}
	switch a.Kind {
	case command.KindString:
		return strings.Compare(a.Str, b.Str)
	case command.KindInt, command.KindTime:
		return cmpOrd(a.Int, b.Int)
	case command.KindFloat:
		switch {
		case a.Float < b.Float:
			return -1
		case a.Float > b.Float:
			return 1
		}
	case command.KindAddr:
		return a.Addr.Compare(b.Addr)
	case command.KindBool:
		return cmpOrd(boolInt(a.Bool), boolInt(b.Bool))
	}
	return 0
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func cmpOrd(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

type colDef struct {
	name string
	get  func(r *Registration) command.Cell
}

func s(f func(r *Registration) string) func(r *Registration) command.Cell {
	return func(r *Registration) command.Cell { return command.Str(f(r)) }
}

func null(*Registration) command.Cell { return command.Null() }

// columns is the legacy registerFields[] order.
var columns = []colDef{
	{"ID", func(r *Registration) command.Cell { return command.Int(int64(r.ID)) }},
	{"id_sensor", func(r *Registration) command.Cell {
		if r.SensorID <= 0 {
			return command.Int(-1)
		}
		return command.Int(int64(r.SensorID))
	}},
	{"fname", func(*Registration) command.Cell { return command.Int(0) }}, // the sniffer's fname_last: 0 without spool files
	{"calldate", func(r *Registration) command.Cell { return command.Time(r.CallDate) }},
	{"sipcallerip", func(r *Registration) command.Cell { return command.Addr(r.SIPCallerIP) }},
	{"sipcalledip", func(r *Registration) command.Cell { return command.Addr(r.SIPCalledIP) }},
	{"sipcallerip_encaps", null},
	{"sipcalledip_encaps", null},
	{"sipcallerip_encaps_prot", null},
	{"sipcalledip_encaps_prot", null},
	{"sipcallerport", func(r *Registration) command.Cell { return command.Int(int64(r.SIPCallerPort)) }},
	{"sipcalledport", func(r *Registration) command.Cell { return command.Int(int64(r.SIPCalledPort)) }},
	{"from_num", s(func(r *Registration) string { return r.FromNum })},
	{"from_name", s(func(r *Registration) string { return r.FromName })},
	{"from_domain", s(func(r *Registration) string { return r.FromDomain })},
	{"to_num", s(func(r *Registration) string { return r.ToNum })},
	{"to_domain", s(func(r *Registration) string { return r.ToDomain })},
	{"contact_num", s(func(r *Registration) string { return r.ContactNum })},
	{"contact_domain", s(func(r *Registration) string { return r.ContactDomain })},
	{"digestusername", s(func(r *Registration) string { return r.DigestUsername })},
	{"digestrealm", s(func(r *Registration) string { return r.DigestRealm })},
	{"expires", func(r *Registration) command.Cell { return command.Int(int64(r.Expires)) }},
	{"expires_at", func(r *Registration) command.Cell { return command.Time(r.ExpiresAt) }},
	{"state", func(r *Registration) command.Cell { return command.Int(int64(r.State)) }},
	{"ua", s(func(r *Registration) string { return r.UA })},
	{"rrd_avg", func(r *Registration) command.Cell { return command.Float(r.RRDAvg) }},
	{"spool_index", func(*Registration) command.Cell { return command.Int(0) }},
	{"is_sipalg_detected", func(r *Registration) command.Cell { return command.Bool(r.SIPALGDetected) }},
	{"vlan", func(r *Registration) command.Cell {
		if r.VLAN < 0 {
			return command.Null()
		}
		return command.Int(int64(r.VLAN))
	}},
	{"sipcallerip_country_code", null},
	{"sipcalledip_country_code", null},
	{"from_num_country_code", null},
	{"to_num_country_code", null},
}

// Columns lists the listregisters column names in wire order.
func Columns() []string {
	out := make([]string, len(columns))
	for i, c := range columns {
		out[i] = c.name
	}
	return out
}

func newTable(rs []Registration) *command.Table {
	t := &command.Table{
		Columns: make([]command.Column, len(columns)),
		Len:     len(rs),
		Emit: func(i int, w command.CellWriter) {
			for c := range columns {
				command.WriteCell(w, columns[c].get(&rs[i]))
			}
		},
	}
	for i, def := range columns {
		t.Columns[i] = command.Column{Name: def.name}
	}
	return t
}
