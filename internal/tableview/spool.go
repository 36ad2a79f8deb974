package tableview

import (
	"time"

	"github.com/voipsensor/voipsensor/internal/command/metrics"
	"github.com/voipsensor/voipsensor/internal/spool"
)

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

	// saveaudio: zero when off (Audio false).
	Audio         bool   `json:"audio"`
	AudioFiles    uint64 `json:"audio_files"`
	AudioBytes    uint64 `json:"audio_bytes"`
	AudioPackets  uint64 `json:"audio_packets"`
	AudioDropped  uint64 `json:"audio_dropped"`
	AudioDiskFull uint64 `json:"audio_disk_full"`
	AudioLost     uint64 `json:"audio_lost"`
	AudioLate     uint64 `json:"audio_late"`
	AudioCodec    uint64 `json:"audio_codec"`
	AudioOpen     int    `json:"audio_open"`
}

type cleanerStat struct {
	Passes       uint64           `json:"passes"`
	RemovedFiles uint64           `json:"removed_files"`
	RemovedBytes uint64           `json:"removed_bytes"`
	Errors       uint64           `json:"errors"`
	At           time.Time        `json:"at"`      // the last pass
	Bytes        map[string]int64 `json:"bytes"`   // by type directory: SIP, RTP, REG, AUDIO
	Files        map[string]int   `json:"files"`   // likewise
	Minutes      int              `json:"minutes"` // minute directories holding recordings
	Oldest       *time.Time       `json:"oldest"`  // the oldest of them; null when none
}

// spoolTypes are the spool's directories of a minute, as spool_stat and
// the metrics name them.
var spoolTypes = []spool.Type{spool.TypeSIP, spool.TypeRTP, spool.TypeREG, spool.TypeAUDIO}

// SpoolStat is spool_stat's answer for a recorder and a cleaner, either
// nil when not running.
func SpoolStat(rec *spool.Recorder, clean *spool.Cleaner) any {
	var out spoolStat
	if rec != nil {
		st := rec.Stats()
		out.Recording = &recordingStat{
			Frames: st.Frames, Bytes: st.Bytes, Dropped: st.Dropped, DiskFull: st.DiskFull, Lost: st.Lost,
			LinkMismatch: st.LinkMismatch, Errors: st.Errors, FilesCreated: st.FilesCreated,
			FilesOpen: st.FilesOpen, QueueBytes: st.QueueBytes, Paused: st.Paused,
			Audio: rec.Audio(), AudioFiles: st.AudioFiles, AudioBytes: st.AudioBytes, AudioPackets: st.AudioPackets,
			AudioDropped: st.AudioDropped, AudioDiskFull: st.AudioDiskFull, AudioLost: st.AudioLost,
			AudioLate: st.AudioLate, AudioCodec: st.AudioCodec, AudioOpen: st.AudioOpen,
		}
	}
	if clean != nil {
		st := clean.Stats()
		c := &cleanerStat{Passes: st.Passes, RemovedFiles: st.RemovedFiles, RemovedBytes: st.RemovedBytes,
			Errors: st.Errors, At: st.Usage.At, Minutes: st.Usage.Minutes, Bytes: map[string]int64{}, Files: map[string]int{}}
		for _, typ := range spoolTypes {
			c.Bytes[typ.Dir()], c.Files[typ.Dir()] = st.Usage.Bytes[typ], st.Usage.Files[typ]
		}
		if !st.Usage.Oldest.IsZero() {
			c.Oldest = &st.Usage.Oldest
		}
		out.Cleaner = c
	}
	return out
}

// SpoolFamilies are the recorder's and the cleaner's counters as metric
// families; either may be nil (not running).
func SpoolFamilies(rec *spool.Recorder, clean *spool.Cleaner) []metrics.Family {
	var fams []metrics.Family
	one := func(name, help, typ string, v float64) {
		fams = append(fams, metrics.Family{Name: name, Help: help, Type: typ, Samples: []metrics.Sample{{Value: v}}})
	}
	if rec != nil {
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
		if rec.Audio() {
			one("voipsensor_recording_audio_files_total", "WAV files created (saveaudio).", metrics.Counter, float64(st.AudioFiles))
			one("voipsensor_recording_audio_bytes_total", "Bytes written to WAV files.", metrics.Counter, float64(st.AudioBytes))
			one("voipsensor_recording_audio_packets_total", "RTP packets decoded and written to WAV files.", metrics.Counter, float64(st.AudioPackets))
			fams = append(fams, metrics.Family{Name: "voipsensor_recording_audio_dropped_total", Type: metrics.Counter,
				Help: "RTP packets (and SIP messages, for buffer_full) left out of the WAV files, by reason: buffer_full (the writer fell behind; capture never waits), disk_full (recording stopped until space returns), error (an open or write failed), late (reordered past the half second a call's audio waits in memory), codec (not G.711; left silent).",
				Samples: []metrics.Sample{
					{Labels: map[string]string{"reason": "buffer_full"}, Value: float64(st.AudioDropped)},
					{Labels: map[string]string{"reason": "disk_full"}, Value: float64(st.AudioDiskFull)},
					{Labels: map[string]string{"reason": "error"}, Value: float64(st.AudioLost)},
					{Labels: map[string]string{"reason": "late"}, Value: float64(st.AudioLate)},
					{Labels: map[string]string{"reason": "codec"}, Value: float64(st.AudioCodec)},
				}})
			one("voipsensor_recording_audio_files_open", "WAV files open now.", metrics.Gauge, float64(st.AudioOpen))
		}
	}
	if clean != nil {
		st := clean.Stats()
		f := metrics.Family{Name: "voipsensor_spool_bytes", Help: "Recordings in the spool by type, at the last cleaning pass.", Type: metrics.Gauge}
		for _, typ := range spoolTypes {
			f.Samples = append(f.Samples, metrics.Sample{Labels: map[string]string{"type": typ.Dir()}, Value: float64(st.Usage.Bytes[typ])})
		}
		fams = append(fams, f)
		one("voipsensor_spool_removed_files_total", "Recordings the cleaner deleted (maxpool limits).", metrics.Counter, float64(st.RemovedFiles))
		one("voipsensor_spool_removed_bytes_total", "Bytes of recordings the cleaner deleted.", metrics.Counter, float64(st.RemovedBytes))
	}
	return fams
}
