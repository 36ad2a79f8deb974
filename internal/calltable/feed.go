package calltable

import "github.com/voipsensor/voipsensor/internal/decode"

// Feed takes the table lock once, lets fn feed any number of datagrams
// through h, then releases the lock and hands what ended to the sink (and
// events to the bus), as [Table.HandleDatagram] does for one datagram. For
// the one goroutine reading a capture file it saves a lock round trip per
// datagram; everything else waits for fn, so keep batches short (a few
// thousand datagrams).
//
// h is valid only until fn returns (it panics when used later), and fn must
// not call methods of t: they would deadlock.
func (t *Table) Feed(fn func(h decode.Handler)) {
	t.mu.Lock()
	defer t.unlockAndDeliver()
	f := &t.feeder
	f.t, f.open = t, true
	defer func() { f.open = false }()
	fn(f)
}

// FeedSensor is [Table.Feed] for datagrams that another capture agent
// captured and that are recorded with its own id_sensor (a HEP agent
// configured with hep_id_sensor): the calls they create carry sensorID in
// [Call.SensorID], and so in their CDR and listcalls row. sensorID is
// 1–65535 (0 is the sensor's own, as in the sniffer's listcalls).
func (t *Table) FeedSensor(sensorID int, fn func(h decode.Handler)) {
	t.Feed(func(h decode.Handler) {
		t.feedSensorID = int32(sensorID)
		defer func() { t.feedSensorID = 0 }()
		fn(h)
	})
}

// feeder is the handler [Table.Feed] passes: HandleDatagram with the lock
// already held.
type feeder struct {
	t    *Table
	open bool
}

func (f *feeder) HandleDatagram(dg *decode.Datagram) {
	if !f.open {
		panic("calltable: Feed handler used after Feed returned")
	}
	f.t.handleLocked(dg)
}

var _ decode.Handler = (*feeder)(nil)
