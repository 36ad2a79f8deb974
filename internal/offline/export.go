package offline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/capture"
	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/spool"
)

// ErrNoSuchCall is returned by [Export] when no frame of the call was found.
var ErrNoSuchCall = errors.New("offline: no such call")

// ExportOptions choose one call and where to take it from.
type ExportOptions struct {
	// SpoolDir is searched for the call's recordings (its SIP and RTP
	// pcaps) when Capture is empty. Only a Call-ID can be looked up there.
	SpoolDir string
	// Capture, when set, is a capture file to cut the call out of: every
	// frame the call table attributes to it (SIP, RTP, RTCP), as the
	// recorder would have saved them.
	Capture string
	// CallID names the call; with Capture, Ref may name it instead: its
	// reference in that file (the n-th call, listcalls' callreference of
	// a run over it). A Call-ID reused by several calls selects them all.
	CallID string
	Ref    uint64
	// SIPPorts are the ports always taken as SIP (nil: 5060).
	SIPPorts *decode.PortSet
}

// ExportResult tells what [Export] wrote.
type ExportResult struct {
	Frames int      // frames written
	Calls  int      // calls they belong to
	Files  []string // the spool files read (spool-relative), for a spool export
}

// Export writes one call as a pcap to w: the frames of its SIP and RTP
// recordings in the spool merged in time order, or the frames of a capture
// file the call table attributes to it. Nothing is written when the call is
// not found ([ErrNoSuchCall]).
func Export(ctx context.Context, opt ExportOptions, w io.Writer) (ExportResult, error) {
	pw := spool.NewWriter(w)
	if opt.Capture != "" {
		return exportCapture(ctx, opt, pw)
	}
	if opt.CallID == "" {
		return ExportResult{}, fmt.Errorf("%w: the spool is searched by Call-ID only", ErrNoSuchCall)
	}
	files, err := spool.FindCall(opt.SpoolDir, opt.CallID)
	if err != nil {
		return ExportResult{}, fmt.Errorf("offline: %w", err)
	}
	if len(files) == 0 {
		return ExportResult{}, ErrNoSuchCall
	}
	res := ExportResult{Files: files}
	minutes := map[string]bool{}
	for _, f := range files {
		minutes[filepath.Dir(filepath.Dir(f))] = true
	}
	res.Calls = len(minutes)
	res.Frames, err = mergePcaps(ctx, opt.SpoolDir, files, pw)
	return res, err
}

// mergePcaps writes the frames of the files (relative to dir) to pw in
// time order; frames of equal time keep the files' order. A file whose
// last record is cut short (a call still being written) is read up to it.
func mergePcaps(ctx context.Context, dir string, names []string, pw *spool.Writer) (int, error) {
	type input struct {
		f    *capture.File
		fr   capture.Frame
		more bool
	}
	ins := make([]*input, 0, len(names))
	defer func() {
		for _, in := range ins {
			in.f.Close()
		}
	}()
	next := func(in *input) error {
		err := in.f.ReadFrame(&in.fr)
		if errors.Is(err, io.EOF) {
			in.more = false
			return nil
		}
		if err != nil {
			return fmt.Errorf("offline: %w", err)
		}
		in.fr.Data = append([]byte(nil), in.fr.Data...) // held while the others are read
		in.more = true
		return nil
	}
	for _, n := range names {
		f, err := capture.OpenFile(filepath.Join(dir, filepath.FromSlash(n)))
		if err != nil {
			return 0, fmt.Errorf("offline: %w", err)
		}
		in := &input{f: f}
		ins = append(ins, in)
		if err := next(in); err != nil {
			return 0, err
		}
	}
	n := 0
	for {
		var first *input
		for _, in := range ins {
			if in.more && (first == nil || in.fr.Time.Before(first.fr.Time)) {
				first = in
			}
		}
		if first == nil {
			return n, nil
		}
		if err := pw.WriteFrame(&first.fr); err != nil {
			return n, fmt.Errorf("offline: %w", err)
		}
		n++
		if n%4096 == 0 && ctx.Err() != nil {
			return n, ctx.Err()
		}
		if err := next(first); err != nil {
			return n, err
		}
	}
}

