package sensor

import (
	"context"
	"time"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/command/live"
	"github.com/voipsensor/voipsensor/internal/transport/web"
)

// wireWeb registers the live-listening commands (used by the manager API
// as well as the console) and the history's (wire_history.go), and binds
// the web console on web_bind:web_port unless web_port is 0. On a
// non-loopback address the console needs credentials: web_token, or
// web_user and web_password; without them the sensor refuses to start.
func (s *Sensor) wireWeb() error {
	s.wireHistory()
	lreg := live.NewRegistry(liveCalls{s.table}, live.Limits{}, nil)
	live.Register(s.reg, live.Deps{Registry: lreg, Ladders: liveLadders{s.table}})

	addr := s.cfg.WebAddr()
	if addr == "" {
		s.services = append(s.services, service{"live", func(ctx context.Context) error {
			<-ctx.Done()
			lreg.Close()
			return nil
		}, lreg.Close})
		return nil
	}
	srv, err := web.New(s.reg, web.Config{
		Addr:         addr,
		Token:        s.cfg.WebToken.Reveal(),
		User:         s.cfg.WebUser,
		Password:     s.cfg.WebPassword.Reveal(),
		Hosts:        s.cfg.HTTPHosts,
		SecureCookie: s.cfg.WebSecureCookie,
		Limits:       s.httpLimits(),
		SensorID:     s.cfg.IDSensor,
		Logger:       s.log.With("transport", "web"),
	})
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	s.log.Info("web console listening", "addr", "http://"+srv.Addr().String()+"/")
	s.addrs = append(s.addrs, Endpoint{Name: "web", Network: "tcp", Addr: srv.Addr().String()})
	s.addSessions("web", "http", srv.Stats)
	s.services = append(s.services, service{"web", func(ctx context.Context) error {
		defer lreg.Close()
		return srv.Run(ctx)
	}, func() { srv.Close(); lreg.Close() }})
	return nil
}

// liveCalls implements live.Calls and live.Active over the call table.
type liveCalls struct{ t *calltable.Table }

func (lc liveCalls) Attach(ref uint64, tap live.Tap) error {
	return lc.t.SetTap(ref, tableTap{tap})
}

func (lc liveCalls) Detach(ref uint64) { lc.t.SetTap(ref, nil) }

func (lc liveCalls) Active(ref uint64) bool {
	c, ok := lc.t.Call(ref)
	return ok && c.State.InProgress()
}

// tableTap adapts a live.Tap to calltable.AudioTap; it runs on the packet
// path with the table locked and only forwards.
type tableTap struct{ t live.Tap }

func (tt tableTap) RTP(side calltable.Side, pt uint8, codec string, _ uint16, _ uint32, payload []byte, _ time.Time) {
	tt.t.RTP(side == calltable.SideCaller, pt, codec, payload)
}

func (tt tableTap) Ended() { tt.t.Ended() }

// liveLadders implements live.Ladders over the table's SIP ladder log.
type liveLadders struct{ t *calltable.Table }

func (ll liveLadders) Ladder(ref uint64) (live.Ladder, bool) {
	l, ok := ll.t.Ladder(ref)
	if !ok {
		return live.Ladder{}, false
	}
	out := live.Ladder{Omitted: l.Omitted, Truncated: l.Truncated, Messages: make([]live.Message, len(l.Messages))}
	for i, m := range l.Messages {
		out.Messages[i] = live.Message{Time: m.Time, Src: m.Src.String(), Dst: m.Dst.String(), Line: m.Line, Raw: m.Raw, Size: m.Size}
	}
	return out, true
}

var (
	_ live.Calls         = liveCalls{}
	_ live.Active        = liveCalls{}
	_ calltable.AudioTap = tableTap{}
	_ live.Ladders       = liveLadders{}
)
