package ami

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
	"github.com/voipsensor/voipsensor/internal/transport/conn"
)

// builtin is one AMI action implemented here. An action that renders
// sensor data names the registry command it runs (command): the registry
// alone decides, with the user's write classes, whether it may. The
// others are AMI's own (the session, its events, the Command line): with
// authority 0 they need no class, otherwise the user's write classes must
// share one with it, as in Asterisk.
type builtin struct {
	name      string
	authority command.Perm
	command   string
	synopsis  string
	run       func(x *Session, m *Message, id string, hasID bool) bool
}

// inProgressCommand is the registry command (command/calls) listing the
// calls in progress that CoreShowChannels, Status and CoreStatus render;
// they read its columns by name.
const inProgressCommand = "calls_in_progress"

var builtins []builtin

func init() {
	sysRep := command.PermSystem | command.PermReporting
	builtins = []builtin{
		{"Login", 0, "", "Login Manager", (*Session).actLogin},
		{"Challenge", 0, "", "Generate Challenge for MD5 Auth", (*Session).actChallenge},
		{"Logoff", 0, "", "Logoff Manager", (*Session).actLogoff},
		{"Ping", 0, "", "Keepalive command", (*Session).actPing},
		{"Events", 0, "", "Control Event Flow", (*Session).actEvents},
		{"ListCommands", 0, "", "List available manager commands", (*Session).actListCommands},
		{"WaitEvent", 0, "", "Wait for an event to occur", (*Session).actWaitEvent},
		{"Filter", command.PermSystem, "", "Dynamically add filters for the current manager session", (*Session).actFilter},
		{"CoreSettings", sysRep, "", "Show PBX core settings (version etc)", (*Session).actCoreSettings},
		{"CoreStatus", 0, inProgressCommand, "Show PBX core status variables", (*Session).actCoreStatus},
		{"CoreShowChannels", 0, inProgressCommand, "List currently active channels", (*Session).actCoreShowChannels},
		{"Status", 0, inProgressCommand, "List channel status", (*Session).actStatus},
		{"Command", command.PermCommand, "", "Execute a sensor command line", (*Session).actCommand},
		{"UserEvent", command.PermUser, "", "Send an arbitrary event", (*Session).actUserEvent},
	}
}

func findBuiltin(name string) *builtin {
	for i := range builtins {
		if strings.EqualFold(builtins[i].name, name) {
			return &builtins[i]
		}
	}
	return nil
}

// reply queues one message.
func (x *Session) reply(w *builder) { x.send(w.b) }

func (x *Session) respond(resp, id string, hasID bool, msg string) {
	w := &builder{}
	w.add("Response", resp)
	w.addID(id, hasID)
	if msg != "" {
		w.add("Message", msg)
	}
	w.end()
	x.reply(w)
}

// handle runs one message; it returns false when the session must stop
// reading.
func (x *Session) handle(m *Message, ferr error) bool {
	id, hasID := m.Get("ActionID")
	x.curID, x.curHasID = id, hasID
	switch {
	case errors.Is(ferr, ErrLineTooLong):
		x.respond("Error", id, hasID, "Failed to parse message: line too long")
		return true
	case errors.Is(ferr, ErrTooManyHeaders):
		x.respond("Error", id, hasID, "Too many lines in message or allocation failure")
		return true
	}
	action := m.Action()
	if action == "" {
		x.respond("Error", id, hasID, "Missing action in request")
		return true
	}
	authed := x.authOK.Load()
	b := findBuiltin(action)
	if !authed && (b == nil || b.authority != 0 || !(b.name == "Login" || b.name == "Challenge" || b.name == "Logoff")) {
		x.respond("Error", id, hasID, "Permission denied")
		return true
	}
	if b != nil {
		if b.command == "" && b.authority != 0 && x.write&b.authority == 0 {
			x.respond("Error", id, hasID, "Permission denied")
			return true
		}
		return b.run(x, m, id, hasID)
	}
	if c, ok := x.lookupCommand(action); ok {
		x.runCommand(c, m, id, hasID)
		return true
	}
	x.respond("Error", id, hasID, "Invalid/unknown command: "+Escape(action)+". Use Action: ListCommands to show available commands.")
	return true
}

