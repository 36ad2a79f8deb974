package tableview

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/cdr"
	"github.com/voipsensor/voipsensor/internal/event"
)

// CDRSink queues ended calls and registration changes for the CDR writer.
// Safe for concurrent use; never blocks (the writer spills when full).
type CDRSink struct {
	w             *cdr.Writer
	quality       *Quality
	idSensor      int
	registrations atomic.Bool // sip-register, changeable by reload
	// dropped, when set, reports whether the sensor lost frames between
	// two times (pipeline.DropLog.Dropped): the record's SensorDropped.
	dropped func(from, to time.Time) bool
}

// SetDropCheck makes each record say whether the sensor lost frames while
// its call was in progress. Call before the table runs.
func (k *CDRSink) SetDropCheck(dropped func(from, to time.Time) bool) { k.dropped = dropped }

// NewCDRSink returns a sink into w that also feeds q with each ended
// call's quality; registrations says whether registration changes are
// stored (sip-register).
func NewCDRSink(w *cdr.Writer, q *Quality, idSensor int, registrations bool) *CDRSink {
	k := &CDRSink{w: w, quality: q, idSensor: idSensor}
	k.registrations.Store(registrations)
	return k
}

// SetRegistrations turns the storing of registration changes on or off.
func (k *CDRSink) SetRegistrations(on bool) { k.registrations.Store(on) }

func (k *CDRSink) CallEnded(c *calltable.CallInfo) {
	r := NewRecord(c, k.idSensor)
	if k.dropped != nil {
		r.SensorDropped = k.dropped(r.CallDate, r.CallEnd)
	}
	k.w.Add(r)
	k.quality.CallEnded(c)
}

func (k *CDRSink) RegistrationChanged(r *calltable.RegistrationInfo) {
	if k.registrations.Load() {
		k.w.AddRegistration(NewRegistration(r, k.idSensor))
	}
}

// PublishQuality publishes one event.Quality per call in progress every
// period until ctx is done.
func PublishQuality(ctx context.Context, t *calltable.Table, bus *event.Bus, period time.Duration) {
	tk := time.NewTicker(period)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
			snap := t.Snapshot()
			for _, ci := range snap.Calls {
				if ci.State.InProgress() {
					bus.Publish(ci.Event(event.Quality, snap.Time))
				}
			}
		}
	}
}
