package manager

import (
	"bytes"
	"errors"
)

// MaxRequestSize bounds one request, in bytes. A larger request is
// answered "error: request too large" and closed.
const MaxRequestSize = 1 << 20

// maxCipherName is the legacy limit on the cipher name before the first ':'.
const maxCipherName = 20

// Framing errors.
var (
	// ErrTooLarge means the request exceeded the framer's Max.
	ErrTooLarge = errors.New("manager: request too large")
	// ErrMissingSea means an AES request ended without a ":sea"
	// terminator after a block-aligned ciphertext.
	ErrMissingSea = errors.New("manager: aes request without :sea terminator")
)

// Frame is one complete request. For AES requests Cipher holds the cipher
// name and Data the raw ciphertext; for plaintext Cipher is empty and Data
// holds the request bytes up to (not including) the first '\n'. Data
// aliases the framer's buffer.
type Frame struct {
	Cipher string
	Data   []byte
}

// Encrypted reports whether the frame is an AES request.
func (f Frame) Encrypted() bool { return f.Cipher != "" }

type framerMode uint8

const (
	modeUnknown framerMode = iota // not yet known whether plain or AES
	modePlain
	modeAES
)

// Framer is the manager request state machine. Feed it bytes as they
// arrive with Write; it reports completion as soon as a request is whole:
//
//   - plaintext: at the first '\n' (so "cmd\n", "cmd\r\n" and
//     "cmd\r\n\r\n" all complete at once);
//   - AES (first bytes "aes", any case, then a cipher name of under 20
//     bytes and ':'): at the first ":sea" whose preceding ciphertext is a
//     non-empty multiple of 16 bytes and, when Accept is set, is accepted
//     by it (so ":sea" bytes inside the ciphertext are skipped).
//
// On EOF or an idle gap the connection calls End. A Framer is not safe for
// concurrent use; its zero value with Max 0 uses [MaxRequestSize].
type Framer struct {
	// Max bounds the buffered request; 0 means MaxRequestSize.
	Max int
	// Accept, if non-nil, decides whether a candidate AES frame is the
	// real one (typically by trying to decrypt it).
	Accept func(cipher string, ciphertext []byte) bool

	buf   []byte
	mode  framerMode
	ctOff int // AES: offset of the ciphertext
	scan  int // offset to resume searching from
	first int // AES: end of the first aligned ":sea" candidate, -1 none
	done  bool
	frame Frame
}

// Len returns the number of buffered bytes.
func (f *Framer) Len() int { return len(f.buf) }

// Done reports whether a complete frame is available.
func (f *Framer) Done() bool { return f.done }

// Frame returns the completed frame; valid only after Write reported done.
func (f *Framer) Frame() Frame { return f.frame }

// Write appends p and reports whether the request is now complete. Bytes
// after completion are ignored. It returns [ErrTooLarge] when the buffer
// would exceed Max.
func (f *Framer) Write(p []byte) (done bool, err error) {
	if f.done {
		return true, nil
	}
	max := f.Max
	if max <= 0 {
		max = MaxRequestSize
	}
	if len(f.buf)+len(p) > max {
		return false, ErrTooLarge
	}
	if f.buf == nil {
		f.first = -1
	}
	f.buf = append(f.buf, p...)
	f.classify()
	switch f.mode {
	case modePlain:
		if i := bytes.IndexByte(f.buf[f.scan:], '\n'); i >= 0 {
			f.finish(Frame{Data: f.buf[:f.scan+i]})
		} else {
			f.scan = len(f.buf)
		}
	case modeAES:
		f.scanAES()
	}
	return f.done, nil
}

// classify decides between plaintext and AES once enough bytes are known.
func (f *Framer) classify() {
	if f.mode != modeUnknown {
		return
	}
	b := f.buf
	n := min(len(b), 3)
	if !bytes.EqualFold(b[:n], []byte("aes")[:n]) {
		f.mode = modePlain
		return
	}
	if n < 3 {
		return
	}
	c := bytes.IndexByte(b[:min(len(b), maxCipherName)], ':')
	nl := bytes.IndexByte(b[:min(len(b), maxCipherName)], '\n')
	switch {
	case c >= 0 && (nl < 0 || c < nl):
		f.mode = modeAES
		f.ctOff = c + 1
		f.scan = f.ctOff
	case nl >= 0 || len(b) >= maxCipherName:
		f.mode = modePlain // "aes..." text without a cipher prefix
	}
}

func (f *Framer) scanAES() {
	const sea = ":sea"
	for {
		i := bytes.Index(f.buf[f.scan:], []byte(sea))
		if i < 0 {
			f.scan = max(f.ctOff, len(f.buf)-len(sea)+1)
			return
		}
		end := f.scan + i
		f.scan = end + 1
		ct := f.buf[f.ctOff:end]
		if len(ct) == 0 || len(ct)%16 != 0 {
			continue
		}
		if f.first < 0 {
			f.first = end
		}
		cipher := string(f.buf[:f.ctOff-1])
		if f.Accept == nil || f.Accept(cipher, ct) {
			f.finish(Frame{Cipher: cipher, Data: ct})
			return
		}
	}
}

func (f *Framer) finish(fr Frame) {
	f.done = true
	f.frame = fr
}

// End finishes the request at EOF or after an idle gap. A plaintext
// request is whatever was buffered. An AES request that Accept never
// accepted falls back to its first block-aligned ":sea" candidate (so that
// the caller reports a decryption failure), or fails with [ErrMissingSea]
// when there is none. An empty buffer gives an empty Frame.
func (f *Framer) End() (Frame, error) {
	if f.done {
		return f.frame, nil
	}
	if f.mode == modeAES {
		if f.first < 0 {
			return Frame{}, ErrMissingSea
		}
		f.finish(Frame{Cipher: string(f.buf[:f.ctOff-1]), Data: f.buf[f.ctOff:f.first]})
		return f.frame, nil
	}
	f.finish(Frame{Data: f.buf})
	return f.frame, nil
}
