package sensor

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/voipsensor/voipsensor/internal/command/files"
	"github.com/voipsensor/voipsensor/internal/command/metrics"
	"github.com/voipsensor/voipsensor/internal/config"
	"github.com/voipsensor/voipsensor/internal/spool"
)

// spooling is the recording's wiring: the recorder (nil when nothing is
// saved), the cleaner (nil without a retention limit) and the spool's
// files for the retrieval commands.
type spooling struct {
	rec   *spool.Recorder
	clean *spool.Cleaner
	dir   *spool.Dir
}

// wireSpool builds the recorder from savesip, savertp, savertcp and
// save-sip-register: the call table tells it which call each datagram is
// of, the packet source tells it which frame is being decoded, and its
// writer runs beside the transports, stopping after the table's last calls
// are closed. It starts the cleaner when a maxpool limit is set, and
// registers the file commands (getfile, file_exists, …) in any case.
func (s *Sensor) wireSpool() error {
	rc := s.cfg.Recording
	log := s.log.With("subsystem", "spool")
	sp := &spooling{dir: spool.NewDir(s.cfg.SpoolDir)}
	s.spool = sp
	if rc.Enabled() {
		sp.rec = spool.New(spool.Options{
			Dir: s.cfg.SpoolDir, SIP: rc.SaveSIP, RTP: rtpMode(rc.SaveRTP), RTCP: rc.SaveRTCP, Register: rc.SaveRegister,
			BufferBytes: rc.BufferMB << 20, MaxOpenFiles: rc.OpenFilesMax, Logger: log,
			// A regular file read at full speed waits for the writer
			// rather than losing frames; a live interface, a paced replay
			// or a pipe (tcpdump -w - | …, whose writer would lose them
			// instead) never waits.
			Backpressure: s.regularFileAtFullSpeed(),
		})
		s.table.SetRecorder(sp.rec)
		s.src = spool.Source(s.src, sp.rec)
		s.services = append(s.services, service{name: "recorder", run: func(ctx context.Context) error {
			err := sp.rec.Run(ctx)
			st := sp.rec.Stats()
			log.Info("recorder stopped", "frames", st.Frames, "bytes", st.Bytes, "dropped", st.Dropped,
				"disk_full", st.DiskFull, "lost", st.Lost, "errors", st.Errors, "files", st.FilesCreated)
			return err
		}})
		log.Info("recording", "dir", s.cfg.SpoolDir, "sip", rc.SaveSIP, "rtp", rc.SaveRTP.String(), "rtcp", rc.SaveRTCP, "register", rc.SaveRegister)
	}
	if lim := retention(rc); lim.Any() {
		sp.clean = spool.NewCleaner(s.cfg.SpoolDir, lim, nil, log)
		s.services = append(s.services, service{name: "spool cleaner", run: func(ctx context.Context) error {
			return sp.clean.Run(ctx, rc.CleanInterval)
		}})
	}
	files.Register(s.reg, files.Deps{Spool: spoolFiles{sp.dir}, Stats: sp.stats})
	return nil
}

// regularFileAtFullSpeed reports whether the packet source is a regular
// capture file read as fast as it decodes.
func (s *Sensor) regularFileAtFullSpeed() bool {
	if s.live || s.opts.Realtime || s.opts.Speed != 0 || s.opts.Loop || s.opts.ReadFile == "" {
		return false
	}
	fi, err := os.Stat(s.opts.ReadFile)
	return err == nil && fi.Mode().IsRegular()
}

func rtpMode(m config.SaveRTP) spool.RTPMode {
	switch m {
	case config.SaveRTPYes:
		return spool.RTPFull
	case config.SaveRTPHeader:
		return spool.RTPHeader
	}
	return spool.RTPNone
}

// retention turns the maxpool settings (MB, days) into the cleaner's limits.
func retention(rc config.Recording) spool.Limits {
	mb := func(n int) int64 { return int64(n) << 20 }
	days := func(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }
	return spool.Limits{
		MaxBytes: mb(rc.MaxPoolSizeMB), MaxSIPBytes: mb(rc.MaxPoolSIPSizeMB), MaxRTPBytes: mb(rc.MaxPoolRTPSizeMB),
		MaxAge: days(rc.MaxPoolDays), MaxSIPAge: days(rc.MaxPoolSIPDays), MaxRTPAge: days(rc.MaxPoolRTPDays),
	}
}

// spoolFiles adapts spool.Dir to files.Spool.
type spoolFiles struct{ d *spool.Dir }

func (f spoolFiles) Stat(name string) (int64, error) {
	n, err := f.d.Stat(name)
	return n, filesError(err)
}

func (f spoolFiles) ReadFile(name string, max int64) ([]byte, error) {
	b, err := f.d.ReadFile(name, max)
	return b, filesError(err)
}

func filesError(err error) error {
	if errors.Is(err, spool.ErrOutside) {
		return files.ErrOutside
	}
	return err
}

// spoolStat is spool_stat's answer: the recorder's counters (null when
// nothing is recorded) and the cleaner's (null without retention limits).
type spoolStat struct {
	Recording *recordingStat `json:"recording"`
	Cleaner   *cleanerStat   `json:"cleaner"`
}

type recordingStat struct {
	Frames       uint64 `json:"frames"`
	Bytes        uint64 `json:"bytes"`
	Dropped      uint64 `json:"dropped"`
	DiskFull     uint64 `json:"disk_full"`
	Lost         uint64 `json:"lost"`
	LinkMismatch uint64 `json:"link_mismatch"`
	Errors       uint64 `json:"errors"`
	FilesCreated uint64 `json:"files_created"`
	FilesOpen    int    `json:"files_open"`
	QueueBytes   int    `json:"queue_bytes"`
	Paused       bool   `json:"paused"`
}

