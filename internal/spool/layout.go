package spool

import (
	"os"
	"path"
	"path/filepath"
	"strconv"
	"time"
)

// Type is a kind of recording, named by its directory in a minute.
type Type uint8

// Recording types.
const (
	TypeSIP   Type = iota // SIP messages of calls
	TypeRTP               // RTP and RTCP of calls
	TypeREG               // REGISTER transaction chains
	TypeAUDIO             // calls' audio (saveaudio)
	numTypes
)

// Dir returns the type's directory name: "SIP", "RTP", "REG" or "AUDIO".
func (t Type) Dir() string {
	switch t {
	case TypeSIP:
		return "SIP"
	case TypeRTP:
		return "RTP"
	case TypeREG:
		return "REG"
	case TypeAUDIO:
		return "AUDIO"
	}
	return "?"
}

// maxBaseName bounds the sanitised Call-ID, so that with ".pcap" a file
// name stays within the 255 bytes of common file systems (the sniffer's
// fbasename holds 255).
const maxBaseName = 250

// BaseName returns callID as a file name without extension, the sniffer's
// get_fbasename_safe: every byte other than A-Z, a-z, 0-9, ':', '-', '.'
// and '@' becomes '_' (so a Call-ID can never hold a '/'), cut to 250
// bytes. An empty Call-ID or one made only of dots becomes "_" so that the
// name never is "", "." or "..".
func BaseName(callID string) string {
	n := min(len(callID), maxBaseName)
	b := make([]byte, n)
	dots := true
	for i := 0; i < n; i++ {
		c := callID[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ':' || c == '-' || c == '.' || c == '@') {
			c = '_'
		}
		if c != '.' {
			dots = false
		}
		b[i] = c
	}
	if dots {
		return "_"
	}
	return string(b)
}

// MinuteDir returns "YYYY-MM-DD/HH/MM" of t in loc (nil: time.Local), the
// directory a recording started at t goes to.
func MinuteDir(t time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.Local
	}
	return t.In(loc).Format("2006-01-02/15/04")
}

// CallPath returns the spool-relative path of a call's SIP or RTP pcap.
func CallPath(typ Type, callID string, start time.Time, loc *time.Location) string {
	return path.Join(MinuteDir(start, loc), typ.Dir(), BaseName(callID)+".pcap")
}

// AudioPath returns the spool-relative path of a call's WAV (saveaudio):
// the minute of the call's first packet, as its pcaps, and the sniffer's
// name, AUDIO/<callid>.wav.
func AudioPath(callID string, start time.Time, loc *time.Location) string {
	return path.Join(MinuteDir(start, loc), TypeAUDIO.Dir(), BaseName(callID)+".wav")
}

// RegisterPath returns the spool-relative path of a REGISTER chain's pcap:
// the binding's ID as the name, the minute of the chain's first request.
// Chains of one binding within a minute share the file.
func RegisterPath(id uint64, start time.Time, loc *time.Location) string {
	return path.Join(MinuteDir(start, loc), TypeREG.Dir(), strconv.FormatUint(id, 10)+".pcap")
}

// FindCall returns the spool-relative paths of the SIP and RTP pcaps of
// the calls with this Call-ID, oldest minute first, SIP before RTP within a
// minute. It walks the minute directories (a Call-ID says nothing of its
// date); a Call-ID seen again in another minute (a new call reusing it)
// gives several pairs.
func FindCall(dir, callID string) ([]string, error) {
	base := BaseName(callID) + ".pcap"
	return findFiles(dir, func(minute string) []string {
		return []string{path.Join(minute, TypeSIP.Dir(), base), path.Join(minute, TypeRTP.Dir(), base)}
	})
}

// FindAudio returns the spool-relative names of the call's WAV files
// (saveaudio), oldest minute first; like FindCall, it searches every minute.
func FindAudio(dir, callID string) ([]string, error) {
	name := BaseName(callID) + ".wav"
	return findFiles(dir, func(minute string) []string { return []string{path.Join(minute, TypeAUDIO.Dir(), name)} })
}

// findFiles returns, in time order, the regular files among the names
// each minute directory of dir proposes.
func findFiles(dir string, names func(minute string) []string) ([]string, error) {
	var out []string
	dates, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, d := range dates {
		if !d.IsDir() || !isDigits(d.Name(), "dddd-dd-dd") {
			continue
		}
		hours, _ := os.ReadDir(filepath.Join(dir, d.Name()))
		for _, h := range hours {
			if !h.IsDir() || !isDigits(h.Name(), "dd") {
				continue
			}
			mins, _ := os.ReadDir(filepath.Join(dir, d.Name(), h.Name()))
			for _, m := range mins {
				if !m.IsDir() || !isDigits(m.Name(), "dd") {
					continue
				}
				for _, rel := range names(path.Join(d.Name(), h.Name(), m.Name())) {
					if fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(rel))); err == nil && fi.Mode().IsRegular() {
						out = append(out, rel)
					}
				}
			}
		}
	}
	return out, nil
}