func (x *Session) actLogin(m *Message, id string, hasID bool) bool {
	if x.authOK.Load() {
		x.respond("Success", id, hasID, "Already authenticated")
		return true
	}
	u := x.srv.cfg.User(m.Value("Username"))
	ok := u != nil && u.Secret != "" && u.Allowed(x.c.Remote().Addr())
	if ok {
		if strings.EqualFold(m.Value("AuthType"), "md5") {
			sum := md5.Sum([]byte(x.challenge + string(u.Secret)))
			want := hex.EncodeToString(sum[:])
			ok = x.challenge != "" && subtle.ConstantTimeCompare([]byte(m.Value("Key")), []byte(want)) == 1
		} else {
			ok = subtle.ConstantTimeCompare([]byte(m.Value("Secret")), []byte(u.Secret)) == 1
		}
	}
	if !ok {
		x.srv.loginsFailed.Add(1)
		x.srv.log.Warn("AMI authentication failed", "remote", x.c.RemoteString(), "user", Escape(m.Value("Username")))
		time.Sleep(x.srv.opts.FailDelay)
		x.respond("Error", id, hasID, "Authentication failed")
		x.finish(conn.ClosedAuthFailed)
		return false
	}
	x.user, x.write = u, u.Write
	mask := u.Read
	if ev, ok := m.Get("Events"); ok && ev != "" {
		mask &= eventMask(ev)
	}
	x.fmu.Lock()
	x.filters = append([]*Filter(nil), u.Filters...)
	x.fmu.Unlock()
	if u.WriteTimeout > 0 {
		x.out.SetWriteTimeout(u.WriteTimeout)
	}
	x.authOK.Store(true)
	x.c.Authenticated() // authtimeout and the unauthenticated caps no longer apply
	x.srv.loginsOK.Add(1)
	x.respond("Success", id, hasID, "Authentication accepted")
	// Events flow from here on, before FullyBooted is queued: a client
	// that reads FullyBooted misses nothing published after it.
	x.mask.Store(uint32(mask))
	if mask&command.PermSystem != 0 {
		w := &builder{}
		w.add("Event", "FullyBooted")
		w.add("Privilege", "system,all")
		w.addInt("Uptime", int64(time.Since(x.srv.boot)/time.Second))
		w.addInt("LastReload", int64(time.Since(x.srv.boot)/time.Second))
		w.add("Status", "Fully Booted")
		w.end()
		x.reply(w)
	}
	if x.srv.cfg.DisplayConnects {
		x.srv.log.Info("AMI user logged in", "remote", x.c.RemoteString(), "user", u.Name)
	}
	return true
}

// eventMask parses an Events/EventMask value: on/yes/true, off/no/false, a
// decimal bitmask or a class list; anything unknown gives no events.
func eventMask(v string) command.Perm {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "on", "yes", "true":
		return command.PermAll
	case "off", "no", "false":
		return 0
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return command.Perm(n) & command.PermAll
	}
	p, err := command.ParsePerm(v)
	if err != nil {
		return 0
	}
	return p
}

func (x *Session) actChallenge(m *Message, id string, hasID bool) bool {
	if !strings.EqualFold(m.Value("AuthType"), "md5") {
		x.respond("Error", id, hasID, "Must specify AuthType")
		return true
	}
	if x.challenge == "" {
		var b [8]byte
		rand.Read(b[:])
		c := strconv.FormatUint(binary.LittleEndian.Uint64(b[:])>>1, 10)
		x.challenge = c[:min(9, len(c))]
	}
	w := &builder{}
	w.add("Response", "Success")
	w.addID(id, hasID)
	w.add("Challenge", x.challenge)
	w.end()
	x.reply(w)
	return true
}

