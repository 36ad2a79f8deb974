package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
)

// Paging bounds of cdr_search, as the store applies them.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// Query is what cdr_search selects. Patterns take % (any run of
// characters) and _ (one character); a zero field selects everything.
type Query struct {
	Caller, Called string
	Number         string // caller or called
	CallID         string
	IP             netip.Addr // SIP source or destination of the INVITE
	From, To       time.Time  // From ≤ call date < To
	// CodeMin and CodeMax bound the last SIP response code, inclusive (0:
	// no bound).
	CodeMin, CodeMax int
	State            string // answered, busy, noanswer, cancelled, failed
	Ending           string // normal, shutdown, absolute_timeout, rtp_timeout, setup_timeout
	// MOSBelow (1–5) and LossAbove (percent) are quality thresholds on the
	// worse direction; nil is none.
	MOSBelow, LossAbove *float64
	// Sort is calldate (default), duration, caller, called, code, mos,
	// loss or jitter; Asc orders ascending (default descending).
	Sort          string
	Asc           bool
	Limit, Offset int
}

// Call is one CDR as the history lists it.
type Call struct {
	ID              int64      `json:"id"` // the store's row key: cdr_detail's id
	CallID          string     `json:"callid"`
	CallDate        time.Time  `json:"calldate"`
	CallEnd         *time.Time `json:"callend"`
	Duration        float64    `json:"duration"`         // seconds
	ConnectDuration float64    `json:"connect_duration"` // seconds, 0 when unanswered
	Answered        bool       `json:"answered"`
	Caller          string     `json:"caller"`
	CallerName      string     `json:"callername"`
	CallerDomain    string     `json:"caller_domain"`
	Called          string     `json:"called"`
	CalledDomain    string     `json:"called_domain"`
	CallerIP        string     `json:"sipcallerip"` // ip:port of the INVITE's source
	CalledIP        string     `json:"sipcalledip"`
	LastSIPCode     int        `json:"lastSIPresponseNum"`
	LastSIPReason   string     `json:"lastSIPresponse"`
	State           string     `json:"state"`  // answered, busy, noanswer, cancelled, failed
	Ending          string     `json:"ending"` // why the record was written; "" unknown
	WhoHanged       string     `json:"whohanged"`
	MOS             *float64   `json:"mos"`      // worse direction, null without one
	LossPct         float64    `json:"loss_pct"` // worse direction
	JitterMS        float64    `json:"jitter_ms"`
	IDSensor        *int       `json:"id_sensor"`
	CallerUA        string     `json:"caller_agent"`
	CalledUA        string     `json:"called_agent"`
}

// Page is what the store answers a Query with.
type Page struct {
	Total       int // matching rows, counted up to the store's cap
	TotalCapped bool
	Calls       []Call
}

// MOS is one stream's MOS by jitter buffer (the sniffer's F1, F2,
// adaptive).
type MOS struct {
	F1    float64 `json:"f1"`
	F2    float64 `json:"f2"`
	Adapt float64 `json:"adapt"`
}

// Stream is the final quality of one RTP stream of an ended call.
type Stream struct {
	Side        string  `json:"side"` // caller (sent by the caller) or callee
	Src         string  `json:"src"`  // ip:port, "" when unknown
	Dst         string  `json:"dst"`
	SSRC        uint32  `json:"ssrc"`
	PayloadType int     `json:"payload_type"`
	Codec       string  `json:"codec"`
	Received    int64   `json:"received"`
	Lost        int64   `json:"lost"`
	LossPct     float64 `json:"loss_pct"`
	JitterAvgMS float64 `json:"jitter_avg_ms"`
	JitterMaxMS float64 `json:"jitter_max_ms"`
	// MOS is the average of the closed 10 s intervals and MOSMin their
	// lowest; null when none closed.
	MOS    *MOS `json:"mos"`
	MOSMin *MOS `json:"mos_min"`
}

// Message is one SIP message of a ladder: the start line and the whole
// text, cut at the sensor's per-message cap (Size > len(Raw) then).
type Message struct {
	Time time.Time `json:"time"`
	Src  string    `json:"src"`
	Dst  string    `json:"dst"`
	Line string    `json:"line"`
	Raw  string    `json:"raw"`
	Size int       `json:"size"`
}

