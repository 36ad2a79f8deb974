package mi

import (
	"context"
	"strconv"
	"strings"

	"github.com/voipsensor/voipsensor/internal/command"
)

// OpenSIPS dialog states.
const (
	DlgUnconfirmed = 1 // INVITE seen, no provisional reply with a tag
	DlgEarly       = 2 // 1xx seen
	DlgConfirmedNA = 3 // 2xx seen, no ACK (unused: the sensor does not track ACKs)
	DlgConfirmed   = 4
	DlgDeleted     = 5
)

// Dialog is one call in the dlg_list shape. The first fields carry
// OpenSIPS's names and meanings; the sensor_* and later fields are the
// sensor's own. Context is filled for dlg_list_ctx only.
type Dialog struct {
	ID        string `json:"ID"`
	State     int    `json:"state"`
	TimeStart int64  `json:"timestart"`
	DateStart string `json:"datestart"`
	CallID    string `json:"callid"`
	FromURI   string `json:"from_uri"`
	ToURI     string `json:"to_uri"`

	SensorState string         `json:"sensor_state"`
	LastCode    int            `json:"last_code"`
	CallerAddr  string         `json:"caller_addr"` // "udp:IP:port" of the INVITE's sender
	CalleeAddr  string         `json:"callee_addr"`
	CallerUA    string         `json:"caller_user_agent,omitempty"`
	CalleeUA    string         `json:"callee_user_agent,omitempty"`
	Context     *DialogContext `json:"context,omitempty"`
}

// DialogContext is the dlg_list_ctx extra: the call's RTP streams.
type DialogContext struct {
	Streams []DialogStream `json:"streams"`
}

// DialogStream is one RTP stream of a dialog.
type DialogStream struct {
	SSRC     string  `json:"ssrc"` // "0x1234abcd"
	Src      string  `json:"src"`
	Dst      string  `json:"dst"`
	Packets  uint64  `json:"packets"`
	Lost     uint64  `json:"lost"`
	JitterMS float64 `json:"jitter_max_ms"`
	MOS      float64 `json:"mos"`
}

// DialogSource returns copies of the calls in progress, with Context
// filled; the caller owns them.
type DialogSource interface {
	Dialogs() []Dialog
}

func (g *group) dialogs(ctx bool) ([]Dialog, error) {
	if g.d.Dialogs == nil {
		return nil, unavailable("dialog source")
	}
	ds := g.d.Dialogs.Dialogs()
	if !ctx {
		for i := range ds {
			ds[i].Context = nil
		}
	}
	return ds, nil
}

func (g *group) dlgList(withCtx bool) func(context.Context, *command.Request) (command.Result, error) {
	return func(_ context.Context, req *command.Request) (command.Result, error) {
		ds, err := g.dialogs(withCtx)
		if err != nil {
			return nil, err
		}
		if id, ok := req.Param("callid"); ok && id != "" {
			for _, d := range ds {
				if d.CallID == id || d.ID == id {
					return value(map[string]any{"Dialog": d})
				}
			}
			return nil, ErrNoDialog
		}
		is, iok := req.Param("index")
		cs, cok := req.Param("counter")
		if iok || cok {
			if !iok || !cok {
				return nil, command.BadParam("index", errStr("index and counter go together"))
			}
			idx, _ := strconv.Atoi(is)
			cnt, _ := strconv.Atoi(cs)
			if idx < 0 || cnt <= 0 {
				return nil, command.BadParam("counter", errStr("want index >= 0 and counter > 0"))
			}
			page := []Dialog{}
			if idx < len(ds) {
				page = ds[idx:min(len(ds), idx+cnt)]
			}
			return value(orderedMap{{"count", len(ds)}, {"Dialogs", page}})
		}
		if ds == nil {
			ds = []Dialog{}
		}
		return value(map[string]any{"Dialogs": ds})
	}
}

func (g *group) kamDlgList(context.Context, *command.Request) (command.Result, error) {
	ds, err := g.dialogs(false)
	if err != nil {
		return nil, err
	}
	if ds == nil {
		ds = []Dialog{}
	}
	return value(ds)
}

type errStr string

func (e errStr) Error() string { return string(e) }

// AOR is one address of record with its contacts, in ul_dump shape.
type AOR struct {
	AOR      string    `json:"AOR"`
	Contacts []Contact `json:"Contacts,omitempty"`
}

// Contact is one observed binding. Expires is the seconds left (a number)
// or "expired"; Received is where the REGISTER came from and Socket where
// it went ("udp:IP:port").
type Contact struct {
	Contact     string `json:"Contact"`
	ContactID   string `json:"ContactID"`
	Expires     any    `json:"Expires"`
	UserAgent   string `json:"User-agent,omitempty"`
	Received    string `json:"Received,omitempty"`
	Socket      string `json:"Socket,omitempty"`
	SensorState string `json:"sensor_state"`
}

// ContactSource returns copies of the observed registrations grouped by
// AOR (user@domain); the caller owns them.
type ContactSource interface {
	AORs() []AOR
}

// usrlocTable is the one table name the sensor reports.
const usrlocTable = "location"

func (g *group) ulDump(_ context.Context, req *command.Request) (command.Result, error) {
	if g.d.Contacts == nil {
		return nil, unavailable("registration source")
	}
	aors := g.d.Contacts.AORs()
	if b, _ := req.Param("brief"); b != "" {
		for i := range aors {
			aors[i].Contacts = nil
		}
	}
	if aors == nil {
		aors = []AOR{}
	}
	return value(map[string]any{"Domains": []any{orderedMap{{"name", usrlocTable}, {"AORs", aors}}}})
}

func (g *group) ulShowContact(_ context.Context, req *command.Request) (command.Result, error) {
	if g.d.Contacts == nil {
		return nil, unavailable("registration source")
	}
	tbl, _ := req.Param("table_name")
	aor, _ := req.Param("aor")
	if tbl != usrlocTable {
		return nil, ErrNoTable
	}
	if !strings.Contains(aor, "@") {
		return nil, ErrNoDomain
	}
	for _, a := range g.d.Contacts.AORs() {
		if strings.EqualFold(a.AOR, aor) {
			return value(a)
		}
	}
	return nil, ErrNoAOR
}
