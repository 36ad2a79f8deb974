package config

import (
	"errors"
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
	want := HEP{Bind: "127.0.0.1:9060", Password: "s3cret", AllowCaptureIDs: []uint32{1, 2001, 4294967295},
		Server: "homer.example.com:9060", ServerTransport: "tcp", CaptureID: 2002, RTP: true}
	got := c.HEP
	if got.Bind != want.Bind || got.Password != want.Password || !slices.Equal(got.AllowCaptureIDs, want.AllowCaptureIDs) ||
		got.Server != want.Server || got.ServerTransport != want.ServerTransport || got.CaptureID != want.CaptureID || got.RTP != want.RTP {
		t.Errorf("HEP = %+v, want %+v", got, want)
	}
	if !IsSecret("hep_password") {
		t.Error("hep_password is not a secret")
	}
	if v, _ := c.Get("hep_allow_capture_id"); v != "1,2001,4294967295" {
		t.Errorf("Get(hep_allow_capture_id) = %q", v)
	}
	for _, bad := range []string{"hep_bind = example.com:9060", "hep_server = nohost", "hep_server = h:99999",
		"hep_server_transport = sctp", "hep_capture_id = -1", "hep_allow_capture_id = 1,x"} {
		if _, _, err := Parse(strings.NewReader(bad), "t.conf"); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
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