func (x *Session) actLogoff(m *Message, id string, hasID bool) bool {
	x.respond("Goodbye", id, hasID, "Thanks for all the fish.")
	x.loggedOff = true
	x.finish(conn.ClosedDone)
	return false
}

func (x *Session) actPing(m *Message, id string, hasID bool) bool {
	w := &builder{}
	w.add("Response", "Success")
	w.addID(id, hasID)
	w.add("Ping", "Pong")
	w.add("Timestamp", unixMicro(time.Now()))
	w.end()
	x.reply(w)
	return true
}

func (x *Session) actEvents(m *Message, id string, hasID bool) bool {
	v, ok := m.Get("EventMask")
	if !ok {
		x.respond("Error", id, hasID, "Invalid event mask")
		return true
	}
	mask := x.user.Read & eventMask(v)
	x.mask.Store(uint32(mask))
	w := &builder{}
	w.add("Response", "Success")
	w.addID(id, hasID)
	if mask != 0 {
		w.add("Events", "On")
	} else {
		w.add("Events", "Off")
	}
	w.end()
	x.reply(w)
	return true
}

func (x *Session) actFilter(m *Message, id string, hasID bool) bool {
	if op := m.Value("Operation"); op != "" && !strings.EqualFold(op, "Add") {
		x.respond("Error", id, hasID, "Unknown operation")
		return true
	}
	f, err := ParseFilter(m.Value("MatchCriteria"), m.Value("Filter"))
	if err != nil {
		msg := "Filter did not compile.  Check the syntax of the filter given."
		if m.Value("MatchCriteria") != "" && !strings.Contains(err.Error(), "error parsing regexp") {
			msg = "Filter was formatted incorrectly.  Check the syntax of the filter given."
		}
		x.respond("Error", id, hasID, msg)
		return true
	}
	x.fmu.Lock()
	x.filters = append(x.filters, f)
	x.fmu.Unlock()
	x.respond("Success", id, hasID, "Success")
	return true
}

func (x *Session) actListCommands(m *Message, id string, hasID bool) bool {
	w := &builder{}
	w.add("Response", "Success")
	w.addID(id, hasID)
	for _, b := range builtins {
		if b.command != "" {
			if c, ok := x.srv.reg.Lookup(b.command); ok && x.write.Has(c.Perm) {
				w.add(b.name, b.synopsis+" (Priv: "+c.Perm.String()+")")
			}
			continue
		}
		if b.authority == 0 || x.write&b.authority != 0 {
			w.add(b.name, b.synopsis+" (Priv: "+privString(b.authority)+")")
		}
	}
	for _, c := range x.srv.reg.All() {
		if x.write.Has(c.Perm) {
			w.add(ActionName(c.Name), Escape(c.Doc)+" (Priv: "+c.Perm.String()+")")
		}
	}
	w.end()
	x.reply(w)
	return true
}

func privString(p command.Perm) string {
	if p == 0 {
		return "<none>"
	}
	return p.String()
}

func (x *Session) actWaitEvent(m *Message, id string, hasID bool) bool {
	timeout := 30 * time.Second
	if v := m.Value("Timeout"); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			if n < 0 {
				timeout = 24 * time.Hour
			} else {
				timeout = time.Duration(n) * time.Second
			}
		}
	}
	select { // forget events queued before the request
	case <-x.evWake:
	default:
	}
	x.respond("Success", id, hasID, "Waiting for Event completed.")
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-x.evWake:
	case <-t.C:
	case <-x.c.Done():
		return false
	case <-x.ctx.Done(): // shutting down: the reader's drain answers the rest
		return true
	}
	w := &builder{}
	w.add("Event", "WaitEventComplete")
	w.addID(id, hasID)
	w.end()
	x.reply(w)
	return true
}

