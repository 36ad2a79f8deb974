// Command voipsensor is a passive VoIP monitoring sensor: it follows SIP
// calls and registrations, measures RTP/RTCP voice quality and stores CDRs.
//
// Subcommands are in their own files (read.go, gen.go, run.go, demo.go,
// ctl.go, key.go, export.go). Unlike the house layout's "main imports only
// config and sensor", some subcommands import the library they front: read the report
// package, gen the generator, demo the embedded capture, ctl and key the
// manager client and the SQL store. They are thin CLIs over those
// libraries; the daemon itself is built only by sensor.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/voipsensor/voipsensor/internal/sensor"
)

type subcommand struct {
	name, usage string
	run         func(args []string) int
}

func subcommands() []subcommand {
	return []subcommand{
		{"run", "run [-c FILE] [-i IFACE | -r FILE [--realtime] [--speed F] [--loop]]  the sensor daemon", runRun},
		{"demo", "demo [-duration D] [-speed F]  replay bundled calls live and serve the APIs (no root, no setup)", runDemo},
		{"read", "read [--json] FILE...        analyse capture files offline", runRead},
		{"gen", "gen [flags] -o OUT.pcap       write a pcap of generated calls and its ground truth", runGen},
		{"export", "export [--spooldir DIR | -r CAPTURE] -o OUT.pcap CALLID|CALLREF  one call's SIP+RTP as a pcap", runExport},
		{"ctl", "ctl [-H HOST] [-p PORT | -s SOCKET] [-a] [-c FILE] [--table [--columns a,b|--all]] 'COMMAND'  send one manager API command", runCtl},
		{"key", "key generate|store|delete [-c FILE]  manage the manager API's AES key in the database", runKey},
		{"version", "version                      print the version", func([]string) int { fmt.Println("voipsensor", sensor.Version); return 0 }},
	}
}

// flagExit is a subcommand's exit code after its flags failed to parse:
// 0 when -h or --help asked for the usage (already printed), 2 otherwise.
func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: voipsensor COMMAND [flags]\n\ncommands:")
	for _, c := range subcommands() {
		fmt.Fprintln(os.Stderr, "  "+c.usage)
	}
	fmt.Fprintln(os.Stderr, "\nRun 'voipsensor COMMAND --help' for a command's flags.")
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	name := os.Args[1]
	for _, c := range subcommands() {
		if c.name == name {
			os.Exit(c.run(os.Args[2:]))
		}
	}
	if name == "-h" || name == "--help" || name == "help" {
		usage()
		os.Exit(0)
	}
	fmt.Fprintf(os.Stderr, "voipsensor: unknown command %q\n", name)
	usage()
	os.Exit(2)
}
