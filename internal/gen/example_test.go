package gen_test

import (
	"fmt"
	"os"
	"time"

	"github.com/voipsensor/voipsensor/internal/gen"
)

// Example writes 100 calls with 1% loss and their ground truth.
func Example() {
	cfg := gen.DefaultConfig()
	cfg.Calls, cfg.Concurrency, cfg.TalkTime = 100, 20, 30*time.Second
	cfg.Loss, cfg.Jitter = 0.01, 20*time.Millisecond
	pcap, err := os.Create("calls.pcap")
	if err != nil {
		panic(err)
	}
	defer pcap.Close()
	truth, err := os.Create("calls.json")
	if err != nil {
		panic(err)
	}
	defer truth.Close()
	sum, err := gen.Generate(cfg, pcap, truth)
	if err != nil {
		panic(err)
	}
	fmt.Println(sum.Packets, "packets")
}
