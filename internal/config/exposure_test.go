package config

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckExposure(t *testing.T) {
	tests := []struct {
		name    string
		set     map[string]string
		stored  bool
		allow   bool
		wantErr string // setting named in the error, "" for none
	}{
		{name: "defaults are loopback", set: nil},
		{name: "manager on 0.0.0.0 without key", set: map[string]string{"managerip": "0.0.0.0"}, wantErr: "managerip"},
		{name: "manager with a configured key", set: map[string]string{"managerip": "0.0.0.0",
			"manager_aes_key": "MDEyMzQ1Njc4OWFiY2RlZg==", "manager_aes_iv": "MDEyMzQ1Njc4OWFiY2RlZg=="}},
		{name: "manager with a stored key", set: map[string]string{"managerip": "0.0.0.0"}, stored: true},
		{name: "key but plaintext allowed", set: map[string]string{"managerip": "0.0.0.0", "manager_enable_unencrypted": "yes"}, stored: true, wantErr: "managerip"},
		{name: "manager tcp disabled", set: map[string]string{"managerip": "0.0.0.0", "managerport": "0"}},
		{name: "mi_http without token", set: map[string]string{"mi_http": "0.0.0.0:8888"}, wantErr: "mi_http"},
		{name: "mi_http on loopback", set: map[string]string{"mi_http": "127.0.0.1:8888"}},
		{name: "mi_http with token", set: map[string]string{"mi_http": "[::]:8888", "mi_http_token": "t0k"}},
		{name: "mi datagram udp on a LAN address", set: map[string]string{"mi_datagram": "udp:192.168.1.5:8080"}, wantErr: "mi_datagram"},
		{name: "mi datagram udp on loopback", set: map[string]string{"mi_datagram": "udp:127.0.0.1:8080"}},
		{name: "mi datagram ipv6 loopback", set: map[string]string{"mi_datagram": "udp:::1:8080"}},
		{name: "mi datagram unix", set: map[string]string{"mi_datagram": "/tmp/mi.sock"}},
		{name: "web wildcard without auth", set: map[string]string{"web_bind": "0.0.0.0"}, wantErr: "web_bind"},
		{name: "web with a user but no password", set: map[string]string{"web_bind": "0.0.0.0", "web_user": "admin"}, wantErr: "web_bind"},
		{name: "web with a token", set: map[string]string{"web_bind": "0.0.0.0", "web_token": "x"}},
		{name: "server api with password", set: map[string]string{"server_bind": "0.0.0.0", "server_password": "p"}},
		{name: "explicitly allowed", set: map[string]string{"managerip": "0.0.0.0", "mi_http": "0.0.0.0:8888"}, allow: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			for k, v := range tt.set {
				if err := c.Set(k, v); err != nil {
					t.Fatalf("Set(%s, %s): %v", k, v, err)
				}
			}
			open, err := CheckExposure(c.Exposures(tt.stored), tt.allow)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("CheckExposure = %v, want nil", err)
			case tt.wantErr != "" && (!errors.Is(err, ErrExposed) || !strings.Contains(err.Error(), tt.wantErr+" = ")):
				t.Fatalf("CheckExposure = %v, want an error naming %s", err, tt.wantErr)
			}
			if tt.allow && len(open) != 2 {
				t.Errorf("allowed exposures = %v, want both listed for warnings", open)
			}
		})
	}
}

func TestRedactArgs(t *testing.T) {
	in := []string{"voipsensor", "run", "-set", "server_password=hunter2", "-set=web_token=t0k", "--set=mysqlpassword=pw",
		"mi_http_token=abc", "-set", "managerport=5029", "-set", "Manager_AES_Key=k", "-c", "/etc/x.conf"}
	want := []string{"voipsensor", "run", "-set", "server_password=REDACTED", "-set=web_token=REDACTED", "--set=mysqlpassword=REDACTED",
		"mi_http_token=REDACTED", "-set", "managerport=5029", "-set", "Manager_AES_Key=REDACTED", "-c", "/etc/x.conf"}
	got := RedactArgs(in)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("RedactArgs:\n got %q\nwant %q", got, want)
	}
	if in[3] != "server_password=hunter2" {
		t.Error("RedactArgs modified its input")
	}
	for _, k := range SecretKeys() {
		if !IsSecret(k) {
			t.Errorf("IsSecret(%s) = false", k)
		}
	}
	if len(SecretKeys()) < 7 {
		t.Errorf("SecretKeys = %v, want every password, token, key and IV", SecretKeys())
	}
}
