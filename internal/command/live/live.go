package live

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
)

// Legacy reply texts (manager API section 3D).
const (
	ReplySuccess   = "success"
	ReplyAlready   = "call already listening"
	ReplyNoCall    = "call not found"
	ReplyDisabled  = "liveaudio is disabled"
	ReplyWait      = "information: wait for data"
	ReplyErrNoCall = "error: call not found"
	ReplyNoWorker  = "error: worker not found"
	ReplyNoClient  = "error: client of worker not found"
)

// Message is one SIP message of a call's ladder.
type Message struct {
	Time time.Time `json:"time"`
	Src  string    `json:"src"` // ip:port
	Dst  string    `json:"dst"`
	Line string    `json:"line"` // start line
	Raw  string    `json:"raw,omitempty"`
	Size int       `json:"size"`
}

// Ladder is the sip_ladder reply.
type Ladder struct {
	CallRef   string    `json:"callreference"`
	Messages  []Message `json:"messages"`
	Omitted   int       `json:"omitted"`   // messages left out in the middle
	Truncated bool      `json:"truncated"` // older messages no longer kept
}

// Ladders gives the SIP messages kept for a call (ended or not); ok is
// false when none are kept.
type Ladders interface {
	Ladder(ref uint64) (l Ladder, ok bool)
}

// Active is optionally implemented by [Calls] to tell a call that exists
// but nobody listens to ("worker not found") from an unknown one ("call not
// found") in readaudio.
type Active interface {
	Active(ref uint64) bool
}

// Deps are what the live group needs.
type Deps struct {
	// Registry holds the listeners; nil disables listen and readaudio.
	Registry *Registry
	// Disabled answers listen with "liveaudio is disabled" (liveaudio=no).
	Disabled bool
	// Ladders serves sip_ladder; nil makes it unavailable.
	Ladders Ladders
}

// Register adds listen, readaudio, listen_stop, listen_stat and sip_ladder
// to reg.
func Register(reg *command.Registry, d Deps) {
	g := &group{d: d}
	refParam := command.Param{Name: "callreference", Type: command.ParamString, Required: true,
		Doc: "callreference from listcalls, e.g. 0x1f"}
	idParam := command.Param{Name: "listen_id", Type: command.ParamString, Required: true,
		Doc: "client token of at most 19 characters; several listeners may share a call"}
	reg.Register(command.Command{
		Name: "listen", Perm: command.PermCall,
		Doc:    "start listening to an active call: success, call already listening, call not found or liveaudio is disabled",
		Params: []command.Param{refParam, idParam, {Name: "mode", Type: command.ParamString, Doc: "stereo: readaudio returns caller/callee frames instead of mixed mono"}},
		Run:    g.listen,
	})
	reg.Register(command.Command{
		Name: "readaudio", Perm: command.PermCall,
		Doc:    "audio since the last read: s16le 8 kHz mono in 800-byte units (or stereo frames), information: wait for data, or error: …",
		Params: []command.Param{refParam, idParam},
		Run:    g.readAudio,
	})
	reg.Register(command.Command{
		Name: "listen_stop", Perm: command.PermCall,
		Doc:    "stop listening; the call's worker stops with its last listener",
		Params: []command.Param{refParam, idParam},
		Run:    g.listenStop,
	})
	reg.Register(command.Command{
		Name: "listen_stat", Perm: command.PermCall,
		Doc: "live listening counters: listened calls, listeners, drops",
		Run: g.listenStat,
	})
	reg.Register(command.Command{
		Name: "sip_ladder", Perm: command.PermCall,
		Doc:    "SIP messages kept for a call (time, source, destination, start line), for a ladder diagram",
		Params: []command.Param{refParam},
		Run:    g.sipLadder,
	})
}

type group struct{ d Deps }

func (g *group) args(req *command.Request) (ref uint64, id string, ok bool) {
	s, _ := req.Param("callreference")
	id, _ = req.Param("listen_id")
	ref, ok = ParseRef(s)
	return ref, id, ok
}

func (g *group) listen(_ context.Context, req *command.Request) (command.Result, error) {
	if g.d.Disabled || g.d.Registry == nil {
		return command.Text(ReplyDisabled), nil
	}
	ref, id, ok := g.args(req)
	if !ok {
		return command.Text(ReplyNoCall), nil
	}
	mode, _ := req.Param("mode")
	already, err := g.d.Registry.Listen(ref, id, mode == "stereo")
	switch {
	case errors.Is(err, ErrNoCall):
		return command.Text(ReplyNoCall), nil
	case err != nil:
		return command.Text("error: " + trim(err)), nil
	case already:
		return command.Text(ReplyAlready), nil
	}
	return command.Text(ReplySuccess), nil
}

func (g *group) readAudio(_ context.Context, req *command.Request) (command.Result, error) {
	if g.d.Registry == nil {
		return command.Text(ReplyErrNoCall), nil
	}
	ref, id, ok := g.args(req)
	if !ok {
		return command.Text(ReplyErrNoCall), nil
	}
	b, err := g.d.Registry.Read(ref, id)
	switch {
	case errors.Is(err, ErrNoWorker):
		if a, ok := g.d.Registry.calls.(Active); ok && !a.Active(ref) {
			return command.Text(ReplyErrNoCall), nil
		}
		return command.Text(ReplyNoWorker), nil
	case errors.Is(err, ErrNoClient):
		return command.Text(ReplyNoClient), nil
	case errors.Is(err, ErrEnded):
		return command.Text(ReplyErrNoCall), nil
	case err != nil:
		return nil, err
	case len(b) == 0:
		return command.Text(ReplyWait), nil
	}
	return command.Text(b), nil
}

func (g *group) listenStop(_ context.Context, req *command.Request) (command.Result, error) {
	if ref, id, ok := g.args(req); ok && g.d.Registry != nil {
		g.d.Registry.Stop(ref, id)
	}
	return command.Empty{}, nil
}

func (g *group) listenStat(context.Context, *command.Request) (command.Result, error) {
	if g.d.Registry == nil {
		return nil, fmt.Errorf("%w: live audio not wired", command.ErrUnavailable)
	}
	return command.Value{V: statJSON(g.d.Registry.Stats())}, nil
}

type statView struct {
	Calls         int    `json:"calls"`
	Listeners     int    `json:"listeners"`
	RingDrops     uint64 `json:"ring_drops"`
	ListenerDrops uint64 `json:"listener_drop_bytes"`
	Unsupported   uint64 `json:"unsupported_packets"`
	Reaped        uint64 `json:"reaped_listeners"`
}

func statJSON(s Stats) statView {
	return statView(s)
}

func (g *group) sipLadder(_ context.Context, req *command.Request) (command.Result, error) {
	if g.d.Ladders == nil {
		return nil, fmt.Errorf("%w: no SIP ladder source", command.ErrUnavailable)
	}
	s, _ := req.Param("callreference")
	ref, ok := ParseRef(s)
	if !ok {
		return nil, command.BadParam("callreference", fmt.Errorf("%q is not a call reference", s))
	}
	l, ok := g.d.Ladders.Ladder(ref)
	if !ok {
		return nil, fmt.Errorf("live: call %s: %w", s, command.ErrNoEntry)
	}
	l.CallRef = fmt.Sprintf("0x%x", ref)
	if l.Messages == nil {
		l.Messages = []Message{}
	}
	return command.Value{V: l}, nil
}

// trim drops the package prefix from an error text.
func trim(err error) string {
	s := err.Error()
	if len(s) > 6 && s[:6] == "live: " {
		return s[6:]
	}
	return s
}
