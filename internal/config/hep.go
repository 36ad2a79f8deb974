package config

import (
	"errors"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// HEP configures the HEP collector (HEP packets from capture agents such as
// Kamailio's siptrace, heplify or another sensor, analysed like captured
// ones) and the HEP sender (every analysed SIP message, and optionally
// RTP and RTCP, mirrored to a Homer-style collector).
type HEP struct {
	// Bind is the collector's address, UDP and TCP both (hep_bind); empty
	// disables the collector. Off loopback it needs Password. The older
	// form hep_bind = IP:port sets Port too.
	Bind string
	// Port is the collector's port (hep_port, default 9060; 0 picks a free
	// one).
	Port int
	// Password is the authentication key (HEPv3 chunk 0x000e) the
	// collector requires of every packet and the sender puts in each
	// (hep_password); empty: none required, none sent.
	Password Secret
	// AllowCaptureIDs are the capture agent ids the collector accepts
	// (hep_allow_capture_id, comma list or repeated); empty accepts any.
	AllowCaptureIDs []uint32
	// SensorIDs maps a capture agent id to the id_sensor its calls are
	// recorded with (hep_id_sensor = CAPTUREID:IDSENSOR, repeated); agents
	// not listed get the sensor's own id_sensor. Ids are 1–65535.
	SensorIDs map[uint32]int
	// Destination is the host the sender mirrors to (hep_destination, the
	// canonical key; hep_server = host:port is its older alias and sets
	// DestinationPort too); empty disables the sender.
	Destination string
	// DestinationPort is the sender's port (hep_destination_port, default
	// 9060).
	DestinationPort int
	// ServerTransport is "udp" or "tcp" (hep_server_transport).
	ServerTransport string
	// CaptureID is the sender's capture agent id (hep_capture_id).
	CaptureID int
	// RTP makes the sender mirror RTP and RTCP too (hep_rtp).
	RTP bool
}

// DefaultHEPPort is the HEP port of Homer and of capture agents.
const DefaultHEPPort = 9060

// CollectorAddr returns the collector's host:port, or "" when it is off.
func (h *HEP) CollectorAddr() string {
	if h.Bind == "" {
		return ""
	}
	return net.JoinHostPort(h.Bind, strconv.Itoa(h.Port))
}

// SenderAddr returns the host:port the sender mirrors to, or "" when it is
// off.
func (h *HEP) SenderAddr() string {
	if h.Destination == "" {
		return ""
	}
	return net.JoinHostPort(h.Destination, strconv.Itoa(h.DestinationPort))
}

// hepOptions are the keys of [HEP]. None is live: the collector and the
// sender are built at start.
func hepOptions() []*option {
	h := func(c *Config) *HEP { return &c.HEP }
	return []*option{
		{key: "hep_bind",
			set: func(c *Config, v string) error {
				if v == "" {
					h(c).Bind = ""
					return nil
				}
				if ap, err := netip.ParseAddrPort(v); err == nil { // the older IP:port form
					h(c).Bind, h(c).Port = ap.Addr().String(), int(ap.Port())
					return nil
				}
				a, err := netip.ParseAddr(strings.Trim(v, "[]"))
				if err != nil {
					return errors.New("want an IP address (or IP:port)")
				}
				h(c).Bind = a.String()
				return nil
			},
			get: func(c *Config) []string { return []string{h(c).Bind} },
		},
		intOpt("hep_port", false, func(c *Config) *int { return &h(c).Port }, 0, 65535),
		secretOpt("hep_password", false, func(c *Config) *Secret { return &h(c).Password }),
		{key: "hep_allow_capture_id", list: true,
			set: func(c *Config, v string) error {
				for _, f := range strings.Split(v, ",") {
					id, err := parseCaptureID(f)
					if err != nil {
						return err
					}
					h(c).AllowCaptureIDs = append(h(c).AllowCaptureIDs, id)
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
		{key: "hep_id_sensor", list: true,
			set: func(c *Config, v string) error {
				m := maps.Clone(h(c).SensorIDs) // Set works on a shallow copy
				if m == nil {
					m = make(map[uint32]int)
				}
				for _, f := range strings.Split(v, ",") {
					cid, sid, ok := strings.Cut(f, ":")
					if !ok {
						return errors.New("want CAPTUREID:IDSENSOR")
					}
					id, err := parseCaptureID(cid)
					if err != nil {
						return err
					}
					n, err := strconv.Atoi(strings.TrimSpace(sid))
					if err != nil || n < 1 || n > 65535 {
						return errors.New("want an id_sensor of 1-65535 after the colon")
					}
					m[id] = n
				}
				h(c).SensorIDs = m
				return nil
			},
			reset: func(c *Config) { h(c).SensorIDs = nil },
			get: func(c *Config) []string {
				var out []string
				for _, id := range slices.Sorted(maps.Keys(h(c).SensorIDs)) {
					out = append(out, strconv.FormatUint(uint64(id), 10)+":"+strconv.Itoa(h(c).SensorIDs[id]))
				}
				return oneOrNone(strings.Join(out, ","))
			},
		},
		{key: "hep_destination",
			set: func(c *Config, v string) error {
				if err := checkHostOrEmpty(v); err != nil {
					return err
				}
				h(c).Destination = strings.Trim(v, "[]")
				return nil
			},
			get: func(c *Config) []string { return []string{h(c).Destination} },
		},
		intOpt("hep_destination_port", false, func(c *Config) *int { return &h(c).DestinationPort }, 1, 65535),
		{key: "hep_server", // alias of hep_destination + hep_destination_port
			set: func(c *Config, v string) error {
				if err := checkHostPortNameOrEmpty(v); err != nil {
					return err
				}
				if v == "" {
					h(c).Destination = ""
					return nil
				}
				host, port, _ := net.SplitHostPort(v)
				p, _ := parsePort(port)
				h(c).Destination, h(c).DestinationPort = host, int(p)
				return nil
			},
			get: func(c *Config) []string { return []string{h(c).SenderAddr()} },
		},
		strOpt("hep_server_transport", false, func(c *Config) *string { return &h(c).ServerTransport }, checkOneOf("udp", "tcp")),
		intOpt("hep_capture_id", false, func(c *Config) *int { return &h(c).CaptureID }, 0, 1<<32-1),
		boolOpt("hep_rtp", false, func(c *Config) *bool { return &h(c).RTP }),
	}
}

// parseCaptureID parses a HEP capture agent id.
func parseCaptureID(v string) (uint32, error) {
	id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
	if err != nil {
		return 0, errors.New("want capture ids (0-4294967295), comma-separated")
	}
	return uint32(id), nil
}

// checkHostOrEmpty accepts a host name or an IP address (IPv6 with or
// without brackets), or nothing.
func checkHostOrEmpty(v string) error {
	if v == "" {
		return nil
	}
	if _, err := netip.ParseAddr(strings.Trim(v, "[]")); err == nil {
		return nil
	}
	for _, r := range v {
		if !(r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return errors.New("want a host name or IP address (the port is hep_destination_port)")
		}
	}
	return nil
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
