package hepfeed

import (
	"maps"
	"slices"

	"github.com/voipsensor/voipsensor/internal/command/metrics"
	"github.com/voipsensor/voipsensor/internal/hep"
)

// Families are the collector's, the feeder's and the sender's counters as
// metric families; any of the three may be nil (not configured).
func Families(c *hep.Collector, f *Feeder, snd *hep.Sender) []metrics.Family {
	var fams []metrics.Family
	counter := func(name, help, key string, vals map[string]float64) {
		fam := metrics.Family{Name: name, Help: help, Type: metrics.Counter}
		for _, k := range slices.Sorted(maps.Keys(vals)) {
			fam.Samples = append(fam.Samples, metrics.Sample{Labels: map[string]string{key: k}, Value: vals[k]})
		}
		fams = append(fams, fam)
	}
	one := func(name, help string, typ string, v float64) metrics.Family {
		return metrics.Family{Name: name, Help: help, Type: typ, Samples: []metrics.Sample{{Value: v}}}
	}
	if c != nil {
		st := c.Stats()
		counter("voipsensor_hep_received_total", "HEP packets received by the collector, by outcome.", "outcome", map[string]float64{
			"analysed": float64(st.Delivered), "ignored": float64(st.Ignored), "malformed": float64(st.Malformed),
			"auth_failed": float64(st.AuthFailures), "unknown_agent": float64(st.UnknownAgents),
		})
		fams = append(fams,
			one("voipsensor_hep_received_bytes_total", "Bytes of the HEP packets received.", metrics.Counter, float64(st.Bytes)),
			one("voipsensor_hep_bad_chunks_total", "HEP chunks of a wrong length skipped in packets that were otherwise analysed.", metrics.Counter, float64(st.BadChunks)),
			one("voipsensor_hep_connections", "HEP TCP connections open.", metrics.Gauge, float64(st.Conns)),
		)
	}
	if f != nil {
		ok, bad := f.JSONRTCP()
		counter("voipsensor_hep_rtcp_json_total", "RTCP reports received as JSON (heplify, rtpengine), by outcome: analysed, or malformed (did not parse, not analysed).", "outcome", map[string]float64{
			"analysed": float64(ok), "malformed": float64(bad),
		})
	}
	if snd != nil {
		st := snd.Stats()
		counter("voipsensor_hep_sent_total", "HEP packets of the sender, by outcome: sent, dropped (queue full), failed (lost in a failed write).", "outcome", map[string]float64{
			"sent": float64(st.Sent), "dropped": float64(st.Dropped), "failed": float64(st.Failed),
		})
		up := 0.0
		if st.Connected {
			up = 1
		}
		fams = append(fams,
			one("voipsensor_hep_sent_bytes_total", "Bytes of the HEP packets sent.", metrics.Counter, float64(st.Bytes)),
			one("voipsensor_hep_send_queue", "HEP packets waiting to be sent.", metrics.Gauge, float64(st.Queued)),
			one("voipsensor_hep_connected", "1 while the HEP sender's connection is up.", metrics.Gauge, up),
			one("voipsensor_hep_reconnects_total", "HEP sender connections re-established.", metrics.Counter, float64(st.Reconnects)),
		)
	}
	return fams
}