// Ladder is a call's SIP messages, oldest first.
type Ladder struct {
	CallID string `json:"callid"`
	// Source says where they come from: "memory" (the call table's
	// ladder log) or "spool" (the call's SIP pcap).
	Source   string    `json:"source"`
	Messages []Message `json:"messages"`
	// Omitted counts messages left out in the middle of a long call;
	// Truncated says that the oldest ones are no longer held.
	Omitted   int  `json:"omitted"`
	Truncated bool `json:"truncated"`
}

// complete reports whether l holds every message of its call whole.
func (l *Ladder) complete() bool {
	if l.Omitted > 0 || l.Truncated || len(l.Messages) == 0 {
		return false
	}
	for _, m := range l.Messages {
		if len(m.Raw) < m.Size {
			return false
		}
	}
	return true
}

// File is a recording of a call in the spool, named relative to it as
// getfile takes it.
type File struct {
	Type string `json:"type"` // SIP, RTP or AUDIO
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// Detail is cdr_detail's answer.
type Detail struct {
	CallID string `json:"callid"`
	// CDR is the stored record, null while it is not stored yet (the
	// call ended moments ago, or the store is failing): Pending is then
	// true.
	CDR     *Call    `json:"cdr"`
	Pending bool     `json:"pending"`
	Streams []Stream `json:"streams"`
	// Ladder is null when neither memory nor the spool has the call's
	// SIP. LadderError says why the spool's SIP pcap could not be read.
	Ladder      *Ladder `json:"ladder"`
	LadderError string  `json:"ladder_error,omitempty"`
	Files       []File  `json:"files"`
}

// Store reads the CDR store. Errors wrapping [command.ErrNoEntry] mean
// no such call; wrapping [command.ErrBadParam], a query the store
// refuses.
type Store interface {
	Search(ctx context.Context, q Query) (Page, error)
	// Call reads the row with this id when id > 0, otherwise the newest
	// with this Call-ID, with its streams.
	Call(ctx context.Context, id int64, callID string) (Call, []Stream, error)
}

// Ladders are the call table's ladder log.
type Ladders interface {
	// Ladder returns the messages still in memory for the call with
	// reference ref, or when ref is 0 for the calls with this Call-ID.
	Ladder(ref uint64, callID string) (Ladder, bool)
}

// Spool reads a call's recordings.
type Spool interface {
	// Files lists the recordings of the call with this Call-ID that
	// started at start (the zero time when unknown: every minute is
	// searched).
	Files(callID string, start time.Time) []File
	// Ladder decodes the SIP messages of callID from the SIP pcaps among
	// files.
	Ladder(ctx context.Context, callID string, files []File) (Ladder, bool, error)
}

// Deps wires the group; any of them may be nil (no store: cdr_search is
// unavailable; no ladder log or spool: cdr_detail goes without).
type Deps struct {
	Store   Store
	Ladders Ladders
	Spool   Spool
}

// Register adds cdr_search and cdr_detail to reg.
func Register(reg *command.Registry, d Deps) {
	g := &group{d: d}
	str := func(name, doc string) command.Param { return command.Param{Name: name, Doc: doc} }
	reg.Register(command.Command{
		Name: "cdr_search", Perm: command.PermCall,
		Doc: "search the stored CDRs: filters, sort and page as a JSON object or as named parameters; each row says " +
			"which of its recordings are still in the spool; " +
			`{"total":N,"total_capped":false,"limit":50,"offset":0,"sort":"calldate","dir":"desc","calls":[{…,"files":{"sip":true,"rtp":true,"audio":false}}]}`,
		Params: []command.Param{
			{Name: "query", Type: command.ParamJSON, Doc: `JSON object of the parameters below, e.g. {"caller":"100%","state":"answered","limit":20}; named parameters override it`},
			str("caller", "caller number; % matches any run of characters, _ one character"),
			str("called", "called number, as caller"),
			str("number", "caller or called number, as caller"),
			str("ip", "SIP source or destination address of the INVITE"),
			str("callid", "Call-ID, as caller"),
			str("from", "calls that started at or after: RFC 3339, YYYY-MM-DD[ HH:MM[:SS]] (UTC) or Unix seconds"),
			str("to", "calls that started before, as from"),
			str("code", "last SIP response code: 486, 4xx or 400-499"),
			str("state", "answered, busy, noanswer, cancelled or failed"),
			str("ending", "why the record was written: normal, shutdown, absolute_timeout, rtp_timeout or setup_timeout"),
			str("mos_below", "calls whose worse MOS is below this (1 to 5)"),
			str("loss_above", "calls whose worse packet loss is above this percentage"),
			str("sort", "calldate (default), duration, caller, called, code, mos, loss or jitter"),
			str("dir", "desc (default) or asc"),
			{Name: "limit", Type: command.ParamInt, Doc: "page size, 1 to 1000 (default 50)"},
			{Name: "offset", Type: command.ParamInt, Doc: "rows skipped before the page"},
		},
		Run: g.search,
	})
	reg.Register(command.Command{
		Name: "cdr_detail", Perm: command.PermCall,
		Doc: "one call of the history: its CDR (null while not yet stored), final stream quality, SIP messages " +
			"with their text (from memory, else the spool's SIP pcap) and its recordings still in the spool",
		Params: []command.Param{
			str("callid", "Call-ID"),
			{Name: "id", Type: command.ParamInt, Doc: "the CDR's id from cdr_search"},
			str("callreference", "the call's reference while it was active (listcalls), e.g. 0x1f"),
		},
		Run: g.detail,
	})
}

type group struct{ d Deps }

// params merges the JSON query and the named parameters, named last.
func params(req *command.Request) (map[string]string, error) {
	out := map[string]string{}
	if raw, _ := req.Param("query"); raw != "" {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			return nil, command.BadParam("query", errors.New("want a JSON object"))
		}
		for k, v := range m {
			s, err := command.JSONText(v)
			if err != nil {
				return nil, command.BadParam(k, err)
			}
			out[k] = s
		}
	}
	for _, name := range []string{"caller", "called", "number", "ip", "callid", "from", "to", "code", "state", "ending",
		"mos_below", "loss_above", "sort", "dir", "limit", "offset"} {
		if v, ok := req.Param(name); ok && v != "" {
			out[name] = v
		}
	}
	return out, nil
}

