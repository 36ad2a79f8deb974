package config

import (
	"errors"
	"testing"
)

// TestSaveAudio: saveaudio takes the sniffer's wav (w, yes) and no, turns
// the recorder on by itself, and refuses ogg and mp3 rather than writing
// another format than asked; maxpoolaudiosize and maxpoolaudiodays are
// retention limits.
func TestSaveAudio(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
		get  string
		err  string
	}{
		{"wav", true, "wav", ""},
		{"W", true, "wav", ""},
		{"yes", true, "wav", ""},
		{"no", false, "no", ""},
		{"0", false, "no", ""},
		{"ogg", false, "", "config: saveaudio: invalid value: only wav is supported (not ogg or mp3)"},
		{"mp3", false, "", "config: saveaudio: invalid value: only wav is supported (not ogg or mp3)"},
		{"flac", false, "", "config: saveaudio: invalid value: want wav or no"},
	} {
		c := Default()
		err := c.Set("saveaudio", tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err || !errors.Is(err, ErrInvalid) {
				t.Errorf("saveaudio = %s: error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("saveaudio = %s: %v", tt.in, err)
			continue
		}
		got, _ := c.Get("saveaudio")
		if c.Recording.SaveAudio != tt.want || c.Recording.Enabled() != tt.want || got != tt.get {
			t.Errorf("saveaudio = %s: SaveAudio %v, Enabled %v, Get %q; want %v, %v, %q",
				tt.in, c.Recording.SaveAudio, c.Recording.Enabled(), got, tt.want, tt.want, tt.get)
		}
	}
	c := Default()
	if c.Set("maxpoolaudiosize", "500") != nil || c.Set("maxpoolaudiodays", "7") != nil {
		t.Fatal("maxpoolaudio* refused")
	}
	if r := c.Recording; r.MaxPoolAudioSizeMB != 500 || r.MaxPoolAudioDays != 7 || !r.Limited() {
		t.Errorf("Recording = %+v, want 500 MB and 7 days of audio, limited", r)
	}
}
