package spool

import (
	"github.com/voipsensor/voipsensor/internal/calltable"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// fillSpool writes, for each of n minutes from start, a SIP file of sip
// bytes and an RTP file of rtp bytes, and returns the minutes' directories
// oldest first.
func fillSpool(t *testing.T, dir string, start time.Time, n, sip, rtp int) []string {
	t.Helper()
	var out []string
	for i := 0; i < n; i++ {
		m := MinuteDir(start.Add(time.Duration(i)*time.Minute), time.UTC)
		out = append(out, m)
		for _, f := range []struct {
			typ  Type
			size int
		}{{TypeSIP, sip}, {TypeRTP, rtp}} {
			p := filepath.Join(dir, m, f.typ.Dir(), "call.pcap")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, make([]byte, f.size), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// present lists which of mins still hold a file of typ.
func present(dir string, mins []string, typ Type) []string {
	var out []string
	for _, m := range mins {
		if _, err := os.Stat(filepath.Join(dir, m, typ.Dir(), "call.pcap")); err == nil {
			out = append(out, m)
		}
	}
	return out
}

func TestCleanSize(t *testing.T) {
	start := time.Date(2026, 1, 31, 23, 58, 0, 0, time.UTC) // crosses an hour and a day
	for _, tt := range []struct {
		name    string
		lim     Limits
		wantSIP int // newest minutes left with SIP
		wantRTP int
	}{
		// 10 minutes of 100 kB SIP + 400 kB RTP = 5 MB.
		{"maxpoolsize", Limits{MaxBytes: 2_000_000}, 4, 4},
		{"maxpoolsipsize", Limits{MaxSIPBytes: 350_000}, 3, 10},
		{"maxpoolrtpsize", Limits{MaxRTPBytes: 1_000_000}, 10, 2},
		{"all at once", Limits{MaxBytes: 3_000_000, MaxRTPBytes: 1_000_000}, 6, 2},
		{"under the limits", Limits{MaxBytes: 10_000_000}, 10, 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			mins := fillSpool(t, dir, start, 10, 100_000, 400_000)
			// Beside the recordings: the database and a stray directory,
			// never the cleaner's.
			os.WriteFile(filepath.Join(dir, "voipsensor.db"), make([]byte, 5_000_000), 0o644)
			os.MkdirAll(filepath.Join(dir, "other", "01", "02", "SIP"), 0o755)
			c := NewCleaner(dir, tt.lim, time.UTC, nil)
			u := c.Clean(start.Add(time.Hour))
			if got, want := present(dir, mins, TypeSIP), mins[10-tt.wantSIP:]; !slices.Equal(got, want) {
				t.Errorf("SIP left in %v, want the newest %d: %v", got, tt.wantSIP, want)
			}
			if got, want := present(dir, mins, TypeRTP), mins[10-tt.wantRTP:]; !slices.Equal(got, want) {
				t.Errorf("RTP left in %v, want the newest %d: %v", got, tt.wantRTP, want)
			}
			if want := int64(tt.wantSIP*100_000 + tt.wantRTP*400_000); u.Total() != want {
				t.Errorf("usage %d bytes, want %d", u.Total(), want)
			}
			if _, err := os.Stat(filepath.Join(dir, "voipsensor.db")); err != nil {
				t.Errorf("the database went: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "other", "01", "02", "SIP")); err != nil {
				t.Errorf("a directory outside the layout went: %v", err)
			}
			// Emptied minutes, hours and days are removed.
			for i, m := range mins {
				_, err := os.Stat(filepath.Join(dir, m))
				if gone := i < 10-max(tt.wantSIP, tt.wantRTP); gone != os.IsNotExist(err) {
					t.Errorf("minute %s: gone = %v, want %v", m, !gone, gone)
				}
			}
			if tt.wantSIP == 10 && tt.wantRTP < 10 {
				if _, err := os.Stat(filepath.Join(dir, "2026-01-31")); err != nil {
					t.Errorf("day with SIP left was removed")
				}
			}
			if st := c.Stats(); st.RemovedBytes != uint64(5_000_000-u.Total()) || st.Passes != 1 {
				t.Errorf("stats %+v: removed bytes do not add up to 5 MB minus what is left", st)
			}
		})
	}
}

func TestCleanAge(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// One minute a day for 10 days.
	var mins []string
	for d := 0; d < 10; d++ {
		mins = append(mins, fillSpool(t, dir, start.AddDate(0, 0, d), 1, 10, 10)...)
	}
	now := start.AddDate(0, 0, 9).Add(time.Hour)
	c := NewCleaner(dir, Limits{MaxAge: 5 * 24 * time.Hour, MaxRTPAge: 2 * 24 * time.Hour}, time.UTC, nil)
	c.Clean(now)
	if got := present(dir, mins, TypeSIP); !slices.Equal(got, mins[5:]) {
		t.Errorf("SIP left %v, want the last 5 days %v", got, mins[5:])
	}
	if got := present(dir, mins, TypeRTP); !slices.Equal(got, mins[8:]) {
		t.Errorf("RTP left %v, want the last 2 days %v", got, mins[8:])
	}
	for d := 0; d < 5; d++ {
		if _, err := os.Stat(filepath.Join(dir, start.AddDate(0, 0, d).Format("2006-01-02"))); !os.IsNotExist(err) {
			t.Errorf("day %d still there", d)
		}
	}
}

// TestCleanRecorded: a spool the recorder fills past maxpoolsize keeps its
// newest calls.
func TestCleanRecorded(t *testing.T) {
	dir := t.TempDir()
	r := New(Options{Dir: dir, RTP: RTPFull, Location: time.UTC, Linger: time.Millisecond, FlushEvery: time.Millisecond})
	stop := runRecorder(r)
	// 20 calls a minute apart, 50 RTP frames each (~10 kB a call).
	var names []string
	for c := 0; c < 20; c++ {
		start := t0.Add(time.Duration(c) * time.Minute)
		id := "call" + string(rune('a'+c))
		names = append(names, CallPath(TypeRTP, id, start, time.UTC))
		for i := 0; i < 50; i++ {
			fr, dg := udpFrame(t, "10.0.0.1:4000", "10.0.0.2:4000", rtpPayload(uint16(i)), start.Add(time.Duration(i)*20*time.Millisecond))
			r.Frame(fr)
			r.Record(calltable.RecordRTP, uint64(c+1), id, start, dg)
		}
		r.Ended(uint64(c + 1))
	}
	waitFor(t, "calls written", func() bool { s := r.Stats(); return s.Frames == 20*50 && s.FilesOpen == 0 })
	stop()
	fi, err := os.Stat(filepath.Join(dir, names[0]))
	if err != nil {
		t.Fatal(err)
	}
	per := fi.Size()
	c := NewCleaner(dir, Limits{MaxBytes: 5*per + per/2}, time.UTC, nil)
	u := c.Clean(t0.Add(time.Hour))
	for i, n := range names {
		_, err := os.Stat(filepath.Join(dir, n))
		if kept := i >= 15; kept != (err == nil) {
			t.Errorf("%s kept = %v, want %v", n, err == nil, kept)
		}
	}
	if u.Minutes != 5 || u.Files[TypeRTP] != 5 {
		t.Errorf("usage %+v, want 5 minutes with 5 RTP files", u)
	}
}

// TestCleanAudio: the AUDIO directories count in maxpoolsize and have
// their own maxpoolaudiosize and maxpoolaudiodays, as in the sniffer.
func TestCleanAudio(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fill := func(t *testing.T) (string, []string) {
		dir := t.TempDir()
		mins := fillSpool(t, dir, start, 10, 100_000, 100_000) // 10 minutes of 100 kB SIP, RTP and AUDIO
		for _, m := range mins {
			p := filepath.Join(dir, m, TypeAUDIO.Dir(), "call.pcap")
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, make([]byte, 100_000), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir, mins
	}
	for _, tt := range []struct {
		name                        string
		lim                         Limits
		wantSIP, wantRTP, wantAudio int
	}{
		{"maxpoolsize", Limits{MaxBytes: 1_200_000}, 4, 4, 4},
		{"maxpoolaudiosize", Limits{MaxAudioBytes: 350_000}, 10, 10, 3},
		{"maxpoolaudiodays", Limits{MaxAudioAge: 5 * time.Minute}, 10, 10, 5},
		{"maxpoolrtpsize keeps audio", Limits{MaxRTPBytes: 200_000}, 10, 2, 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir, mins := fill(t)
			c := NewCleaner(dir, tt.lim, time.UTC, nil)
			u := c.Clean(start.Add(10*time.Minute - time.Second))
			for _, w := range []struct {
				typ  Type
				want int
			}{{TypeSIP, tt.wantSIP}, {TypeRTP, tt.wantRTP}, {TypeAUDIO, tt.wantAudio}} {
				if got := present(dir, mins, w.typ); !slices.Equal(got, mins[10-w.want:]) {
					t.Errorf("%s left in %v, want the newest %d", w.typ.Dir(), got, w.want)
				}
			}
			if u.Bytes[TypeAUDIO] != int64(tt.wantAudio*100_000) || u.Files[TypeAUDIO] != tt.wantAudio {
				t.Errorf("usage %+v, want %d AUDIO files", u, tt.wantAudio)
			}
		})
	}
}
