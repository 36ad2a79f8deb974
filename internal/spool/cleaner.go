package spool

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Limits are the spool's retention rules (maxpoolsize and friends). A zero
// field is no limit. The SIP limits cover the SIP and REG directories, the
// RTP ones the RTP directories, the audio ones the AUDIO directories; the
// others every type.
type Limits struct {
	MaxBytes, MaxSIPBytes, MaxRTPBytes, MaxAudioBytes int64
	MaxAge, MaxSIPAge, MaxRTPAge, MaxAudioAge         time.Duration
}

// Any reports whether any limit is set.
func (l Limits) Any() bool {
	return l.MaxBytes > 0 || l.MaxSIPBytes > 0 || l.MaxRTPBytes > 0 || l.MaxAudioBytes > 0 ||
		l.MaxAge > 0 || l.MaxSIPAge > 0 || l.MaxRTPAge > 0 || l.MaxAudioAge > 0
}

// DefaultCleanInterval is the time between two passes of [Cleaner.Run]
// when none is given (the sniffer cleans every 5 minutes).
const DefaultCleanInterval = 5 * time.Minute

// Usage is what a cleaning pass found in the spool, after it deleted.
type Usage struct {
	At      time.Time
	Bytes   [numTypes]int64 // by Type
	Files   [numTypes]int
	Minutes int       // minute directories holding recordings
	Oldest  time.Time // the oldest of them; zero when none
}

// Total returns the bytes of every type.
func (u Usage) Total() int64 {
	var n int64
	for _, b := range u.Bytes {
		n += b
	}
	return n
}

// CleanerStats are a [Cleaner]'s counters and its last pass's usage.
type CleanerStats struct {
	Passes       uint64
	RemovedFiles uint64
	RemovedBytes uint64
	Errors       uint64
	Usage        Usage
}

// Cleaner keeps the recordings of a spool within [Limits], deleting the
// oldest minute directories first. It touches only YYYY-MM-DD/HH/MM/{SIP,
// RTP,REG,AUDIO} directories: the database and spill files beside them are not
// its business. Safe for concurrent use.
type Cleaner struct {
	dir string
	lim Limits
	loc *time.Location
	log *slog.Logger

	run   sync.Mutex // one pass at a time
	mu    sync.Mutex // guards st
	st    CleanerStats
	errAt time.Time
}

// NewCleaner returns a cleaner of dir; loc is the zone of the minute
// directories (nil: time.Local), log receives its errors (nil:
// slog.Default()).
func NewCleaner(dir string, lim Limits, loc *time.Location, log *slog.Logger) *Cleaner {
	if loc == nil {
		loc = time.Local
	}
	if log == nil {
		log = slog.Default()
	}
	return &Cleaner{dir: dir, lim: lim, loc: loc, log: log}
}

// minute is one minute directory and what it holds.
type minute struct {
	rel   string // YYYY-MM-DD/HH/MM
	t     time.Time
	bytes [numTypes]int64
	files [numTypes]int
}

func (m *minute) has(typ Type) bool { return m.files[typ] > 0 || m.bytes[typ] > 0 }