func (x *Session) actCoreSettings(m *Message, id string, hasID bool) bool {
	o := &x.srv.opts
	w := &builder{}
	w.add("Response", "Success")
	w.addID(id, hasID)
	w.add("AMIversion", o.Version)
	w.add("AsteriskVersion", "voipsensor "+o.SensorVersion)
	w.add("SystemName", o.SystemName)
	w.add("CoreMaxCalls", "0")
	w.add("CoreMaxLoadAvg", "0.000000")
	name, group := "", ""
	if u, err := user.Current(); err == nil {
		name = u.Username
		if g, err := user.LookupGroupId(u.Gid); err == nil {
			group = g.Name
		}
	}
	w.add("CoreRunUser", name)
	w.add("CoreRunGroup", group)
	w.add("CoreMaxFilehandles", "0")
	w.add("CoreRealTimeEnabled", "No")
	w.add("CoreCDRenabled", "Yes")
	w.add("CoreHTTPenabled", "No")
	w.add("SoundsSearchCustomDir", "No")
	w.end()
	x.reply(w)
	return true
}

// callsInProgress runs the calls_in_progress command with the user's
// write classes and reads its rows.
func (x *Session) callsInProgress() ([]callRow, error) {
	req := &command.Request{Name: inProgressCommand, Transport: "ami", Perm: x.write}
	res, err := x.srv.reg.Run(x.srv.ctx, req)
	if err != nil {
		return nil, err
	}
	defer command.Release(res)
	t, ok := res.(*command.Table)
	if !ok {
		return nil, fmt.Errorf("%w: %s answered %T, want a table", command.ErrInternal, inProgressCommand, res)
	}
	return callRows(t, time.Now())
}

// failed answers an action whose registry command failed.
func (x *Session) failed(id string, hasID bool, err error) {
	msg := err.Error()
	if errors.Is(err, command.ErrPermission) {
		msg = "Permission denied"
	}
	x.respond("Error", id, hasID, Escape(msg))
}

func (x *Session) actCoreStatus(m *Message, id string, hasID bool) bool {
	cs, err := x.callsInProgress()
	if err != nil {
		x.failed(id, hasID, err)
		return true
	}
	boot := x.srv.boot
	w := &builder{}
	w.add("Response", "Success")
	w.addID(id, hasID)
	w.add("CoreStartupDate", boot.Format("2006-01-02"))
	w.add("CoreStartupTime", boot.Format("15:04:05"))
	w.add("CoreReloadDate", boot.Format("2006-01-02"))
	w.add("CoreReloadTime", boot.Format("15:04:05"))
	w.addInt("CoreCurrentCalls", int64(len(cs)))
	w.end()
	x.reply(w)
	return true
}

// actCoreShowChannels answers one list: the response, one CoreShowChannel
// per call in progress, and the Complete event, queued as one message so
// that no event can come in between.
func (x *Session) actCoreShowChannels(m *Message, id string, hasID bool) bool {
	cs, err := x.callsInProgress()
	if err != nil {
		x.failed(id, hasID, err)
		return true
	}
	w := &builder{}
	w.add("Response", "Success")
	w.addID(id, hasID)
	w.add("EventList", "start")
	w.add("Message", "Channels will follow")
	w.end()
	for i := range cs {
		coreShowChannel(w, &cs[i], id, hasID)
	}
	w.add("Event", "CoreShowChannelsComplete")
	w.addID(id, hasID)
	w.add("EventList", "Complete")
	w.addInt("ListItems", int64(len(cs)))
	w.end()
	x.reply(w)
	return true
}

