package mi

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/voipsensor/voipsensor/internal/command"
)

type coded struct{}

func (coded) Error() string          { return "no such dialog" }
func (coded) MIError() (int, string) { return 404, "No such dialog" }

// testRegistry has commands shaped like the MI ones.
func testRegistry() *command.Registry {
	reg := command.NewRegistry()
	reg.Register(command.Command{Name: "uptime", Doc: "uptime", Perm: command.PermReporting,
		Run: func(context.Context, *command.Request) (command.Result, error) {
			return command.Value{V: map[string]string{"Up time": "5 [sec]"}}, nil
		}})
	reg.Register(command.Command{Name: "echo", Doc: "echo", Perm: command.PermReporting,
		Params: []command.Param{
			{Name: "a", Required: true, Doc: "a"},
			{Name: "n", Type: command.ParamInt, Doc: "n"},
		},
		Run: func(_ context.Context, r *command.Request) (command.Result, error) {
			a, _ := r.Param("a")
			n, _ := r.Param("n")
			return command.Value{V: []string{a, n}}, nil
		}})
	reg.Register(command.Command{Name: "get_statistics", Doc: "stats", Perm: command.PermReporting,
		Params: []command.Param{{Name: "statistics", Type: command.ParamJSON, Required: true, Doc: "s"}},
		Run: func(_ context.Context, r *command.Request) (command.Result, error) {
			s, _ := r.Param("statistics")
			return command.Text(s), nil
		}})
	reg.Register(command.Command{Name: "kill", Doc: "control", Perm: command.PermSystem,
		Run: func(context.Context, *command.Request) (command.Result, error) { return command.Empty{}, nil }})
	reg.Register(command.Command{Name: "dlg", Doc: "coded error", Perm: command.PermCall,
		Run: func(context.Context, *command.Request) (command.Result, error) {
			return nil, fmt.Errorf("x: %w", coded{})
		}})
	reg.Register(command.Command{Name: "slow", Doc: "sleeps", Perm: command.PermReporting,
		Run: func(ctx context.Context, _ *command.Request) (command.Result, error) {
			<-ctx.Done()
			time.Sleep(10 * time.Millisecond)
			return command.Text("late"), nil
		}})
	return reg
}