// Run cleans at once and then every interval (0: DefaultCleanInterval)
// until ctx is done; it returns nil.
func (c *Cleaner) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = DefaultCleanInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		c.Clean(time.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Clean runs one pass as of now: the age rules, then the size rules, each
// deleting the oldest minutes first, and returns the usage left.
func (c *Cleaner) Clean(now time.Time) Usage {
	c.run.Lock()
	defer c.run.Unlock()
	mins := c.scan()
	var removedFiles, removedBytes uint64
	del := func(m *minute, types ...Type) {
		for _, typ := range types {
			if !m.has(typ) {
				continue
			}
			if err := os.RemoveAll(filepath.Join(c.dir, filepath.FromSlash(m.rel), typ.Dir())); err != nil {
				c.error(err, now)
				continue
			}
			removedFiles += uint64(m.files[typ])
			removedBytes += uint64(m.bytes[typ])
			m.files[typ], m.bytes[typ] = 0, 0
		}
	}
	sipTypes, rtpTypes, audioTypes := []Type{TypeSIP, TypeREG}, []Type{TypeRTP}, []Type{TypeAUDIO}
	all := []Type{TypeSIP, TypeRTP, TypeREG, TypeAUDIO}
	age := func(limit time.Duration, types []Type) {
		if limit <= 0 {
			return
		}
		cut := now.Add(-limit)
		for i := range mins {
			if mins[i].t.Before(cut) {
				del(&mins[i], types...)
			}
		}
	}
	size := func(limit int64, types []Type) {
		if limit <= 0 {
			return
		}
		var total int64
		for i := range mins {
			for _, typ := range types {
				total += mins[i].bytes[typ]
			}
		}
		for i := 0; i < len(mins) && total > limit; i++ {
			for _, typ := range types {
				total -= mins[i].bytes[typ]
			}
			del(&mins[i], types...)
		}
	}
	age(c.lim.MaxAge, all)
	age(c.lim.MaxSIPAge, sipTypes)
	age(c.lim.MaxRTPAge, rtpTypes)
	age(c.lim.MaxAudioAge, audioTypes)
	size(c.lim.MaxBytes, all)
	size(c.lim.MaxSIPBytes, sipTypes)
	size(c.lim.MaxRTPBytes, rtpTypes)
	size(c.lim.MaxAudioBytes, audioTypes)

	u := Usage{At: now}
	for i := range mins {
		m := &mins[i]
		held := false
		for typ := Type(0); typ < numTypes; typ++ {
			u.Bytes[typ] += m.bytes[typ]
			u.Files[typ] += m.files[typ]
			held = held || m.has(typ)
		}
		if !held {
			c.prune(m.rel)
			continue
		}
		u.Minutes++
		if u.Oldest.IsZero() {
			u.Oldest = m.t
		}
	}
	c.mu.Lock()
	c.st.Passes++
	c.st.RemovedFiles += removedFiles
	c.st.RemovedBytes += removedBytes
	c.st.Usage = u
	c.mu.Unlock()
	if removedFiles > 0 {
		c.log.Info("spool cleaned", "removed_files", removedFiles, "removed_bytes", removedBytes,
			"left_bytes", u.Total(), "oldest", u.Oldest)
	}
	return u
}

// scan lists the minute directories, oldest first (the names sort by
// time), with the size of each type's files. Must hold c.run.
func (c *Cleaner) scan() []minute {
	var out []minute
	dates, _ := os.ReadDir(c.dir)
	for _, d := range dates {
		if !d.IsDir() || !isDigits(d.Name(), "dddd-dd-dd") {
			continue
		}
		hours, _ := os.ReadDir(filepath.Join(c.dir, d.Name()))
		for _, h := range hours {
			if !h.IsDir() || !isDigits(h.Name(), "dd") {
				continue
			}
			mins, _ := os.ReadDir(filepath.Join(c.dir, d.Name(), h.Name()))
			for _, mn := range mins {
				if !mn.IsDir() || !isDigits(mn.Name(), "dd") {
					continue
				}
				t, err := time.ParseInLocation("2006-01-02 15:04", d.Name()+" "+h.Name()+":"+mn.Name(), c.loc)
				if err != nil {
					continue
				}
				m := minute{rel: d.Name() + "/" + h.Name() + "/" + mn.Name(), t: t}
				for typ := Type(0); typ < numTypes; typ++ {
					c.sizeDir(filepath.Join(c.dir, d.Name(), h.Name(), mn.Name(), typ.Dir()), &m, typ)
				}
				out = append(out, m)
			}
		}
	}
	return out
}

// sizeDir adds the regular files of dir to m's type typ. Must hold c.run.
func (c *Cleaner) sizeDir(dir string, m *minute, typ Type) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			m.files[typ]++ // counted so that the directory is deleted with the rest
			continue
		}
		if fi, err := e.Info(); err == nil {
			m.bytes[typ] += fi.Size()
			m.files[typ]++
		}
	}
}

// prune removes a minute directory left empty, then its hour and date
// directories if they are empty too. Must hold c.run.
func (c *Cleaner) prune(rel string) {
	p := filepath.Join(c.dir, filepath.FromSlash(rel))
	for i := 0; i < 3; i++ {
		if os.Remove(p) != nil { // not empty, or gone
			return
		}
		p = filepath.Dir(p)
	}
}

func (c *Cleaner) error(err error, now time.Time) {
	c.mu.Lock()
	c.st.Errors++
	logIt := now.Sub(c.errAt) >= errorLogEvery
	if logIt {
		c.errAt = now
	}
	c.mu.Unlock()
	if logIt {
		c.log.Error("spool cleaning failed", "err", err)
	}
}

// Stats returns the counters and the last pass's usage.
func (c *Cleaner) Stats() CleanerStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

// isDigits reports whether s has the shape of pattern, where 'd' stands
// for an ASCII digit and any other byte for itself.
func isDigits(s, pattern string) bool {
	if len(s) != len(pattern) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if pattern[i] == 'd' {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		} else if s[i] != pattern[i] {
			return false
		}
	}
	return true
}