func (x *Session) actStatus(m *Message, id string, hasID bool) bool {
	cs, err := x.callsInProgress()
	if err != nil {
		x.failed(id, hasID, err)
		return true
	}
	want := m.Value("Channel")
	w := &builder{}
	n := 0
	var items builder
	for i := range cs {
		c := &cs[i]
		caller, callee := channels(c.party)
		caller.state = stateOf(c.state)
		callee.state = caller.state
		for _, pair := range [2][2]channel{{caller, callee}, {callee, caller}} {
			if want != "" && !strings.EqualFold(want, pair[0].name) {
				continue
			}
			n++
			items.add("Event", "Status")
			items.add("Privilege", "Call")
			items.snapshot("", pair[0], pair[1])
			items.add("Type", "SIP")
			items.addInt("Seconds", int64(c.duration/time.Second))
			items.addID(id, hasID)
			items.end()
		}
	}
	if want != "" && n == 0 {
		x.respond("Error", id, hasID, "No such channel")
		return true
	}
	w.add("Response", "Success")
	w.addID(id, hasID)
	w.add("EventList", "start")
	w.add("Message", "Channel status will follow")
	w.end()
	w.b = append(w.b, items.b...)
	w.add("Event", "StatusComplete")
	w.addID(id, hasID)
	w.add("EventList", "Complete")
	w.addInt("ListItems", int64(n))
	w.addInt("Items", int64(n))
	w.end()
	x.reply(w)
	return true
}

// actCommand runs a registry command line (command.ParseLine) with the
// user's write classes: the command class lets a user send command lines,
// and the registry decides whether this user may run this command (a
// user with only the command class cannot run terminating or reload,
// which need system).
func (x *Session) actCommand(m *Message, id string, hasID bool) bool {
	line := strings.TrimSpace(m.Value("Command"))
	if line == "" {
		x.respond("Error", id, hasID, "No command provided")
		return true
	}
	name, args := command.ParseLine(line)
	req := &command.Request{Name: name, Args: args, Transport: "ami", Perm: x.write}
	res, err := x.srv.reg.Run(x.srv.ctx, req)
	defer command.Release(res)
	w := &builder{}
	if err != nil {
		w.add("Response", "Error")
	} else {
		w.add("Response", "Success")
	}
	w.addID(id, hasID)
	w.add("Message", "Command output follows")
	var text string
	switch {
	case errors.Is(err, command.ErrNotFound):
		text = fmt.Sprintf("No such command '%s'", name)
	case errors.Is(err, command.ErrPermission):
		text = "Permission denied"
	case err != nil:
		text = err.Error()
	default:
		text = resultText(res)
	}
	for line := range strings.SplitSeq(strings.TrimRight(text, "\n"), "\n") {
		w.add("Output", strings.TrimRight(line, "\r"))
	}
	w.end()
	x.reply(w)
	return true
}

// resultText renders a command result as CLI-style text: a table as
// tab-separated lines under a header line.
func resultText(r command.Result) string {
	switch v := r.(type) {
	case command.Text:
		return string(v)
	case command.Empty, nil:
		return ""
	case *command.Table:
		var b strings.Builder
		b.WriteString(strings.Join(v.Names(), "\t"))
		cells := make([]command.Cell, len(v.Columns))
		for i := 0; i < v.Len; i++ {
			v.Fill(i, cells)
			b.WriteByte('\n')
			for c := range cells {
				if c > 0 {
					b.WriteByte('\t')
				}
				b.WriteString(cellText(cells[c]))
			}
		}
		return b.String()
	}
	j, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(j)
}

func cellText(c command.Cell) string {
	switch c.Kind {
	case command.KindString:
		return c.Str
	case command.KindInt:
		return strconv.FormatInt(c.Int, 10)
	case command.KindFloat:
		return strconv.FormatFloat(c.Float, 'f', -1, 64)
	case command.KindBool:
		if c.Bool {
			return "Yes"
		}
		return "No"
	case command.KindAddr:
		return c.Addr.String()
	case command.KindTime:
		return c.TimeValue().Format("2006-01-02 15:04:05")
	}
	return ""
}

func (x *Session) actUserEvent(m *Message, id string, hasID bool) bool {
	name := m.Value("UserEvent")
	w := &builder{}
	w.add("Event", "UserEvent")
	w.add("Privilege", "user,all")
	w.add("UserEvent", name)
	for _, h := range m.Headers {
		if h.Name == "" || strings.EqualFold(h.Name, "Action") || strings.EqualFold(h.Name, "UserEvent") || !validName(h.Name) {
			continue
		}
		w.add(h.Name, h.Value)
	}
	w.end()
	x.respond("Success", id, hasID, "Event Sent")
	x.srv.rendered.Add(1)
	x.srv.Broadcast(&Rendered{Name: "UserEvent", Perm: command.PermUser, Bytes: w.b}, nil)
	return true
}

