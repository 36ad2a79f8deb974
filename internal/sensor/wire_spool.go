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
	"github.com/voipsensor/voipsensor/internal/tableview"
)

// spooling is the recording's wiring: the recorder (nil when nothing is
// saved), the cleaner (nil without a retention limit) and the spool's
// files for the retrieval commands.
type spooling struct {
	rec   *spool.Recorder
	clean *spool.Cleaner
	dir   *spool.Dir
}

// wireSpool builds the recorder from savesip, savertp, savertcp,
// save-sip-register and saveaudio: the call table tells it which call each datagram is
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
			Audio: rc.SaveAudio, BufferBytes: rc.BufferMB << 20, MaxOpenFiles: rc.OpenFilesMax, Logger: log,
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
			attrs := []any{"frames", st.Frames, "bytes", st.Bytes, "dropped", st.Dropped,
				"disk_full", st.DiskFull, "lost", st.Lost, "errors", st.Errors, "files", st.FilesCreated}
			if sp.rec.Audio() {
				attrs = append(attrs, slog.Group("audio", "files", st.AudioFiles, "bytes", st.AudioBytes, "packets", st.AudioPackets,
					"dropped", st.AudioDropped, "disk_full", st.AudioDiskFull, "lost", st.AudioLost, "late", st.AudioLate,
					"codec", st.AudioCodec))
			}
			log.Info("recorder stopped", attrs...)
			return err
		}})
		log.Info("recording", "dir", s.cfg.SpoolDir, "sip", rc.SaveSIP, "rtp", rc.SaveRTP.String(), "rtcp", rc.SaveRTCP, "register", rc.SaveRegister,
			"audio", rc.SaveAudio)
	}
	if lim := retention(rc); lim.Any() {
		sp.clean = spool.NewCleaner(s.cfg.SpoolDir, lim, nil, log)
		s.services = append(s.services, service{name: "spool cleaner", run: func(ctx context.Context) error {
			return sp.clean.Run(ctx, rc.CleanInterval)
		}})
	}
	files.Register(s.reg, files.Deps{Spool: spoolFiles{sp.dir}, Stats: func() any { return tableview.SpoolStat(sp.rec, sp.clean) }})
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
		MaxBytes:      mb(rc.MaxPoolSizeMB),
		MaxSIPBytes:   mb(rc.MaxPoolSIPSizeMB),
		MaxRTPBytes:   mb(rc.MaxPoolRTPSizeMB),
		MaxAudioBytes: mb(rc.MaxPoolAudioSizeMB),
		MaxAge:        days(rc.MaxPoolDays),
		MaxSIPAge:     days(rc.MaxPoolSIPDays),
		MaxRTPAge:     days(rc.MaxPoolRTPDays),
		MaxAudioAge:   days(rc.MaxPoolAudioDays),
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

// statusAttr is the recorder's part of the status line: a "rec" group, or
// nothing when nothing is recorded.
func (sp *spooling) statusAttr() slog.Attr {
	if sp == nil || sp.rec == nil {
		return slog.Attr{}
	}
	st := sp.rec.Stats()
	attrs := []any{"frames", st.Frames, "mb", st.Bytes >> 20, "dropped", st.Dropped, "disk_full", st.DiskFull,
		"errors", st.Errors, "open", st.FilesOpen, "paused", st.Paused}
	if sp.rec.Audio() {
		attrs = append(attrs, "wav", st.AudioFiles, "wav_dropped", st.AudioDropped+st.AudioDiskFull+st.AudioLost)
	}
	return slog.Group("rec", attrs...)
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
	return append(m.Source.Families(), tableview.SpoolFamilies(m.sp.rec, m.sp.clean)...)
}