type cleanerStat struct {
	Passes       uint64           `json:"passes"`
	RemovedFiles uint64           `json:"removed_files"`
	RemovedBytes uint64           `json:"removed_bytes"`
	Errors       uint64           `json:"errors"`
	At           time.Time        `json:"at"`      // the last pass
	Bytes        map[string]int64 `json:"bytes"`   // by type directory: SIP, RTP, REG
	Files        map[string]int   `json:"files"`   // likewise
	Minutes      int              `json:"minutes"` // minute directories holding recordings
	Oldest       *time.Time       `json:"oldest"`  // the oldest of them; null when none
}

func (sp *spooling) stats() any {
	var out spoolStat
	if sp.rec != nil {
		st := sp.rec.Stats()
		out.Recording = &recordingStat{
			Frames: st.Frames, Bytes: st.Bytes, Dropped: st.Dropped, DiskFull: st.DiskFull, Lost: st.Lost,
			LinkMismatch: st.LinkMismatch, Errors: st.Errors, FilesCreated: st.FilesCreated,
			FilesOpen: st.FilesOpen, QueueBytes: st.QueueBytes, Paused: st.Paused,
		}
	}
	if sp.clean != nil {
		st := sp.clean.Stats()
		c := &cleanerStat{Passes: st.Passes, RemovedFiles: st.RemovedFiles, RemovedBytes: st.RemovedBytes,
			Errors: st.Errors, At: st.Usage.At, Minutes: st.Usage.Minutes, Bytes: map[string]int64{}, Files: map[string]int{}}
		for _, typ := range []spool.Type{spool.TypeSIP, spool.TypeRTP, spool.TypeREG} {
			c.Bytes[typ.Dir()], c.Files[typ.Dir()] = st.Usage.Bytes[typ], st.Usage.Files[typ]
		}
		if !st.Usage.Oldest.IsZero() {
			c.Oldest = &st.Usage.Oldest
		}
		out.Cleaner = c
	}
	return out
}

// statusAttr is the recorder's part of the status line: a "rec" group, or
// nothing when nothing is recorded.
func (sp *spooling) statusAttr() slog.Attr {
	if sp == nil || sp.rec == nil {
		return slog.Attr{}
	}
	st := sp.rec.Stats()
	return slog.Group("rec", "frames", st.Frames, "mb", st.Bytes>>20, "dropped", st.Dropped, "disk_full", st.DiskFull,
		"errors", st.Errors, "open", st.FilesOpen, "paused", st.Paused)
}

// withSpool adds the recording's families to the metrics.
func (sp *spooling) withSpool(src metrics.Source) metrics.Source {
	if sp == nil {
		return src
	}
	return spoolMetrics{src, sp}
}

type spoolMetrics struct {
	metrics.Source
	sp *spooling
}

func (m spoolMetrics) Families() []metrics.Family {
	fams := m.Source.Families()
	one := func(name, help, typ string, v float64) {
		fams = append(fams, metrics.Family{Name: name, Help: help, Type: typ, Samples: []metrics.Sample{{Value: v}}})
	}
	if rec := m.sp.rec; rec != nil {
		st := rec.Stats()
		paused := 0.0
		if st.Paused {
			paused = 1
		}
		one("voipsensor_recording_frames_total", "Frames written to the spool's call pcaps.", metrics.Counter, float64(st.Frames))
		one("voipsensor_recording_bytes_total", "Bytes written to the spool's call pcaps.", metrics.Counter, float64(st.Bytes))
		fams = append(fams, metrics.Family{Name: "voipsensor_recording_dropped_total", Type: metrics.Counter,
			Help: "Frames not recorded, by reason: buffer_full (the writer fell behind; capture never waits), disk_full (recording stopped until space returns), error (an open or write failed), link_type (another link type than the call's pcap).",
			Samples: []metrics.Sample{
				{Labels: map[string]string{"reason": "buffer_full"}, Value: float64(st.Dropped)},
				{Labels: map[string]string{"reason": "disk_full"}, Value: float64(st.DiskFull)},
				{Labels: map[string]string{"reason": "error"}, Value: float64(st.Lost)},
				{Labels: map[string]string{"reason": "link_type"}, Value: float64(st.LinkMismatch)},
			}})
		one("voipsensor_recording_errors_total", "Failed opens, writes and closes of call pcaps.", metrics.Counter, float64(st.Errors))
		one("voipsensor_recording_files_created_total", "Call pcaps created.", metrics.Counter, float64(st.FilesCreated))
		one("voipsensor_recording_files_open", "Call pcaps open now.", metrics.Gauge, float64(st.FilesOpen))
		one("voipsensor_recording_queue_bytes", "Frame bytes waiting for the writer.", metrics.Gauge, float64(st.QueueBytes))
		one("voipsensor_recording_paused", "1 while recording is stopped by a full disk.", metrics.Gauge, paused)
	}
	if c := m.sp.clean; c != nil {
		st := c.Stats()
		f := metrics.Family{Name: "voipsensor_spool_bytes", Help: "Recordings in the spool by type, at the last cleaning pass.", Type: metrics.Gauge}
		for _, typ := range []spool.Type{spool.TypeSIP, spool.TypeRTP, spool.TypeREG} {
			f.Samples = append(f.Samples, metrics.Sample{Labels: map[string]string{"type": typ.Dir()}, Value: float64(st.Usage.Bytes[typ])})
		}
		fams = append(fams, f)
		one("voipsensor_spool_removed_files_total", "Recordings the cleaner deleted (maxpool limits).", metrics.Counter, float64(st.RemovedFiles))
		one("voipsensor_spool_removed_bytes_total", "Bytes of recordings the cleaner deleted.", metrics.Counter, float64(st.RemovedBytes))
	}
	return fams
}