// validName reports whether s is a header name clients accept.
func validName(s string) bool {
	if len(s) < 2 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func (x *Session) lookupCommand(action string) (command.Command, bool) {
	for _, c := range x.srv.reg.All() {
		if strings.EqualFold(c.Name, action) || strings.EqualFold(ActionName(c.Name), action) {
			return c, true
		}
	}
	return command.Command{}, false
}

// runCommand runs a registry command as an action of its own. AMI
// headers fill the command's parameters (names compared
// case-insensitively); a table comes back as a list of <Action>Entry
// events, anything else as Output: lines.
func (x *Session) runCommand(c command.Command, m *Message, id string, hasID bool) {
	// The user's write classes, mapped once at login; the registry's check
	// is the only one.
	req := &command.Request{Name: c.Name, Params: map[string]string{}, Transport: "ami", Perm: x.write}
	for _, p := range c.Params {
		if v, ok := m.Get(p.Name); ok {
			req.Params[p.Name] = v
		}
	}
	res, err := x.srv.reg.Run(x.srv.ctx, req)
	if err != nil {
		x.failed(id, hasID, err)
		return
	}
	defer command.Release(res)
	action := ActionName(c.Name)
	t, ok := res.(*command.Table)
	if !ok {
		w := &builder{}
		w.add("Response", "Success")
		w.addID(id, hasID)
		w.add("Message", "Command output follows")
		if text := strings.TrimRight(resultText(res), "\n"); text != "" {
			for line := range strings.SplitSeq(text, "\n") {
				w.add("Output", strings.TrimRight(line, "\r"))
			}
		}
		w.end()
		x.reply(w)
		return
	}
	w := &builder{}
	w.add("Response", "Success")
	w.addID(id, hasID)
	w.add("EventList", "start")
	w.add("Message", action+" will follow")
	w.end()
	names := make([]string, len(t.Columns))
	for i, col := range t.Columns {
		names[i] = headerName(col.Name)
	}
	cells := make([]command.Cell, len(t.Columns))
	for i := 0; i < t.Len; i++ {
		t.Fill(i, cells)
		w.add("Event", action+"Entry")
		w.addID(id, hasID)
		for c := range cells {
			w.add(names[c], Escape(cellText(cells[c])))
		}
		w.end()
	}
	w.add("Event", action+"Complete")
	w.addID(id, hasID)
	w.add("EventList", "Complete")
	w.addInt("ListItems", int64(t.Len))
	w.end()
	x.reply(w)
}

// glued lists the AMI action names of the registry commands whose names
// run words together, as the VoIPmonitor manager API spells them
// ("listregisters"); every other command is named by capitalising its
// underscore-separated words ("sniffer_stat" → "SnifferStat").
var glued = map[string]string{
	"listcalls":      "ListCalls",
	"listcalls_all":  "ListCallsAll",
	"listregisters":  "ListRegisters",
	"totalcalls":     "TotalCalls",
	"totalregisters": "TotalRegisters",
	"getversion":     "GetVersion",
	"getbuild":       "GetBuild",
	"getverbuild":    "GetVerBuild",
	"readaudio":      "ReadAudio",
}

// ActionName is the AMI action name of a registry command
// ("listregisters" → "ListRegisters", "sniffer_stat" → "SnifferStat").
// Actions are matched case-insensitively either way.
func ActionName(cmd string) string {
	if n, ok := glued[cmd]; ok {
		return n
	}
	var b strings.Builder
	for _, part := range strings.FieldsFunc(cmd, func(r rune) bool { return r == '_' || r == '-' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}