// TestServe checks the envelope, parameter matching and error codes of
// spec §1 (opensips-mi.md), one request and its exact reply per row.
func TestServe(t *testing.T) {
	d := NewDispatcher(testRegistry(), Config{Timeout: 200 * time.Millisecond})
	tests := []struct {
		name, in, want string
		perm           command.Perm
	}{
		{"ok, numeric id", `{"jsonrpc":"2.0","method":"uptime","id":10}`, `{"jsonrpc":"2.0","result":{"Up time":"5 [sec]"},"id":10}`, 0},
		{"id echoed raw (big)", `{"jsonrpc":"2.0","method":"uptime","id":123456789012345678901}`, `{"jsonrpc":"2.0","result":{"Up time":"5 [sec]"},"id":123456789012345678901}`, 0},
		{"string id", `{"jsonrpc":"2.0","method":"uptime","id":"x"}`, `{"jsonrpc":"2.0","result":{"Up time":"5 [sec]"},"id":"x"}`, 0},
		{"explicit null id answered", `{"jsonrpc":"2.0","method":"uptime","id":null}`, `{"jsonrpc":"2.0","result":{"Up time":"5 [sec]"},"id":null}`, 0},
		{"empty params object", `{"jsonrpc":"2.0","method":"uptime","params":{},"id":1}`, `{"jsonrpc":"2.0","result":{"Up time":"5 [sec]"},"id":1}`, 0},
		{"empty params array", `{"jsonrpc":"2.0","method":"uptime","params":[],"id":1}`, `{"jsonrpc":"2.0","result":{"Up time":"5 [sec]"},"id":1}`, 0},
		{"parse error", `{"jsonrpc":`, `{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}`, 0},
		{"batch refused", `[{"jsonrpc":"2.0","method":"uptime","id":1}]`, `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}`, 0},
		{"wrong version", `{"jsonrpc":"1.0","method":"uptime","id":1}`, `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}`, 0},
		{"method not string", `{"jsonrpc":"2.0","method":5,"id":1}`, `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}`, 0},
		{"params scalar", `{"jsonrpc":"2.0","method":"uptime","params":3,"id":1}`, `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}`, 0},
		{"id object", `{"jsonrpc":"2.0","method":"uptime","id":{}}`, `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}`, 0},
		{"unknown method", `{"jsonrpc":"2.0","method":"nope","id":2}`, `{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":2}`, 0},
		{"positional", `{"jsonrpc":"2.0","method":"echo","params":["x",4],"id":3}`, `{"jsonrpc":"2.0","result":["x","4"],"id":3}`, 0},
		{"named", `{"jsonrpc":"2.0","method":"echo","params":{"n":"7","a":"y"},"id":3}`, `{"jsonrpc":"2.0","result":["y","7"],"id":3}`, 0},
		{"number as string param", `{"jsonrpc":"2.0","method":"echo","params":[12],"id":3}`, `{"jsonrpc":"2.0","result":["12",""],"id":3}`, 0},
		{"too many", `{"jsonrpc":"2.0","method":"echo","params":["x",1,2],"id":4}`, `{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params","data":"Too few or too many parameters"},"id":4}`, 0},
		{"too few", `{"jsonrpc":"2.0","method":"echo","params":[],"id":4}`, `{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params","data":"Too few or too many parameters"},"id":4}`, 0},
		{"names mismatch", `{"jsonrpc":"2.0","method":"echo","params":{"b":"x"},"id":5}`, `{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params","data":"Named parameters do not match"},"id":5}`, 0},
		{"extra name", `{"jsonrpc":"2.0","method":"echo","params":{"a":"x","zz":1},"id":5}`, `{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params","data":"Named parameters do not match"},"id":5}`, 0},
		{"bad type", `{"jsonrpc":"2.0","method":"echo","params":[["x"]],"id":6}`, `{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params","data":"Bad type for parameter 'a'"},"id":6}`, 0},
		{"bad int", `{"jsonrpc":"2.0","method":"echo","params":["x","four"],"id":6}`, `{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params","data":"command: bad parameter (strconv.ParseInt: parsing \"four\": invalid syntax): n"},"id":6}`, 0},
		{"nested array param", `{"jsonrpc":"2.0","method":"get_statistics","params":[["dialog:","core:"]],"id":7}`, `{"jsonrpc":"2.0","result":"[\"dialog:\",\"core:\"]","id":7}`, 0},
		{"flat kamctl params folded", `{"jsonrpc":"2.0","method":"get_statistics","params":["dialog:","core:"],"id":7}`, `{"jsonrpc":"2.0","result":"[\"dialog:\",\"core:\"]","id":7}`, 0},
		{"module code", `{"jsonrpc":"2.0","method":"dlg","id":8}`, `{"jsonrpc":"2.0","error":{"code":404,"message":"No such dialog"},"id":8}`, 0},
		{"read-only refuses control", `{"jsonrpc":"2.0","method":"kill","id":9}`, `{"jsonrpc":"2.0","error":{"code":403,"message":"Forbidden","data":"command: permission denied: kill needs system"},"id":9}`, PermReadOnly},
		{"control allowed", `{"jsonrpc":"2.0","method":"kill","id":9}`, `{"jsonrpc":"2.0","result":"OK","id":9}`, 0},
		{"timeout", `{"jsonrpc":"2.0","method":"slow","id":11}`, `{"jsonrpc":"2.0","error":{"code":-32000,"message":"Server error","data":"command timed out"},"id":11}`, 0},
		{"trailing text ignored", `{"jsonrpc":"2.0","method":"uptime","id":1} garbage`, `{"jsonrpc":"2.0","result":{"Up time":"5 [sec]"},"id":1}`, 0},
		{"kamailio reply_name member", `{"jsonrpc": "2.0", "method": "uptime", "reply_name": "r_1", "id": 1}`, `{"jsonrpc":"2.0","result":{"Up time":"5 [sec]"},"id":1}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			perm := tt.perm
			if perm == 0 {
				perm = command.PermAll
			}
			got, _ := d.Serve(context.Background(), []byte(tt.in), perm, "test")
			if string(got) != tt.want {
				t.Errorf("Serve(%s)\n got %s\nwant %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestNotifications(t *testing.T) {
	d := NewDispatcher(testRegistry(), Config{})
	tests := []struct {
		in      string
		replied bool
	}{
		{`{"jsonrpc":"2.0","method":"uptime"}`, false},
		{`{"jsonrpc":"2.0","method":"nope"}`, false}, // errors of notifications are silent
		{`{"jsonrpc":"2.0","method":"echo","params":[]}`, false},
		{`{"jsonrpc":"2.0","method":`, true}, // -32700 always answered
		{`{"jsonrpc":"2.0"}`, true},          // -32600 always answered
	}
	for _, tt := range tests {
		got, _ := d.Serve(context.Background(), []byte(tt.in), command.PermAll, "test")
		if (got != nil) != tt.replied {
			t.Errorf("Serve(%s) = %s, want replied=%v", tt.in, got, tt.replied)
		}
	}
}

func TestReplyLimit(t *testing.T) {
	reg := command.NewRegistry()
	reg.Register(command.Command{Name: "big", Doc: "big", Perm: command.PermReporting,
		Run: func(context.Context, *command.Request) (command.Result, error) {
			return command.Text(strings.Repeat("x", 1000)), nil
		}})
	d := NewDispatcher(reg, Config{MaxReply: 500})
	got, code := d.Serve(context.Background(), []byte(`{"jsonrpc":"2.0","method":"big","id":1}`), command.PermAll, "t")
	var r struct {
		Error Error `json:"error"`
	}
	if err := json.Unmarshal(got, &r); err != nil || code != CodeServerError || !strings.Contains(r.Error.Data, "reply too large") {
		t.Errorf("Serve(big) = %s (code %d), want a -32000 reply-too-large error", got, code)
	}
}

func TestListenerPerm(t *testing.T) {
	if got := ListenerPerm(true); got.Has(command.PermSystem) || !got.Has(command.PermReporting|command.PermCall) {
		t.Errorf("ListenerPerm(true) = %v", got)
	}
	if diff := cmp.Diff(command.PermAll, ListenerPerm(false)); diff != "" {
		t.Error(diff)
	}
}

func FuzzDispatcher(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","method":"echo","params":["x",4],"id":3}`,
		`{"jsonrpc":"2.0","method":"echo","params":{"a":"y"},"id":"s"}`,
		`{"jsonrpc":"2.0","method":"get_statistics","params":["a","b",["c"]],"id":null}`,
		`[1,2]`, `{"jsonrpc":"2.0","method":"uptime"}`, `{"id":1e400}`, `{"jsonrpc":"2.0","method":"echo","params":[{"a":1}],"id":-0.5}`,
	} {
		f.Add([]byte(s))
	}
	d := NewDispatcher(testRegistry(), Config{Timeout: 50 * time.Millisecond})
	f.Fuzz(func(t *testing.T, b []byte) {
		req, perr := ParseRequest(b)
		reply, code := d.Serve(context.Background(), b, command.PermAll, "fuzz")
		if perr == nil && req.Notification() {
			if reply != nil {
				t.Fatalf("notification %q answered %q", b, reply)
			}
			return
		}
		var r struct {
			V      string          `json:"jsonrpc"`
			Result json.RawMessage `json:"result"`
			Error  *Error          `json:"error"`
			ID     json.RawMessage `json:"id"`
		}
		if err := json.Unmarshal(reply, &r); err != nil {
			t.Fatalf("reply %q to %q is not JSON: %v", reply, b, err)
		}
		if r.V != "2.0" || (r.Error == nil) == (r.Result == nil) {
			t.Fatalf("reply %q: want jsonrpc 2.0 and exactly one of result/error", reply)
		}
		if r.Error != nil && r.Error.Code != code {
			t.Fatalf("reply code %d, Serve code %d", r.Error.Code, code)
		}
		if perr == nil && string(r.ID) != string(req.ID) {
			t.Fatalf("id %s echoed as %s", req.ID, r.ID)
		}
	})
}

func BenchmarkServe(b *testing.B) {
	d := NewDispatcher(testRegistry(), Config{})
	req := []byte(`{"jsonrpc":"2.0","method":"echo","params":{"a":"x","n":4},"id":17}`)
	b.ReportAllocs()
	for b.Loop() {
		d.Serve(context.Background(), req, command.PermAll, "bench")
	}
}

func BenchmarkFramer(b *testing.B) {
	in := []byte(pyOpenSIPS + kamctlLine)
	f := NewFramer(0)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		f.Write(in)
		for {
			if _, ok := f.Next(); !ok {
				break
			}
		}
	}
}
