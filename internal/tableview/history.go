package tableview

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/capture"
	"github.com/voipsensor/voipsensor/internal/cdr"
	"github.com/voipsensor/voipsensor/internal/cdr/sqlstore"
	"github.com/voipsensor/voipsensor/internal/command"
	"github.com/voipsensor/voipsensor/internal/command/history"
	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/spool"
)

// spoolLadderBytes bounds the text a ladder read back from a SIP pcap
// holds (the call table's log has its own budget).
const spoolLadderBytes = 16 << 20

// historyStore adapts sqlstore to history.Store.
type historyStore struct{ st *sqlstore.Store }

func (h historyStore) Search(ctx context.Context, q history.Query) (history.Page, error) {
	sq := sqlstore.Query{Caller: q.Caller, Called: q.Called, Number: q.Number, CallID: q.CallID, IP: q.IP,
		From: q.From, To: q.To, CodeMin: q.CodeMin, CodeMax: q.CodeMax, State: cdr.State(q.State),
		Sort: q.Sort, Asc: q.Asc, Limit: q.Limit, Offset: q.Offset}
	if q.Ending != "" {
		e, ok := sqlstore.ParseEnding(q.Ending)
		if !ok {
			return history.Page{}, command.BadParam("ending", fmt.Errorf("%q", q.Ending))
		}
		sq.Ending = &e
	}
	if q.MOSBelow != nil {
		v := int(math.Round(*q.MOSBelow * 10))
		sq.MOSBelowMult10 = &v
	}
	if q.LossAbove != nil {
		v := int(math.Round(*q.LossAbove * 1000))
		sq.LossAboveMult1000 = &v
	}
	page, err := h.st.Search(ctx, sq)
	if errors.Is(err, sqlstore.ErrQuery) {
		return history.Page{}, command.BadParam("query", err)
	}
	if err != nil {
		return history.Page{}, err
	}
	out := history.Page{Total: page.Total, TotalCapped: page.TotalCapped, Calls: make([]history.Call, len(page.Rows))}
	for i := range page.Rows {
		out.Calls[i] = historyCall(&page.Rows[i])
	}
	return out, nil
}

func (h historyStore) Call(ctx context.Context, id int64, callID string) (history.Call, []history.Stream, error) {
	d, err := h.st.Call(ctx, id, callID)
	if errors.Is(err, sqlstore.ErrNoCall) {
		return history.Call{}, nil, fmt.Errorf("history: %w", command.ErrNoEntry)
	}
	if err != nil {
		return history.Call{}, nil, err
	}
	streams := make([]history.Stream, len(d.Streams))
	for i := range d.Streams {
		streams[i] = historyStream(&d.Streams[i])
	}
	return historyCall(&d.Row), streams, nil
}

func historyCall(r *sqlstore.Row) history.Call {
	c := history.Call{ID: r.ID, CallID: r.CallID, CallDate: r.CallDate,
		Duration: r.Duration.Seconds(), ConnectDuration: r.ConnectDuration.Seconds(), Answered: r.Answered,
		Caller: r.Caller, CallerName: r.CallerName, CallerDomain: r.CallerDomain, Called: r.Called, CalledDomain: r.CalledDomain,
		LastSIPCode: r.LastSIPCode, LastSIPReason: r.LastSIPReason, State: string(r.State), WhoHanged: string(r.WhoHanged),
		LossPct: float64(r.LossPercMult1000) / 1000, JitterMS: float64(r.JitterMult10) / 10,
		CallerUA: r.CallerUA, CalledUA: r.CalledUA}
	if !r.CallEnd.IsZero() {
		end := r.CallEnd
		c.CallEnd = &end
	}
	if r.SIPCallerAddr.IsValid() {
		c.CallerIP = r.SIPCallerAddr.String()
	}
	if r.SIPCalledAddr.IsValid() {
		c.CalledIP = r.SIPCalledAddr.String()
	}
	if r.EndingKnown {
		c.Ending = sqlstore.EndingName(r.Ending)
	}
	if r.HasMOS {
		m := float64(r.MOSMinMult10) / 10
		c.MOS = &m
	}
	if r.IDSensor >= 0 {
		id := r.IDSensor
		c.IDSensor = &id
	}
	return c
}

func historyStream(s *cdr.Stream) history.Stream {
	out := history.Stream{Side: "callee", SSRC: s.SSRC, PayloadType: s.Payload, Codec: s.Codec,
		Received: s.Received, Lost: s.Lost, LossPct: float64(s.LossPercMult1000) / 1000,
		JitterAvgMS: float64(s.AvgJitterMult10) / 10, JitterMaxMS: float64(s.MaxJitter)}
	if s.FromCaller {
		out.Side = "caller"
	}
	if s.Saddr.IsValid() {
		out.Src = s.Saddr.String()
	}
	if s.Daddr.IsValid() {
		out.Dst = s.Daddr.String()
	}
	if s.MaxJitter == 0 && s.MaxJitterMS > 0 {
		out.JitterMaxMS = s.MaxJitterMS
	}
	mos := func(f1, f2, adapt int) *history.MOS {
		if f1 <= 0 && f2 <= 0 && adapt <= 0 {
			return nil
		}
		return &history.MOS{F1: float64(f1) / 10, F2: float64(f2) / 10, Adapt: float64(adapt) / 10}
	}
	out.MOS = mos(s.MOSF1Mult10, s.MOSF2Mult10, s.MOSAdaptMult10)
	out.MOSMin = mos(s.MOSF1MinMult10, s.MOSF2MinMult10, s.MOSAdaptMinMult10)
	return out
}

