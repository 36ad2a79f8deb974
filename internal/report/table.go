package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/voipsensor/voipsensor/internal/calltable"
)

// WriteCallTable prints calls as an aligned, human-readable table: who
// called whom, when, for how long, how it ended, the codec, per direction
// loss, mean jitter and MOS (f2, VoIPmonitor's default; "–" when no MOS
// interval was scored, as for calls under about 10 s, where the sniffer
// stores none either), then the SIP addresses and the Call-ID, to find the
// call in Wireshark.
func WriteCallTable(w io.Writer, calls []*calltable.CallInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "START (UTC)\tCALLER\tCALLED\tDUR\tCODE\tSTATE\tCODEC\tA→B LOSS\tJIT\tMOS\tB→A LOSS\tJIT\tMOS\tSIP\tCALL-ID")
	for _, c := range calls {
		codec := "-"
		a, b := c.Best(calltable.SideCaller), c.Best(calltable.SideCallee)
		if a != nil && a.Stats.Codec != "" {
			codec = a.Stats.Codec
		} else if b != nil && b.Stats.Codec != "" {
			codec = b.Stats.Codec
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s → %s\t%s\n",
			c.InviteTime.UTC().Format("2006-01-02 15:04:05"),
			clip(c.Caller, 20), clip(c.Called, 20),
			fmtDur(c.Duration().Seconds()), c.LastCode, c.State, codec,
			quality(a), quality(b), c.SIPCaller, c.SIPCalled, clip(c.CallID, 48))
	}
	return tw.Flush()
}

func quality(s *calltable.StreamInfo) string {
	if s == nil {
		return "-\t-\t-"
	}
	st := &s.Stats
	pct := 0.0
	if den := st.Received + st.Lost; den > 0 {
		pct = 100 * float64(st.Lost) / float64(den)
	}
	mos := "–"
	if st.VM.MOSF2Mult10 >= 0 {
		mos = fmt.Sprintf("%.1f", float64(st.VM.MOSF2Mult10)/10)
	}
	return fmt.Sprintf("%d (%.1f%%)\t%.2fms\t%s", st.Lost, pct, st.JitterMeanMS, mos)
}

// WriteRegistrationTable prints registration state changes.
func WriteRegistrationTable(w io.Writer, regs []*calltable.RegistrationInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME (UTC)\tUSER\tCONTACT\tSTATE\tEXPIRES\tATTEMPTS\tRRD\tUSER AGENT")
	for _, r := range regs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%.1fms\t%s\n",
			r.StateTime.UTC().Format("2006-01-02 15:04:05"),
			clip(r.User+"@"+r.Domain, 32), clip(r.Contact, 40), r.State, r.Expires, r.Attempts,
			float64(r.RRD.Microseconds())/1000, clip(r.UA, 24))
	}
	return tw.Flush()
}

func fmtDur(s float64) string {
	if s < 60 {
		return fmt.Sprintf("%.1fs", s)
	}
	m := int(s) / 60
	return fmt.Sprintf("%dm%02ds", m, int(s)%60)
}

func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, s)
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
