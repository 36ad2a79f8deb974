package config

import (
	"errors"
	"strings"
	"time"
)

// SaveRTP is the savertp setting: what of a call's RTP goes to its pcap.
type SaveRTP uint8

// SaveRTP values, as the sniffer's savertp takes them.
const (
	SaveRTPNo     SaveRTP = iota // no RTP is saved
	SaveRTPYes                   // every RTP packet, whole
	SaveRTPHeader                // every RTP packet cut after its RTP header (no voice)
)

// String returns "no", "yes" or "header", the text savertp takes.
func (s SaveRTP) String() string {
	switch s {
	case SaveRTPYes:
		return "yes"
	case SaveRTPHeader:
		return "header"
	}
	return "no"
}

// Recording is what of each call goes to the spool and how long it stays
// there: VoIPmonitor's savesip, savertp, savertcp, save-sip-register,
// saveaudio and maxpool* settings, plus the recorder's own bounds. The zero value
// records nothing, keeps everything, and sizes the recorder by its
// defaults (the zero of each bound means "the default").
type Recording struct {
	SaveSIP      bool    // savesip: each call's SIP messages to YYYY-MM-DD/HH/MM/SIP/<callid>.pcap
	SaveRTP      SaveRTP // savertp: its RTP to …/RTP/<callid>.pcap (yes, no, header)
	SaveRTCP     bool    // savertcp: its RTCP to the RTP pcap
	SaveRegister bool    // save-sip-register (alias saveregister): REGISTER transactions to …/REG/<id>.pcap
	// SaveAudio is saveaudio = wav (or yes): each call's G.711 audio as
	// a stereo WAV, caller left, to …/AUDIO/<callid>.wav. The sniffer's
	// ogg and mp3 are refused.
	SaveAudio bool

	// Retention, enforced oldest minute first; 0 means no limit.
	MaxPoolSizeMB    int // maxpoolsize: the whole spool's recordings, MB
	MaxPoolDays      int // maxpooldays
	MaxPoolSIPSizeMB int // maxpoolsipsize: SIP and REG recordings, MB
	MaxPoolSIPDays   int // maxpoolsipdays
	MaxPoolRTPSizeMB int // maxpoolrtpsize: RTP recordings, MB
	MaxPoolRTPDays   int // maxpoolrtpdays
	// maxpoolaudiosize (MB) and maxpoolaudiodays: the AUDIO directories.
	MaxPoolAudioSizeMB int
	MaxPoolAudioDays   int

	// The recorder's bounds; 0 selects the default of each.
	OpenFilesMax  int           // openfile_max: pcap files held open at once (default 65535, at most half the process limit)
	BufferMB      int           // spool_buffer_mb: memory for frames waiting to be written (default 64)
	CleanInterval time.Duration // spool_clean_interval: time between retention passes (default 5 min)
}

// Enabled reports whether any kind of packet is recorded.
func (r Recording) Enabled() bool {
	return r.SaveSIP || r.SaveRTP != SaveRTPNo || r.SaveRTCP || r.SaveRegister || r.SaveAudio
}

// Limited reports whether any retention limit is set.
func (r Recording) Limited() bool {
	return r.MaxPoolSizeMB > 0 || r.MaxPoolDays > 0 || r.MaxPoolSIPSizeMB > 0 || r.MaxPoolSIPDays > 0 ||
		r.MaxPoolRTPSizeMB > 0 || r.MaxPoolRTPDays > 0 || r.MaxPoolAudioSizeMB > 0 || r.MaxPoolAudioDays > 0
}

// recordingOptions are the keys of [Recording]. None is live: the
// recorder is built at start.
func recordingOptions() []*option {
	rec := func(c *Config) *Recording { return &c.Recording }
	saveReg := func(c *Config) *bool { return &rec(c).SaveRegister }
	const maxMB = 1 << 30 // a petabyte
	return []*option{
		boolOpt("savesip", false, func(c *Config) *bool { return &rec(c).SaveSIP }),
		{key: "savertp",
			set: func(c *Config, v string) error {
				switch strings.ToLower(v) {
				case "header", "h":
					rec(c).SaveRTP = SaveRTPHeader
					return nil
				}
				b, err := ParseBool(v)
				if err != nil {
					return errors.New("want yes, no or header")
				}
				rec(c).SaveRTP = SaveRTPNo
				if b {
					rec(c).SaveRTP = SaveRTPYes
				}
				return nil
			},
			get: func(c *Config) []string { return []string{rec(c).SaveRTP.String()} },
		},
		boolOpt("savertcp", false, func(c *Config) *bool { return &rec(c).SaveRTCP }),
		boolOpt("save-sip-register", false, saveReg),
		boolOpt("saveregister", false, saveReg),
		{key: "saveaudio",
			set: func(c *Config, v string) error {
				switch strings.ToLower(v) {
				case "wav", "w":
					rec(c).SaveAudio = true
					return nil
				case "ogg", "o", "mp3", "m":
					return errors.New("only wav is supported (not ogg or mp3)")
				}
				b, err := ParseBool(v)
				if err != nil {
					return errors.New("want wav or no")
				}
				rec(c).SaveAudio = b // yes is wav, as in the sniffer
				return nil
			},
			get: func(c *Config) []string {
				if rec(c).SaveAudio {
					return []string{"wav"}
				}
				return []string{"no"}
			},
		},
		intOpt("maxpoolsize", false, func(c *Config) *int { return &rec(c).MaxPoolSizeMB }, 0, maxMB),
		intOpt("maxpooldays", false, func(c *Config) *int { return &rec(c).MaxPoolDays }, 0, 100000),
		intOpt("maxpoolsipsize", false, func(c *Config) *int { return &rec(c).MaxPoolSIPSizeMB }, 0, maxMB),
		intOpt("maxpoolsipdays", false, func(c *Config) *int { return &rec(c).MaxPoolSIPDays }, 0, 100000),
		intOpt("maxpoolrtpsize", false, func(c *Config) *int { return &rec(c).MaxPoolRTPSizeMB }, 0, maxMB),
		intOpt("maxpoolrtpdays", false, func(c *Config) *int { return &rec(c).MaxPoolRTPDays }, 0, 100000),
		intOpt("maxpoolaudiosize", false, func(c *Config) *int { return &rec(c).MaxPoolAudioSizeMB }, 0, maxMB),
		intOpt("maxpoolaudiodays", false, func(c *Config) *int { return &rec(c).MaxPoolAudioDays }, 0, 100000),
		intOpt("openfile_max", false, func(c *Config) *int { return &rec(c).OpenFilesMax }, 0, 1000000),
		intOpt("spool_buffer_mb", false, func(c *Config) *int { return &rec(c).BufferMB }, 0, 65536),
		durOpt("spool_clean_interval", false, func(c *Config) *time.Duration { return &rec(c).CleanInterval }, time.Second, 0, 0),
	}
}
