package test

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// TestAMIPermissionsEnforced is finding 8 of the security issue: the
// Command action ran any registry command with every class granted, and a
// registry command called as an action of its own ran with exactly the
// classes it needed, so a user with only the command class could stop the
// sensor, reload it or open an unauthenticated manager socket. The user's
// classes now reach the registry, whose check is the only one.
func TestAMIPermissionsEnforced(t *testing.T) {
	dir := t.TempDir()
	port := freeTCPPort(t)
	conf := fmt.Sprintf(`[general]
enabled = yes
port = %d
bindaddr = 127.0.0.1
displayconnects = no

[cmdonly]
secret = c0mmand
read = all
write = command

[operator]
secret = 0perator
read = all
write = system,command
`, port)
	amiPath := filepath.Join(dir, "manager.conf")
	if err := os.WriteFile(amiPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "m.sock")
	d := startDaemon(t, "-set", "amiconfig="+amiPath, "-set", "managersocket="+sock,
		"-r", sharedtest.Pcap(t, "sipp_kamailio.pcap"), "--realtime", "--loop")
	if !d.waitLog("AMI listening", 10*time.Second) {
		t.Fatalf("AMI not up:\n%s", d.log)
	}
	ami := func(user, secret string, actions ...string) string {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		io.WriteString(c, "Action: Login\r\nUsername: "+user+"\r\nSecret: "+secret+"\r\nEvents: off\r\n\r\n")
		for _, a := range actions {
			io.WriteString(c, a+"\r\n\r\n")
		}
		io.WriteString(c, "Action: Logoff\r\n\r\n")
		c.(*net.TCPConn).CloseWrite()
		b, _ := io.ReadAll(c)
		return string(b)
	}
	fileSock := filepath.Join(dir, "door.sock")
	for _, a := range []string{
		"Action: Command\r\nActionID: t\r\nCommand: terminating",
		"Action: Command\r\nActionID: r\r\nCommand: reload",
		"Action: Command\r\nActionID: m\r\nCommand: manager_file start " + fileSock,
		"Action: Terminating\r\nActionID: t2",
		"Action: Manager_file\r\nActionID: m2\r\nCommand: start",
	} {
		out := ami("cmdonly", "c0mmand", a)
		if !strings.Contains(out, "Authentication accepted") {
			t.Fatalf("login: %s", out)
		}
		if !strings.Contains(out, "Permission denied") {
			t.Errorf("%q as a user with only the command class:\n%s", a, out)
		}
	}
	if _, err := os.Stat(fileSock); err == nil {
		t.Error("manager_file created a socket for a user without the system class")
	}
	select {
	case <-d.done:
		t.Fatalf("the daemon stopped:\n%s", d.log)
	default:
	}
	if got := halfCloseConn(t, "unix", sock, "getversion\n"); got == "" {
		t.Error("the daemon no longer answers")
	}
	// A user with the system class may (reload fails for want of a
	// configuration file, but it is run).
	out := ami("operator", "0perator", "Action: Command\r\nActionID: r\r\nCommand: reload")
	if strings.Contains(out, "Permission denied") || !strings.Contains(out, "no configuration file") {
		t.Errorf("reload as a system user:\n%s", out)
	}
	// ListCommands shows only what the user may run.
	out = ami("cmdonly", "c0mmand", "Action: ListCommands")
	if strings.Contains(out, "Terminating:") || !strings.Contains(out, "Command:") {
		t.Errorf("ListCommands for the command-only user:\n%s", out)
	}
}