// ParseQuery turns cdr_search's parameters into a Query; an error is a
// [*command.ParamError].
func ParseQuery(p map[string]string) (Query, error) {
	q := Query{Caller: p["caller"], Called: p["called"], Number: p["number"], CallID: p["callid"]}
	for k, v := range p {
		var err error
		switch k {
		case "caller", "called", "number", "callid":
		case "ip":
			q.IP, err = netip.ParseAddr(v)
		case "from":
			q.From, err = ParseTime(v)
		case "to":
			q.To, err = ParseTime(v)
		case "code":
			q.CodeMin, q.CodeMax, err = parseCode(v)
		case "state":
			q.State = v
			err = oneOf(v, "answered", "busy", "noanswer", "cancelled", "failed")
		case "ending":
			q.Ending = v
			err = oneOf(v, "normal", "shutdown", "absolute_timeout", "rtp_timeout", "setup_timeout")
		case "mos_below":
			q.MOSBelow, err = parseFloat(v, 1, 5)
		case "loss_above":
			q.LossAbove, err = parseFloat(v, 0, 100)
		case "sort":
			q.Sort = v
			err = oneOf(v, "calldate", "duration", "caller", "called", "code", "mos", "loss", "jitter")
		case "dir":
			err = oneOf(strings.ToLower(v), "asc", "desc")
			q.Asc = strings.EqualFold(v, "asc")
		case "limit":
			q.Limit, err = strconv.Atoi(v)
			if err == nil && (q.Limit < 1 || q.Limit > MaxLimit) {
				err = fmt.Errorf("%d is not between 1 and %d", q.Limit, MaxLimit)
			}
		case "offset":
			q.Offset, err = strconv.Atoi(v)
			if err == nil && q.Offset < 0 {
				err = errors.New("negative")
			}
		default:
			err = errors.New("unknown parameter")
		}
		if err != nil {
			return Query{}, command.BadParam(k, err)
		}
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return Query{}, command.BadParam("to", errors.New("not after from"))
	}
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	if q.Sort == "" {
		q.Sort = "calldate"
	}
	return q, nil
}

