package sensor

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
}

// Analyze reads the capture files in order as one capture and reports every
// call and registration change to sink as it leaves the table. Calls still
// open at the end are closed at their last packet.
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
		var h decode.Handler = tableHandler{tab}
		if opts.DecodeOnly {
			h = discard{}
		}
		if err := analyzeFile(ctx, name, dec, h, opts.Progress, &res); err != nil {
			return res, err
		}
	}
	tab.CloseAll()
	res.Decode = dec.Stats()
	res.Table = tab.Stats()
	res.Elapsed = time.Since(start)
	return res, nil
}

// tableHandler feeds decoded datagrams to the table.
type tableHandler struct{ t *calltable.Table }

func (h tableHandler) HandleDatagram(dg *decode.Datagram) { h.t.HandleDatagram(dg) }

// discard is the handler of a decode-only run.
type discard struct{}

func (discard) HandleDatagram(*decode.Datagram) {}

func analyzeFile(ctx context.Context, name string, dec *decode.Decoder, h decode.Handler,
	progress func(string, int64, int64), res *AnalyzeResult) error {
	f, err := capture.OpenFile(name)
	if err != nil {
		return fmt.Errorf("sensor: %s: %w", name, err)
	}
	defer f.Close()
	var fr capture.Frame
	var lastExpire time.Time
	for n := 0; ; n++ {
		if err := f.ReadFrame(&fr); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("sensor: %s: %w", name, err)
		}
		res.Frames++
		res.Bytes += uint64(len(fr.Data))
		dec.Decode(&fr, h)
		if n&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if progress != nil {
				done, total := f.Progress()
				progress(name, done, total)
			}
			if fr.Time.Sub(lastExpire) >= time.Second {
				dec.Expire(fr.Time)
				lastExpire = fr.Time
			}
		}
	}
	if progress != nil {
		done, total := f.Progress()
		progress(name, done, total)
	}
	return nil
}
