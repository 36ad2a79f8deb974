package config

import (
	"errors"
	"net"
	"strconv"
	"strings"
)

// HEP configures the HEP collector (HEP packets from capture agents such as
// Kamailio's siptrace, heplify or another sensor, analysed like captured
// ones) and the HEP sender (every analysed SIP message, and optionally
// RTP and RTCP, mirrored to a Homer-style collector).
type HEP struct {
	// Bind is the collector's host:port, UDP and TCP both (hep_bind);
	// empty disables the collector. Off loopback it needs Password.
	Bind string
	// Password is the authentication key (HEPv3 chunk 0x000e) the
	// collector requires of every packet and the sender puts in each
	// (hep_password); empty: none required, none sent.
	Password Secret
	// AllowCaptureIDs are the capture agent ids the collector accepts
	// (hep_allow_capture_id, comma list or repeated); empty accepts any.
	AllowCaptureIDs []uint32
	// Server is the host:port the sender mirrors to (hep_server); empty
	// disables the sender.
	Server string
	// ServerTransport is "udp" or "tcp" (hep_server_transport).
	ServerTransport string
	// CaptureID is the sender's capture agent id (hep_capture_id).
	CaptureID int
	// RTP makes the sender mirror RTP and RTCP too (hep_rtp).
	RTP bool
}

// hepOptions are the keys of [HEP]. None is live: the collector and the
// sender are built at start.
func hepOptions() []*option {
	h := func(c *Config) *HEP { return &c.HEP }
	return []*option{
		strOpt("hep_bind", false, func(c *Config) *string { return &h(c).Bind }, checkHostPortOrEmpty),
		secretOpt("hep_password", false, func(c *Config) *Secret { return &h(c).Password }),
		{key: "hep_allow_capture_id", list: true,
			set: func(c *Config, v string) error {
				for _, f := range strings.Split(v, ",") {
					id, err := strconv.ParseUint(strings.TrimSpace(f), 10, 32)
					if err != nil {
						return errors.New("want capture ids (0-4294967295), comma-separated")
					}
					h(c).AllowCaptureIDs = append(h(c).AllowCaptureIDs, uint32(id))
				}
				return nil
			},
			reset: func(c *Config) { h(c).AllowCaptureIDs = nil },
			get: func(c *Config) []string {
				ids := make([]string, len(h(c).AllowCaptureIDs))
				for i, id := range h(c).AllowCaptureIDs {
					ids[i] = strconv.FormatUint(uint64(id), 10)
				}
				return oneOrNone(strings.Join(ids, ","))
			},
		},
		strOpt("hep_server", false, func(c *Config) *string { return &h(c).Server }, checkHostPortNameOrEmpty),
		strOpt("hep_server_transport", false, func(c *Config) *string { return &h(c).ServerTransport }, checkOneOf("udp", "tcp")),
		intOpt("hep_capture_id", false, func(c *Config) *int { return &h(c).CaptureID }, 0, 1<<32-1),
		boolOpt("hep_rtp", false, func(c *Config) *bool { return &h(c).RTP }),
	}
}

// checkHostPortNameOrEmpty accepts host:port with a host name or an IP
// address, or nothing.
func checkHostPortNameOrEmpty(v string) error {
	if v == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil || host == "" {
		return errors.New("want host:port")
	}
	_, err = parsePort(port)
	return err
}
