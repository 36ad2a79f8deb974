package gen

import (
	"errors"
	"flag"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAddFlags(t *testing.T) {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.AddFlags(fs)
	err := fs.Parse([]string{"-calls", "7", "-cps", "2.5", "-talk", "3s", "-codec", "PCMA", "-ptime", "30ms",
		"-payload", "speech", "-loss", "0.1", "-dup", "0.2", "-reorder", "0.3", "-jitter", "15ms",
		"-failed", "0.1", "-cancelled", "0.2", "-registrations", "4", "-register-failed", "0.5",
		"-rtcp", "-proxy", "-large-invite", "-ns", "-seed", "42", "-start", "2025-02-03T04:05:06.7Z"})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Calls: 7, Concurrency: 2, CPS: 2.5, TalkTime: 3 * time.Second, Codec: "PCMA", Ptime: 30 * time.Millisecond,
		Payload: "speech", Loss: 0.1, Duplicates: 0.2, Reorder: 0.3, Jitter: 15 * time.Millisecond, Failed: 0.1, Cancelled: 0.2,
		Registrations: 4, RegisterFailed: 0.5, RTCP: true, Proxy: true, LargeInvite: true, Nanosecond: true, Seed: 42,
		Start: time.Date(2025, 2, 3, 4, 5, 6, 700000000, time.UTC)}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("config after flags (-want +got):\n%s", diff)
	}
	if err := fs.Parse([]string{"-start", "yesterday"}); err == nil {
		t.Error("bad -start accepted")
	}
}

func TestEncapValidate(t *testing.T) {
	for _, kind := range append([]string{""}, Encaps...) {
		c := DefaultConfig()
		c.Encap = kind
		if err := c.Validate(); err != nil {
			t.Errorf("Encap %q: %v", kind, err)
		}
	}
	c := DefaultConfig()
	c.Encap = "carrier-pigeon"
	if err := c.Validate(); !errors.Is(err, ErrConfig) {
		t.Errorf("Encap carrier-pigeon: %v, want ErrConfig", err)
	}
}
