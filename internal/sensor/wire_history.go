package sensor

import (
	"github.com/voipsensor/voipsensor/internal/cdr/sqlstore"
	"github.com/voipsensor/voipsensor/internal/command/history"
	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/tableview"
)

// wireHistory sizes the call table's ladder log (ladder_memory_mb,
// ladder_message_bytes) and registers cdr_search and cdr_detail over the
// CDR store, the ladder log and the spool.
func (s *Sensor) wireHistory() {
	budget, perMessage := s.cfg.Ladder.Bytes()
	s.table.SetLadder(budget, perMessage)
	d := history.Deps{Ladders: tableview.HistoryLadders(s.table)}
	if st, ok := s.store.(*sqlstore.Store); ok {
		d.Store = tableview.HistoryStore(st)
	}
	if s.spool != nil && s.spool.dir != nil {
		ports := new(decode.PortSet)
		for _, r := range s.cfg.SIPPorts {
			ports.Add(r.Lo, r.Hi)
		}
		d.Spool = tableview.HistorySpool(s.spool.dir, ports)
	}
	history.Register(s.reg, d)
}