// exportCapture runs the capture file through a decoder and a call table
// whose recorder writes the frames of the chosen call.
func exportCapture(ctx context.Context, opt ExportOptions, pw *spool.Writer) (ExportResult, error) {
	if opt.CallID == "" && opt.Ref == 0 {
		return ExportResult{}, fmt.Errorf("%w: no Call-ID or reference given", ErrNoSuchCall)
	}
	f, err := capture.OpenFile(opt.Capture)
	if err != nil {
		return ExportResult{}, fmt.Errorf("offline: %w", err)
	}
	defer f.Close()
	cut := &cutter{callID: opt.CallID, ref: opt.Ref, w: pw, calls: map[uint64]bool{}}
	tab := calltable.New(calltable.Config{SIPPorts: opt.SIPPorts}, nil)
	tab.SetRecorder(cut)
	dec := decode.NewDecoder(decode.Config{SIPPorts: opt.SIPPorts, KeepFragments: true})
	h := tableHandler{tab}
	var (
		fr         capture.Frame
		lastExpire time.Time
	)
	for n := 1; ; n++ {
		if err := f.ReadFrame(&fr); err != nil {
			if !errors.Is(err, io.EOF) {
				return cut.result(), fmt.Errorf("offline: %s: %w", opt.Capture, err)
			}
			break
		}
		cut.frame(&fr)
		dec.Decode(&fr, h)
		if cut.err != nil {
			return cut.result(), fmt.Errorf("offline: %w", cut.err)
		}
		if n%batchFrames == 0 {
			if err := ctx.Err(); err != nil {
				return cut.result(), err
			}
			if fr.Time.Sub(lastExpire) >= time.Second {
				dec.Expire(fr.Time)
				lastExpire = fr.Time
			}
		}
	}
	tab.CloseAll()
	if cut.frames == 0 {
		return cut.result(), ErrNoSuchCall
	}
	return cut.result(), nil
}

// cutter is the recorder of an export from a capture: it writes the frame
// being decoded when the table attributes it to the chosen call, once per
// frame. It runs on the one goroutine reading the file.
type cutter struct {
	callID string
	ref    uint64
	w      *spool.Writer

	cur       *capture.Frame
	seq, done uint64 // the frame being decoded, the last one written
	frames    int
	calls     map[uint64]bool
	err       error
}

func (c *cutter) frame(f *capture.Frame) {
	c.cur = f
	c.seq++
}

// Record implements calltable.Recorder. Must hold the table's lock (the
// table calls it so); the cutter is used by one table only.
func (c *cutter) Record(kind calltable.RecordKind, ref uint64, callID string, start time.Time, dg *decode.Datagram) {
	if kind == calltable.RecordRegister || c.done == c.seq || c.err != nil {
		return
	}
	if (c.callID != "" && callID != c.callID) || (c.ref != 0 && ref != c.ref) {
		return
	}
	c.done = c.seq
	c.calls[ref] = true
	for i := range dg.Held { // the earlier fragments of a reassembled datagram
		if err := c.w.WriteFrame(&dg.Held[i]); err != nil {
			c.err = err
			return
		}
		c.frames++
	}
	if err := c.w.WriteFrame(c.cur); err != nil {
		c.err = err
		return
	}
	c.frames++
}

// Ended implements calltable.Recorder.
func (c *cutter) Ended(uint64) {}

func (c *cutter) result() ExportResult { return ExportResult{Frames: c.frames, Calls: len(c.calls)} }

var _ calltable.Recorder = (*cutter)(nil)

// ExportWAV copies the call's recorded audio (saveaudio = wav) from the
// spool to w and returns its spool-relative name. A Call-ID recorded in
// several minutes (reused by a later call) gives the oldest one's. There
// is no audio to cut out of a capture file: it is made while recording.
func ExportWAV(ctx context.Context, spoolDir, callID string, w io.Writer) (string, error) {
	if callID == "" {
		return "", fmt.Errorf("%w: the spool is searched by Call-ID only", ErrNoSuchCall)
	}
	files, err := spool.FindAudio(spoolDir, callID)
	if err != nil {
		return "", fmt.Errorf("offline: %w", err)
	}
	if len(files) == 0 {
		return "", fmt.Errorf("%w: no audio recorded (saveaudio = wav)", ErrNoSuchCall)
	}
	f, err := os.Open(filepath.Join(spoolDir, filepath.FromSlash(files[0])))
	if err != nil {
		return "", fmt.Errorf("offline: %w", err)
	}
	defer f.Close()
	if _, err := io.Copy(w, readerCtx{ctx, f}); err != nil {
		return "", fmt.Errorf("offline: %s: %w", files[0], err)
	}
	return files[0], nil
}

// readerCtx stops a copy when its context is done.
type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
