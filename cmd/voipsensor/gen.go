package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/voipsensor/voipsensor/internal/gen"
)

func runGen(args []string) int {
	cfg := gen.DefaultConfig()
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	out := fs.String("o", "", "output pcap file (required; - for stdout)")
	truth := fs.String("truth", "", "ground-truth JSON file (default: OUT with .json, none for stdout)")
	cfg.AddFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: voipsensor gen [flags] -o OUT.pcap")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if *out == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "voipsensor gen:", err)
		return 2
	}

	var pw io.Writer = os.Stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "voipsensor gen:", err)
			return 1
		}
		defer f.Close()
		pw = f
		if *truth == "" {
			*truth = trimExt(*out) + ".json"
		}
	}
	bw := bufio.NewWriterSize(pw, 1<<20)
	tw := io.Discard
	var tf *os.File
	if *truth != "" {
		var err error
		if tf, err = os.Create(*truth); err != nil {
			fmt.Fprintln(os.Stderr, "voipsensor gen:", err)
			return 1
		}
		defer tf.Close()
		tw = tf
	}
	sum, err := gen.Generate(cfg, bw, tw)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "voipsensor gen:", err)
		return 1
	}
	if *out != "-" {
		fmt.Printf("wrote %s: %d packets, %d calls; ground truth %s\n", *out, sum.Packets, sum.Calls, *truth)
	}
	return 0
}

func trimExt(name string) string {
	for i := len(name) - 1; i >= 0 && name[i] != '/'; i-- {
		if name[i] == '.' {
			return name[:i]
		}
	}
	return name
}
