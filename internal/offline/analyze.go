package offline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/capture"
	"github.com/voipsensor/voipsensor/internal/decode"
)

// AnalyzeOptions tune an offline analysis.
type AnalyzeOptions struct {
	SIPPorts *decode.PortSet // nil = 5060
	Table    calltable.Config
	// Progress, when set, is called every few thousand frames with the
	// bytes consumed and the total of the file being read (-1 if unknown).
	Progress func(file string, done, total int64)
	// DecodeOnly reads and decodes but analyses nothing: the baseline that
	// scripts/bench.sh compares the full analysis with.
	DecodeOnly bool
}

// AnalyzeResult sums up an offline analysis.
type AnalyzeResult struct {
	Frames  uint64
	Bytes   uint64
	Decode  decode.Stats
	Table   calltable.Stats
	Elapsed time.Duration
	// Truncated lists the files whose last record was cut short (a
	// capture still being written, or a partial copy): analysed up to it.
	Truncated []string
	// Interrupted is set when ctx was cancelled before the last file
	// ended: the analysis stopped at a batch boundary and the calls still
	// open were closed at their last packet, as at the end of the input.
	Interrupted bool
}

// Analyze reads the capture files in order as one capture and reports every
// call and registration change to sink as it leaves the table. Calls still
// open at the end are closed at their last packet. When ctx is cancelled it
// stops reading and ends the same way, with Interrupted set and a nil error.
func Analyze(ctx context.Context, files []string, opts AnalyzeOptions, sink calltable.Sink) (AnalyzeResult, error) {
	start := time.Now()
	cfg := opts.Table
	if cfg.SIPPorts == nil {
		cfg.SIPPorts = opts.SIPPorts
	}
	tab := calltable.New(cfg, sink)
	dec := decode.NewDecoder(decode.Config{SIPPorts: cfg.SIPPorts})
	var res AnalyzeResult
	for _, name := range files {
		feed := tab.Feed
		if opts.DecodeOnly {
			feed = func(fn func(decode.Handler)) { fn(discard{}) }
		}
		err := analyzeFile(ctx, name, dec, feed, opts.Progress, &res)
		if err != nil && ctx.Err() != nil {
			// Cancelled: between batches, or mid-read (the file was
			// closed under a blocked ReadFrame, see analyzeFile).
			res.Interrupted = true
			break
		}
		if err != nil {
			return res, err
		}
	}
	tab.CloseAll()
	res.Decode = dec.Stats()
	res.Table = tab.Stats()
	res.Elapsed = time.Since(start)
	return res, nil
}

// tableHandler feeds decoded datagrams to the table, one lock each (the
// daemon's capture loop).
type tableHandler struct{ t *calltable.Table }

func (h tableHandler) HandleDatagram(dg *decode.Datagram) { h.t.HandleDatagram(dg) }

// discard is the handler of a decode-only run.
type discard struct{}

func (discard) HandleDatagram(*decode.Datagram) {}

// batchFrames is how many frames analyzeFile decodes between checks of the
// context, progress reports and decoder timeouts, and so per table lock.
const batchFrames = 4096

// analyzeFile reads one file and decodes its frames in batches, each batch
// inside one call of feed (the table's Feed: one lock per batch).
func analyzeFile(ctx context.Context, name string, dec *decode.Decoder, feed func(func(decode.Handler)),
	progress func(string, int64, int64), res *AnalyzeResult) error {
	f, err := capture.OpenFile(name)
	if err != nil {
		return fmt.Errorf("offline: %w", err)
	}
	defer f.Close()
	// A read that blocks (a FIFO, a pipe from a capture still running)
	// must not hold off a cancellation: closing the file ends it.
	defer context.AfterFunc(ctx, func() { f.Close() })()
	var (
		fr         capture.Frame
		lastExpire time.Time
		n          int
		eof        bool
		rerr       error
	)
	// batch decodes frames up to and including the next one whose index
	// is a multiple of batchFrames, then runs the decoder's timeouts.
	batch := func(h decode.Handler) {
		for {
			if err := f.ReadFrame(&fr); err != nil {
				if !errors.Is(err, io.EOF) {
					rerr = fmt.Errorf("offline: %s: %w", name, err)
				}
				eof = true
				return
			}
			res.Frames++
			res.Bytes += uint64(len(fr.Data))
			dec.Decode(&fr, h)
			n++
			if (n-1)%batchFrames == 0 {
				break
			}
		}
		if fr.Time.Sub(lastExpire) >= time.Second {
			dec.Expire(fr.Time)
			lastExpire = fr.Time
		}
	}
	for !eof {
		feed(batch)
		if rerr != nil {
			return rerr
		}
		if eof {
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if progress != nil {
			done, total := f.Progress()
			progress(name, done, total)
		}
	}
	if progress != nil {
		done, total := f.Progress()
		progress(name, done, total)
	}
	if f.Truncated() > 0 {
		res.Truncated = append(res.Truncated, name)
	}
	return nil
}
