package config

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestHEPOptions(t *testing.T) {
	c, warns, err := Parse(strings.NewReader(`hep_bind = 127.0.0.1:9060
hep_password = s3cret
hep_allow_capture_id = 1, 2001
hep_allow_capture_id = 4294967295
hep_server = homer.example.com:9060
hep_server_transport = tcp
hep_capture_id = 2002
hep_rtp = yes
`), "t.conf")
	if err != nil || len(warns) > 0 {
		t.Fatalf("Parse: %v %v", err, warns)
	}
	want := HEP{Bind: "127.0.0.1", Port: 9060, Password: "s3cret", AllowCaptureIDs: []uint32{1, 2001, 4294967295},
		Destination: "homer.example.com", DestinationPort: 9060, ServerTransport: "tcp", CaptureID: 2002, RTP: true}
	got := c.HEP
	if got.Bind != want.Bind || got.Port != want.Port || got.Password != want.Password || !slices.Equal(got.AllowCaptureIDs, want.AllowCaptureIDs) ||
		got.Destination != want.Destination || got.DestinationPort != want.DestinationPort ||
		got.ServerTransport != want.ServerTransport || got.CaptureID != want.CaptureID || got.RTP != want.RTP {
		t.Errorf("HEP = %+v, want %+v", got, want)
	}
	if a, b := got.CollectorAddr(), got.SenderAddr(); a != "127.0.0.1:9060" || b != "homer.example.com:9060" {
		t.Errorf("CollectorAddr, SenderAddr = %q, %q", a, b)
	}
	if !IsSecret("hep_password") {
		t.Error("hep_password is not a secret")
	}
	if v, _ := c.Get("hep_allow_capture_id"); v != "1,2001,4294967295" {
		t.Errorf("Get(hep_allow_capture_id) = %q", v)
	}
	for _, bad := range []string{"hep_bind = example.com:9060", "hep_bind = example.com", "hep_port = 65536",
		"hep_destination = homer:9060x", "hep_destination_port = 0", "hep_id_sensor = 1", "hep_id_sensor = x:1", "hep_id_sensor = 1:70000", "hep_id_sensor = 1:0", "hep_server = nohost", "hep_server = h:99999",
		"hep_server_transport = sctp", "hep_capture_id = -1", "hep_allow_capture_id = 1,x"} {
		if _, _, err := Parse(strings.NewReader(bad), "t.conf"); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

// TestHEPNames: the option names (hep_bind + hep_port,
// hep_destination + hep_destination_port) and the older host:port forms
// (hep_bind = IP:port, hep_server = host:port) configure the same thing,
// the last line winning.
func TestHEPNames(t *testing.T) {
	for _, tt := range []struct {
		name, conf         string
		collector, sender  string
		getServer, getDest string
		getBind            string
	}{
		{name: "defaults", conf: "", collector: "", sender: ""},
		{name: "bind and port", conf: "hep_bind = 127.0.0.1\nhep_port = 9070\n",
			collector: "127.0.0.1:9070", getBind: "127.0.0.1"},
		{name: "bind alone", conf: "hep_bind = ::1\n", collector: "[::1]:9060", getBind: "::1"},
		{name: "bind brackets", conf: "hep_bind = [::1]\n", collector: "[::1]:9060", getBind: "::1"},
		{name: "older bind form", conf: "hep_bind = 127.0.0.1:9061\n", collector: "127.0.0.1:9061", getBind: "127.0.0.1"},
		{name: "older form then port", conf: "hep_bind = 127.0.0.1:9061\nhep_port = 9062\n", collector: "127.0.0.1:9062", getBind: "127.0.0.1"},
		{name: "port alone is off", conf: "hep_port = 9062\n", collector: ""},
		{name: "destination", conf: "hep_destination = homer.example.com\nhep_destination_port = 9080\n",
			sender: "homer.example.com:9080", getServer: "homer.example.com:9080", getDest: "homer.example.com"},
		{name: "destination default port", conf: "hep_destination = 2001:db8::1\n",
			sender: "[2001:db8::1]:9060", getServer: "[2001:db8::1]:9060", getDest: "2001:db8::1"},
		{name: "server alias", conf: "hep_server = 192.0.2.1:9090\n",
			sender: "192.0.2.1:9090", getServer: "192.0.2.1:9090", getDest: "192.0.2.1"},
		{name: "server then port", conf: "hep_server = 192.0.2.1:9090\nhep_destination_port = 9091\n",
			sender: "192.0.2.1:9091", getServer: "192.0.2.1:9091", getDest: "192.0.2.1"},
		{name: "server emptied", conf: "hep_destination = h\nhep_server =\n", sender: ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, warns, err := Parse(strings.NewReader(tt.conf), "t.conf")
			if err != nil || len(warns) > 0 {
				t.Fatalf("Parse: %v %v", err, warns)
			}
			if got := c.HEP.CollectorAddr(); got != tt.collector {
				t.Errorf("CollectorAddr() = %q, want %q", got, tt.collector)
			}
			if got := c.HEP.SenderAddr(); got != tt.sender {
				t.Errorf("SenderAddr() = %q, want %q", got, tt.sender)
			}
			for k, want := range map[string]string{"hep_server": tt.getServer, "hep_destination": tt.getDest, "hep_bind": tt.getBind} {
				if got, _ := c.Get(k); got != want {
					t.Errorf("Get(%s) = %q, want %q", k, got, want)
				}
			}
			// Marshal writes the canonical keys and the alias; reading it
			// back gives the same addresses.
			c2, _, err := Parse(strings.NewReader(string(c.Marshal())), "m.conf")
			if err != nil {
				t.Fatal(err)
			}
			if c2.HEP.CollectorAddr() != tt.collector || c2.HEP.SenderAddr() != tt.sender {
				t.Errorf("after Marshal: %q %q", c2.HEP.CollectorAddr(), c2.HEP.SenderAddr())
			}
		})
	}
}

func TestHEPIDSensor(t *testing.T) {
	c, warns, err := Parse(strings.NewReader("hep_id_sensor = 2001:7\nhep_id_sensor = 2002:8, 9:1\n"), "t.conf")
	if err != nil || len(warns) > 0 {
		t.Fatalf("Parse: %v %v", err, warns)
	}
	want := map[uint32]int{2001: 7, 2002: 8, 9: 1}
	if !maps.Equal(c.HEP.SensorIDs, want) {
		t.Errorf("SensorIDs = %v, want %v", c.HEP.SensorIDs, want)
	}
	if got, _ := c.Get("hep_id_sensor"); got != "9:1,2001:7,2002:8" {
		t.Errorf("Get(hep_id_sensor) = %q", got)
	}
	// Set replaces the list and leaves the earlier Config untouched.
	c2 := *c
	if err := c2.Set("hep_id_sensor", "1:2"); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(c2.HEP.SensorIDs, map[uint32]int{1: 2}) || !maps.Equal(c.HEP.SensorIDs, want) {
		t.Errorf("after Set: %v, original %v", c2.HEP.SensorIDs, c.HEP.SensorIDs)
	}
}

func TestHEPExposure(t *testing.T) {
	for _, tt := range []struct {
		set     map[string]string
		allow   bool
		wantErr bool
	}{
		{set: map[string]string{"hep_bind": "127.0.0.1:9060"}},
		{set: map[string]string{"hep_bind": "0.0.0.0:9060"}, wantErr: true},
		{set: map[string]string{"hep_bind": "0.0.0.0:9060"}, allow: true},
		{set: map[string]string{"hep_bind": "[::]:9060", "hep_password": "k"}},
		{set: map[string]string{"hep_server": "192.0.2.1:9060"}}, // the sender binds nothing
	} {
		c := Default()
		for k, v := range tt.set {
			if err := c.Set(k, v); err != nil {
				t.Fatal(err)
			}
		}
		_, err := CheckExposure(c.Exposures(false), tt.allow)
		if got := err != nil; got != tt.wantErr {
			t.Errorf("%v allow=%v: CheckExposure = %v, want error %v", tt.set, tt.allow, err, tt.wantErr)
		}
		if err != nil && (!errors.Is(err, ErrExposed) || !strings.Contains(err.Error(), "hep_password")) {
			t.Errorf("error %v does not name hep_password", err)
		}
	}
}