// historyLadders adapts the call table's ladder log to history.Ladders.
type historyLadders struct{ t *calltable.Table }

func (h historyLadders) Ladder(ref uint64, callID string) (history.Ladder, bool) {
	var l calltable.Ladder
	var ok bool
	if ref != 0 {
		l, ok = h.t.Ladder(ref)
	} else {
		l, ok = h.t.LadderByCallID(callID)
	}
	if !ok {
		return history.Ladder{}, false
	}
	return historyLadder(&l), true
}

func historyLadder(l *calltable.Ladder) history.Ladder {
	out := history.Ladder{CallID: l.CallID, Omitted: l.Omitted, Truncated: l.Truncated, Messages: make([]history.Message, len(l.Messages))}
	for i, m := range l.Messages {
		out.Messages[i] = history.Message{Time: m.Time, Src: m.Src.String(), Dst: m.Dst.String(), Line: m.Line, Raw: m.Raw, Size: m.Size}
	}
	return out
}

// historySpool adapts the spool to history.Spool.
type historySpool struct {
	dir   *spool.Dir
	ports *decode.PortSet
}

// audioDir is the directory of a minute holding calls' audio, as the
// sniffer's saveaudio names it; audioExts are the formats looked for.
const audioDir = "AUDIO"

var audioExts = []string{".wav", ".ogg"}

// Files looks in the minute of start and the ones beside it (a clock
// change, a CDR time cut to the second); without a start every minute of
// the spool is searched.
func (h historySpool) Files(callID string, start time.Time) []history.File {
	var out []history.File
	add := func(typ, rel string) {
		if size, err := h.dir.Stat(rel); err == nil {
			out = append(out, history.File{Type: typ, Name: rel, Size: size})
		}
	}
	base := spool.BaseName(callID)
	if start.IsZero() {
		// FindCall lists the pcaps; the audio is in their minutes.
		found, _ := spool.FindCall(h.dir.Path(), callID)
		minutes := map[string]bool{}
		for _, rel := range found {
			add(path.Base(path.Dir(rel)), rel)
			minutes[path.Dir(path.Dir(rel))] = true
		}
		for _, m := range slices.Sorted(maps.Keys(minutes)) {
			for _, ext := range audioExts {
				add(audioDir, path.Join(m, audioDir, base+ext))
			}
		}
		return out
	}
	seen := map[string]bool{}
	for _, d := range []time.Duration{0, -time.Minute, time.Minute} {
		minute := spool.MinuteDir(start.Add(d), nil)
		if seen[minute] {
			continue
		}
		seen[minute] = true
		add("SIP", spool.CallPath(spool.TypeSIP, callID, start.Add(d), nil))
		add("RTP", spool.CallPath(spool.TypeRTP, callID, start.Add(d), nil))
		for _, ext := range audioExts {
			add(audioDir, path.Join(minute, audioDir, base+ext))
		}
		if len(out) > 0 {
			break
		}
	}
	return out
}

// Ladder decodes the SIP pcaps among files with the sensor's decoder and
// SIP ports and keeps the messages of callID.
func (h historySpool) Ladder(ctx context.Context, callID string, files []history.File) (history.Ladder, bool, error) {
	lb := calltable.NewLadderBuilder(callID, calltable.MaxLadderRaw, spoolLadderBytes)
	root, err := os.OpenRoot(h.dir.Path())
	if err != nil {
		return history.Ladder{}, false, fmt.Errorf("history: %w", err)
	}
	defer root.Close()
	for _, f := range files {
		if f.Type != "SIP" {
			continue
		}
		rel, err := h.dir.Rel(f.Name)
		if err != nil {
			return history.Ladder{}, false, fmt.Errorf("history: %s: %w", f.Name, err)
		}
		if err := readSIP(ctx, root, filepath.ToSlash(rel), h.ports, lb); err != nil {
			return history.Ladder{}, false, err
		}
	}
	l, ok := lb.Ladder()
	if !ok {
		return history.Ladder{}, false, nil
	}
	return historyLadder(&l), true, nil
}

// readSIP feeds the frames of one pcap to h through a decoder of its own.
func readSIP(ctx context.Context, root *os.Root, name string, ports *decode.PortSet, h decode.Handler) error {
	f, err := root.Open(filepath.FromSlash(name))
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	defer f.Close()
	src, err := capture.NewFileReader(f)
	if err != nil {
		return fmt.Errorf("history: %s: %w", name, err)
	}
	defer src.Close()
	dec := decode.NewDecoder(decode.Config{SIPPorts: ports})
	var fr capture.Frame
	for n := 0; ; n++ {
		if err := src.ReadFrame(&fr); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("history: %s: %w", name, err)
		}
		if n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		dec.Decode(&fr, h)
	}
}

var (
	_ history.Store   = historyStore{}
	_ history.Ladders = historyLadders{}
	_ history.Spool   = historySpool{}
)

// HistoryStore adapts the SQL store to history.Store.
func HistoryStore(st *sqlstore.Store) history.Store { return historyStore{st} }

// HistoryLadders adapts the call table's ladder log to history.Ladders.
func HistoryLadders(t *calltable.Table) history.Ladders { return historyLadders{t} }

// HistorySpool adapts the spool to history.Spool; ports are the SIP ports
// its pcaps are decoded with.
func HistorySpool(dir *spool.Dir, ports *decode.PortSet) history.Spool {
	return historySpool{dir: dir, ports: ports}
}