func oneOf(v string, set ...string) error {
	for _, s := range set {
		if v == s {
			return nil
		}
	}
	return fmt.Errorf("%q is not one of %s", v, strings.Join(set, ", "))
}

func parseFloat(v string, lo, hi float64) (*float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || f < lo || f > hi {
		return nil, fmt.Errorf("%q is not a number from %g to %g", v, lo, hi)
	}
	return &f, nil
}

// parseCode reads 486, 4xx or 400-499.
func parseCode(v string) (lo, hi int, err error) {
	bad := fmt.Errorf("%q is not a SIP code, a class like 4xx or a range like 400-499", v)
	if len(v) == 3 && v[0] >= '1' && v[0] <= '6' && strings.EqualFold(v[1:], "xx") {
		lo = int(v[0]-'0') * 100
		return lo, lo + 99, nil
	}
	a, b, isRange := strings.Cut(v, "-")
	if lo, err = strconv.Atoi(strings.TrimSpace(a)); err != nil || lo < 100 || lo > 699 {
		return 0, 0, bad
	}
	hi = lo
	if isRange {
		if hi, err = strconv.Atoi(strings.TrimSpace(b)); err != nil || hi < lo || hi > 699 {
			return 0, 0, bad
		}
	}
	return lo, hi, nil
}

// ParseTime reads a date bound: RFC 3339, "YYYY-MM-DD HH:MM[:SS]" or
// "YYYY-MM-DD" (UTC; a T may replace the space), or Unix seconds.
func ParseTime(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	for _, layout := range []string{time.DateTime, "2006-01-02 15:04", time.DateOnly} {
		if t, err := time.Parse(layout, strings.Replace(v, "T", " ", 1)); err == nil {
			return t, nil
		}
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a date", v)
}

// SearchResult is cdr_search's answer.
type SearchResult struct {
	Total       int    `json:"total"`
	TotalCapped bool   `json:"total_capped"` // the count stopped at the store's cap
	Limit       int    `json:"limit"`
	Offset      int    `json:"offset"`
	Sort        string `json:"sort"`
	Dir         string `json:"dir"`
	Calls       []Row  `json:"calls"`
}

// Row is one call of cdr_search's answer: its CDR and which of its
// recordings are still in the spool.
type Row struct {
	Call
	// Files is null when the sensor has no spool to look in.
	Files *Recordings `json:"files"`
}

// Recordings says which recordings of a call the spool still holds; all
// false once the cleaner removed them (or when the call was not
// recorded).
type Recordings struct {
	SIP   bool `json:"sip"`
	RTP   bool `json:"rtp"`
	Audio bool `json:"audio"`
}

// recordings looks up the files of c in the spool: a few stat calls in the
// minute of its start (and the ones beside it). A call without a start
// date is not looked up, as that would search every minute of the spool.
func (g *group) recordings(c *Call) *Recordings {
	if g.d.Spool == nil || c.CallDate.IsZero() || c.CallID == "" {
		return nil
	}
	r := new(Recordings)
	for _, f := range g.d.Spool.Files(c.CallID, c.CallDate) {
		switch f.Type {
		case "SIP":
			r.SIP = true
		case "RTP":
			r.RTP = true
		case "AUDIO":
			r.Audio = true
		}
	}
	return r
}

func (g *group) search(ctx context.Context, req *command.Request) (command.Result, error) {
	if g.d.Store == nil {
		return nil, fmt.Errorf("%w: no CDR store", command.ErrUnavailable)
	}
	p, err := params(req)
	if err != nil {
		return nil, err
	}
	q, err := ParseQuery(p)
	if err != nil {
		return nil, err
	}
	page, err := g.d.Store.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	res := SearchResult{Total: page.Total, TotalCapped: page.TotalCapped, Limit: q.Limit, Offset: q.Offset,
		Sort: q.Sort, Dir: "desc", Calls: make([]Row, len(page.Calls))}
	if q.Asc {
		res.Dir = "asc"
	}
	// Only the page's rows are looked up in the spool, never the table.
	for i := range page.Calls {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res.Calls[i] = Row{Call: page.Calls[i], Files: g.recordings(&page.Calls[i])}
	}
	return command.Value{V: res}, nil
}

// parseRef reads a call reference: hexadecimal with or without 0x.
func parseRef(s string) (uint64, bool) {
	s = strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(s), "0x"), "0X")
	v, err := strconv.ParseUint(s, 16, 64)
	return v, err == nil && v != 0
}

