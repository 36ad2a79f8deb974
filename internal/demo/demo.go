package demo

import (
	"bytes"
	_ "embed" // the capture
	"fmt"

	"github.com/voipsensor/voipsensor/internal/capture"
)

//go:embed demo.pcap.gz
var pcapGz []byte

// Capture returns the gzipped pcap file itself. The slice is shared: do not
// modify it.
func Capture() []byte { return pcapGz }

// Open returns a new [capture.Source] reading the bundled capture from its
// start. Each call is independent, so a looping replay may call it once per
// pass.
func Open() (capture.Source, error) {
	f, err := capture.NewFileReader(bytes.NewReader(pcapGz))
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	return f, nil
}
