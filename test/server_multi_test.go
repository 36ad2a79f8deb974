package test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/voipsensor/voipsensor/internal/gen"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
	"github.com/voipsensor/voipsensor/internal/transport/manager"
	"github.com/voipsensor/voipsensor/internal/transport/server"
)

// TestServerMultiSensor is the multi-sensor deployment on loopback: one
// server process and three sensor processes (voipsensor run), each sensor
// replaying its own generated capture in real time in a loop, all writing
// CDRs into one MariaDB. It checks the server API's active list, the
// gui_command relay per sensor, the aggregated listcalls_all on the
// server's manager API, a killed and restarted sensor, refusals of a wrong
// password and a duplicate sensor id, malformed input, and that every
// sensor's CDRs land in the shared cdr table under its id_sensor with the
// sensors table listing them.
func TestServerMultiSensor(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	dsn := os.Getenv("VOIPSENSOR_TEST_MYSQL_DSN")
	if dsn == "" {
		sharedtest.Missing(t, "VOIPSENSOR_TEST_MYSQL_DSN not set (scripts/test.sh sets it)")
	}
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("DSN %q: %v", dsn, err)
	}
	host, port, _ := strings.Cut(mc.Addr, ":")
	dbArgs := []string{"-set", "sqldriver=mysql", "-set", "mysqlhost=" + host, "-set", "mysqlport=" + port,
		"-set", "mysqldb=" + mc.DBName, "-set", "mysqlusername=" + mc.User, "-set", "mysqlpassword=" + mc.Passwd,
		"-set", "cdr_batch_interval=200ms"}

	// Sensor ids of this test only: the database is shared with other tests.
	const serverID = 7100
	ids := []int{7101, 7102, 7103}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	idList := "7100,7101,7102,7103,7109"
	db.Exec("DELETE FROM cdr WHERE id_sensor IN (" + idList + ")") // earlier runs; the table may not exist yet
	db.Exec("DELETE FROM sensors WHERE id_sensor IN (" + idList + ")")

	srvPort, mgrPort := freeTCPPort(t), freeTCPPort(t)
	srvAddr := "127.0.0.1:" + strconv.Itoa(srvPort)
	const password = "multi-secret"

	small := gen.DefaultConfig()
	small.Calls, small.Concurrency, small.TalkTime, small.Seed = 1, 1, 2*time.Second, 1
	srvPcap, _ := generateCapture(t, small)
	srvd := startDaemon(t, append([]string{"-r", srvPcap, "--realtime", "--loop",
		"-set", "id_sensor=" + strconv.Itoa(serverID), "-set", "managerport=" + strconv.Itoa(mgrPort),
		"-set", "server_bind=127.0.0.1", "-set", "server_bind_port=" + strconv.Itoa(srvPort),
		"-set", "server_password=" + password}, dbArgs...)...)
	if !srvd.waitLog(`msg="server API listening"`, 10*time.Second) {
		t.Fatalf("server API not listening; log:\n%s", srvd.log)
	}

	// Each sensor replays its own capture: different seeds and address
	// ranges, so Call-IDs and flows differ.
	truth := map[int]map[string]bool{}
	sensorArgs := map[int][]string{}
	for i, id := range ids {
		cfg := gen.DefaultConfig()
		cfg.Calls, cfg.Concurrency, cfg.TalkTime = 8, 4, 5*time.Second
		cfg.Seed, cfg.AddrOffset = int64(100+i), 1000*(i+1)
		pcap, calls := generateCapture(t, cfg)
		truth[id] = map[string]bool{}
		for _, c := range calls {
			truth[id][c.CallID] = true
		}
		sensorArgs[id] = append([]string{"-r", pcap, "--realtime", "--loop",
			"-set", "id_sensor=" + strconv.Itoa(id),
			"-set", "server_destination=127.0.0.1", "-set", "server_destination_port=" + strconv.Itoa(srvPort),
			"-set", "server_password=" + password}, dbArgs...)
	}
	sensors := map[int]*daemon{}
	for _, id := range ids {
		sensors[id] = startDaemon(t, sensorArgs[id]...)
	}

	activeIDs := func() []int {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := server.Active(ctx, srvAddr)
		if err != nil {
			t.Fatalf("active: %v", err)
		}
		var got []int
		for _, s := range r.Services {
			got = append(got, s.SensorID)
			if s.IP != "127.0.0.1" || s.Port == 0 {
				t.Errorf("active entry %+v: want ip 127.0.0.1 and a port", s)
			}
		}
		if r.Count != len(got) {
			t.Errorf("active count %d with %d services", r.Count, len(got))
		}
		slices.Sort(got)
		return got
	}
	waitActive := func(want []int, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			got := activeIDs()
			if slices.Equal(got, want) {
				return time.Since(start)
			}
			if time.Since(start) > within {
				t.Fatalf("active = %v after %v, want %v", got, within, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// The first service handshakes wait for 4096-bit RSA keys.
	waitActive(ids, 30*time.Second)

	// gui_command listcalls returns the calls of that sensor only.
	callsOf := func(id int) []string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b, err := server.GUICommand(ctx, srvAddr, id, "listcalls", nil, "")
		if err != nil {
			t.Fatalf("gui_command %d: %v", id, err)
		}
		return tableCallIDs(t, b, 0)
	}
	for _, id := range ids {
		var got []string
		for deadline := time.Now().Add(15 * time.Second); len(got) == 0 && time.Now().Before(deadline); {
			got = callsOf(id)
			if len(got) == 0 {
				time.Sleep(200 * time.Millisecond)
			}
		}
		if len(got) == 0 {
			t.Fatalf("sensor %d: no calls in progress seen", id)
		}
		for _, c := range got {
			if !truth[id][c] {
				t.Errorf("sensor %d lists call %q that is not in its capture", id, c)
			}
		}
	}

	// The aggregated view on the server's manager API shows calls of all
	// three sensors, each tagged with its sensor.
	mgr := manager.Client{Addr: "127.0.0.1:" + strconv.Itoa(mgrPort), Timeout: 15 * time.Second}
	seen := map[int]bool{}
	for deadline := time.Now().Add(15 * time.Second); len(seen) < 3 && time.Now().Before(deadline); {
		b, err := mgr.Do(context.Background(), "listcalls_all")
		if err != nil {
			t.Fatalf("listcalls_all: %v", err)
		}
		var all server.AllCalls
		if err := json.Unmarshal(b, &all); err != nil {
			t.Fatalf("listcalls_all reply %.200q: %v", b, err)
		}
		if !slices.Equal(all.Answered, ids) || len(all.Missing) != 0 {
			t.Errorf("listcalls_all answered %v missing %v", all.Answered, all.Missing)
		}
		ci := slices.Index(all.Columns, "callid")
		if ci < 0 || all.Columns[0] != "sensor_id" {
			t.Fatalf("listcalls_all columns %v", all.Columns)
		}
		for _, r := range all.Calls {
			var id int
			var callid string
			json.Unmarshal(r[0], &id)
			json.Unmarshal(r[ci], &callid)
			if !truth[id][callid] {
				t.Errorf("listcalls_all row: sensor %d with foreign call %q", id, callid)
			}
			seen[id] = true
		}
		if len(seen) < 3 {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if len(seen) != 3 {
		t.Errorf("listcalls_all showed calls of sensors %v, want all three", seen)
	}

	// A wrong password and a duplicate sensor id are refused; the
	// original sensor keeps answering.
	wrong := startDaemon(t, "-r", srvPcap, "--realtime", "--loop", "-set", "id_sensor=7109",
		"-set", "server_destination=127.0.0.1", "-set", "server_destination_port="+strconv.Itoa(srvPort),
		"-set", "server_password=not-it")
	if !wrong.waitLog("refused: bad password", 30*time.Second) {
		t.Errorf("wrong password not refused; log:\n%s", wrong.log)
	}
	dupArgs := slices.Clone(sensorArgs[7101])
	dupArgs[1] = srvPcap // same id, other capture
	dup := startDaemon(t, dupArgs...)
	if !dup.waitLog("client with sensor_id 7101 is already connected, refusing connection", 30*time.Second) {
		t.Errorf("duplicate id not refused; log:\n%s", dup.log)
	}
	if got := activeIDs(); !slices.Equal(got, ids) {
		t.Errorf("active after refusals = %v, want %v", got, ids)
	}
	for _, c := range callsOf(7101) {
		if !truth[7101][c] {
			t.Errorf("after the duplicate, sensor 7101 lists foreign call %q", c)
		}
	}
	dup.cmd.Process.Kill()
	wrong.cmd.Process.Kill()

	// Malformed JSON and broken blocks get errors and change nothing.
	for _, tt := range []struct{ in, want string }{
		{`{"type_connection":"gui_command",` + "\r\n", server.TextMalformed},
		{"garbage\r\n", server.TextMalformed},
		{`{"type_connection":"gui_command","sensor_id":4242,"command":"listcalls"}`, server.TextMissingService},
	} {
		if got := rawExchange(t, srvAddr, []byte(tt.in), false); got != tt.want {
			t.Errorf("%q → %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := rawExchange(t, srvAddr, []byte(`{"type_connection":"service"}`+"\r\n"), true); got != server.TextBadBlock {
		t.Errorf("broken block in a service handshake → %q, want %q", got, server.TextBadBlock)
	}
	if got := activeIDs(); !slices.Equal(got, ids) {
		t.Errorf("active after malformed input = %v, want %v", got, ids)
	}

	// A killed sensor disappears within seconds and comes back when
	// restarted.
	sensors[7102].cmd.Process.Signal(syscall.SIGKILL)
	<-sensors[7102].done
	gone := waitActive([]int{7101, 7103}, 5*time.Second)
	t.Logf("killed sensor left the active list after %v", gone)
	sensors[7102] = startDaemon(t, sensorArgs[7102]...)
	back := waitActive(ids, 30*time.Second)
	t.Logf("restarted sensor back in the active list after %v", back)

	// CDRs: stop the sensors gracefully so their open calls are flushed,
	// then every sensor's rows are in the shared table under its id.
	for _, id := range ids {
		sensors[id].signal(syscall.SIGTERM)
	}
	for _, id := range ids {
		if code := sensors[id].wait(30 * time.Second); code != 0 {
			t.Errorf("sensor %d exit code %d", id, code)
		}
	}
	rows, err := db.Query("SELECT id_sensor, callid FROM cdr WHERE id_sensor IN (" + idList + ")")
	if err != nil {
		t.Fatalf("query cdr: %v", err)
	}
	perSensor := map[int]int{}
	for rows.Next() {
		var id int
		var callid string
		if err := rows.Scan(&id, &callid); err != nil {
			t.Fatal(err)
		}
		if id != serverID && !truth[id][callid] {
			t.Errorf("cdr row id_sensor %d with call %q from another capture", id, callid)
		}
		perSensor[id]++
	}
	rows.Close()
	for _, id := range ids {
		if perSensor[id] == 0 {
			t.Errorf("no CDRs with id_sensor %d", id)
		}
	}
	t.Logf("CDR rows per id_sensor: %v", perSensor)
	var listed []int
	srows, err := db.Query("SELECT id_sensor FROM sensors WHERE id_sensor IN (" + idList + ") ORDER BY id_sensor")
	if err != nil {
		t.Fatalf("query sensors: %v", err)
	}
	for srows.Next() {
		var id int
		srows.Scan(&id)
		listed = append(listed, id)
	}
	srows.Close()
	if !slices.Equal(listed, ids) {
		t.Errorf("sensors table lists %v, want %v", listed, ids)
	}
}

// tableCallIDs returns the values of column "callid" in a legacy table
// reply ([[header],[totals]?,row…]).
func tableCallIDs(t *testing.T, b []byte, _ int) []string {
	t.Helper()
	var elems []json.RawMessage
	if err := json.Unmarshal(b, &elems); err != nil || len(elems) == 0 {
		t.Fatalf("listcalls reply %.200q: %v", b, err)
	}
	var header []string
	json.Unmarshal(elems[0], &header)
	ci := slices.Index(header, "callid")
	if ci < 0 {
		t.Fatalf("listcalls header %v has no callid", header)
	}
	var out []string
	for _, e := range elems[1:] {
		var cells []any
		json.Unmarshal(e, &cells)
		if len(cells) <= ci {
			continue // totals
		}
		if s, ok := cells[ci].(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// rawExchange sends msg on a fresh connection and returns the reply. With
// brokenBlock, it reads the server's RSA key block first and answers with
// bytes that are not a block.
func rawExchange(t *testing.T, addr string, msg []byte, brokenBlock bool) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	c.Write(msg)
	if !brokenBlock {
		b, _ := io.ReadAll(c)
		return string(b)
	}
	if _, _, err := server.ReadBlock(c, 0); err != nil {
		t.Fatalf("rsa key block: %v", err)
	}
	fmt.Fprint(c, "this is definitely not a vm_cloud_router block header!")
	b, _, err := server.ReadBlock(c, 0)
	if err != nil {
		t.Fatalf("reply to a broken block: %v", err)
	}
	return string(b)
}