func (g *group) detail(ctx context.Context, req *command.Request) (command.Result, error) {
	callID, _ := req.Param("callid")
	var id int64
	if s, ok := req.Param("id"); ok && s != "" {
		id, _ = strconv.ParseInt(s, 10, 64)
		if id <= 0 {
			return nil, command.BadParam("id", fmt.Errorf("%q is not a CDR id", s))
		}
	}
	var ref uint64
	if s, ok := req.Param("callreference"); ok && s != "" {
		var good bool
		if ref, good = parseRef(s); !good {
			return nil, command.BadParam("callreference", fmt.Errorf("%q is not a call reference", s))
		}
	}
	if callID == "" && id == 0 && ref == 0 {
		return nil, &command.ParamError{Param: "callid", Err: command.ErrMissingParam}
	}

	// A reference names a call of the ladder log, which knows its
	// Call-ID; an id names a row of the store.
	var mem Ladder
	var inMemory bool
	if g.d.Ladders != nil && (ref != 0 || callID != "") {
		if mem, inMemory = g.d.Ladders.Ladder(ref, callID); inMemory && callID == "" {
			callID = mem.CallID
		}
	}
	out := Detail{Streams: []Stream{}, Files: []File{}}
	if g.d.Store != nil && (callID != "" || id > 0) {
		c, streams, err := g.d.Store.Call(ctx, id, callID)
		switch {
		case errors.Is(err, command.ErrNoEntry):
		case err != nil:
			return nil, err
		default:
			out.CDR = &c
			callID = c.CallID
			if streams != nil {
				out.Streams = streams
			}
		}
	}
	if callID == "" {
		what := "id " + strconv.FormatInt(id, 10)
		if ref != 0 {
			what = fmt.Sprintf("reference 0x%x", ref)
		}
		return nil, fmt.Errorf("history: %s: %w", what, command.ErrNoEntry)
	}
	out.CallID = callID
	if inMemory && mem.CallID != callID {
		inMemory = false // the reference and the Call-ID name different calls
	}
	if !inMemory && g.d.Ladders != nil {
		mem, inMemory = g.d.Ladders.Ladder(0, callID)
	}
	mem.Source = "memory"
	if g.d.Spool != nil {
		var start time.Time
		switch {
		case out.CDR != nil:
			start = out.CDR.CallDate
		case inMemory:
			start = mem.Messages[0].Time
		}
		if files := g.d.Spool.Files(callID, start); files != nil {
			out.Files = files
		}
	}
	if inMemory {
		out.Ladder = &mem
	}
	if !inMemory || !mem.complete() {
		if l, ok, err := g.spoolLadder(ctx, callID, out.Files); err != nil {
			out.LadderError = err.Error()
		} else if ok && (!inMemory || len(l.Messages) >= len(mem.Messages)) {
			l.Source = "spool"
			out.Ladder = &l
		}
	}
	if out.CDR == nil && out.Ladder == nil && len(out.Files) == 0 {
		return nil, fmt.Errorf("history: call %s: %w", callID, command.ErrNoEntry)
	}
	out.Pending = out.CDR == nil
	if out.Ladder != nil && out.Ladder.Messages == nil {
		out.Ladder.Messages = []Message{}
	}
	return command.Value{V: out}, nil
}

// spoolLadder reads the ladder from the call's SIP pcaps, if it has any.
func (g *group) spoolLadder(ctx context.Context, callID string, files []File) (Ladder, bool, error) {
	if g.d.Spool == nil {
		return Ladder{}, false, nil
	}
	for _, f := range files {
		if f.Type == "SIP" {
			return g.d.Spool.Ladder(ctx, callID, files)
		}
	}
	return Ladder{}, false, nil
}
