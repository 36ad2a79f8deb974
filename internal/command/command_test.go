package command

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func okRun(context.Context, *Request) (Result, error) { return Text("ok"), nil }

func TestRegisterPanics(t *testing.T) {
	good := Command{Name: "x", Doc: "does x", Perm: PermSystem, Run: okRun}
	tests := []struct {
		name string
		mod  func(c *Command)
		want string
	}{
		{"empty name", func(c *Command) { c.Name = "" }, "bad command name"},
		{"space in name", func(c *Command) { c.Name = "a b" }, "bad command name"},
		{"missing doc", func(c *Command) { c.Doc = " " }, "missing doc"},
		{"nil run", func(c *Command) { c.Run = nil }, "nil Run"},
		{"zero perm", func(c *Command) { c.Perm = 0 }, "unknown perm"},
		{"unknown perm bit", func(c *Command) { c.Perm = 1 << 30 }, "unknown perm"},
		{"param without doc", func(c *Command) { c.Params = []Param{{Name: "p"}} }, "bad param"},
		{"duplicate", func(c *Command) {}, "already registered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistry()
			r.Register(good)
			c := good
			tt.mod(&c)
			defer func() {
				got, _ := recover().(string)
				if !strings.Contains(got, tt.want) {
					t.Errorf("Register panic = %q, want it to contain %q", got, tt.want)
				}
			}()
			r.Register(c)
		})
	}
}

func TestLookupAll(t *testing.T) {
	r := NewRegistry()
	for _, n := range []string{"b", "c", "a"} {
		r.Register(Command{Name: n, Doc: "doc " + n, Perm: PermCall, Run: okRun})
	}
	var got []string
	for _, c := range r.All() {
		got = append(got, c.Name)
	}
	if diff := cmp.Diff([]string{"a", "b", "c"}, got); diff != "" {
		t.Errorf("All() names (-want +got):\n%s", diff)
	}
	if c, ok := r.Lookup("b"); !ok || c.Doc != "doc b" {
		t.Errorf("Lookup(b) = %+v, %v", c, ok)
	}
	if _, ok := r.Lookup("B"); ok {
		t.Errorf("Lookup is case-sensitive; Lookup(B) found a command")
	}
}

func TestRun(t *testing.T) {
	r := NewRegistry()
	r.Register(Command{
		Name: "echo", Doc: "echo params", Perm: PermCall | PermReporting,
		Params: []Param{
			{Name: "id", Type: ParamInt, Required: true, Doc: "an id"},
			{Name: "opts", Type: ParamJSON, Doc: "options"},
		},
		Run: func(_ context.Context, req *Request) (Result, error) {
			id, _ := req.Param("id")
			o, _ := req.Param("opts")
			return Text(id + "|" + o), nil
		},
	})
	tests := []struct {
		name    string
		req     Request
		want    Result
		wantErr error
	}{
		{"positional", Request{Name: "echo", Args: []string{"7", `{"a":1}`}, Perm: PermAll}, Text(`7|{"a":1}`), nil},
		{"named wins", Request{Name: "echo", Args: []string{"7"}, Params: map[string]string{"id": "8"}, Perm: PermAll}, Text("8|"), nil},
		{"not found", Request{Name: "nope", Perm: PermAll}, nil, ErrNotFound},
		{"partial perm", Request{Name: "echo", Args: []string{"1"}, Perm: PermCall}, nil, ErrPermission},
		{"missing", Request{Name: "echo", Perm: PermAll}, nil, ErrMissingParam},
		{"bad int", Request{Name: "echo", Args: []string{"x"}, Perm: PermAll}, nil, ErrBadParam},
		{"bad json", Request{Name: "echo", Args: []string{"1", "{"}, Perm: PermAll}, nil, ErrBadParam},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.Run(context.Background(), &tt.req)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run err = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Run = %#v, want %#v", got, tt.want)
			}
			var pe *ParamError
			if errors.As(err, &pe) && pe.Param != "id" && pe.Param != "opts" {
				t.Errorf("ParamError.Param = %q", pe.Param)
			}
		})
	}
}

func TestParseLine(t *testing.T) {
	tests := []struct {
		in   string
		name string
		args []string
	}{
		{"listcalls", "listcalls", nil},
		{"  listcalls  ", "listcalls", nil},
		{"sniffer_threads all\tline", "sniffer_threads", []string{"all", "line"}},
		{`listcalls {"limit": 3, "filter": [{"caller":"%1 2%"}]}  `, "listcalls", []string{`{"limit": 3, "filter": [{"caller":"%1 2%"}]}`}},
		{`x a [1, 2]`, "x", []string{"a", "[1, 2]"}},
		{"", "", nil},
	}
	for _, tt := range tests {
		name, args := ParseLine(tt.in)
		if name != tt.name || !cmp.Equal(args, tt.args) {
			t.Errorf("ParseLine(%q) = %q, %q; want %q, %q", tt.in, name, args, tt.name, tt.args)
		}
	}
}

func TestPermString(t *testing.T) {
	tests := []struct {
		p    Perm
		want string
	}{
		{0, "none"},
		{PermSystem | PermCall, "system,call"},
		{PermReporting, "reporting"},
		{PermAll, "all"},
		{PermMessage | 1<<31, "message,0x80000000"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("Perm(%#x).String() = %q, want %q", uint32(tt.p), got, tt.want)
		}
		if tt.p&^PermAll != 0 {
			continue
		}
		back, err := ParsePerm(tt.want)
		if err != nil || back != tt.p {
			t.Errorf("ParsePerm(%q) = %v, %v; want %v", tt.want, back, err, tt.p)
		}
	}
	if _, err := ParsePerm("system,bogus"); err == nil {
		t.Errorf("ParsePerm(bogus) succeeded")
	}
}

func TestTable(t *testing.T) {
	names := []string{"x", "y"}
	order := []int{1, 0} // a sorted table applies its order in Emit
	released := 0
	tb := &Table{
		Columns: []Column{{Name: "name"}, {Name: "n"}},
		Len:     2,
		Emit: func(i int, w CellWriter) {
			w.Str(names[order[i]])
			w.Int(int64(order[i]))
		},
	}
	tb.OnRelease(func() { released++ })
	if got := tb.Cell(0, 0); got != Str("y") {
		t.Errorf("Cell(0, 0) = %+v, want y", got)
	}
	if got := tb.Cell(1, 1); got != Int(0) {
		t.Errorf("Cell(1, 1) = %+v, want 0", got)
	}
	want := [][]any{{"y", int64(1)}, {"x", int64(0)}}
	if diff := cmp.Diff(want, tb.Rows()); diff != "" {
		t.Errorf("Rows (-want +got):\n%s", diff)
	}
	b, err := tb.MarshalJSON()
	if err != nil || string(b) != `{"columns":["name","n"],"rows":[["y",1],["x",0]]}` {
		t.Errorf("MarshalJSON = %s, %v", b, err)
	}
	Release(tb)
	Release(tb)
	if released != 1 {
		t.Errorf("the release hook ran %d times, want once", released)
	}
}

func TestRunRecoversPanic(t *testing.T) {
	r := NewRegistry()
	r.SetLogger(slog.New(slog.DiscardHandler))
	r.Register(Command{Name: "boom", Doc: "panics", Perm: PermSystem, Run: func(context.Context, *Request) (Result, error) {
		var p *Request
		return Text(p.Name), nil // nil dereference
	}})
	r.Register(Command{Name: "ok", Doc: "works", Perm: PermSystem, Run: func(context.Context, *Request) (Result, error) {
		return Text("fine"), nil
	}})
	for i := 1; i <= 2; i++ {
		res, err := r.Run(context.Background(), &Request{Name: "boom", Perm: PermAll})
		if !errors.Is(err, ErrInternal) || res != nil {
			t.Fatalf("Run(boom) = %v, %v; want nil, ErrInternal", res, err)
		}
		if r.Panics() != uint64(i) {
			t.Fatalf("Panics = %d, want %d", r.Panics(), i)
		}
	}
	if res, err := r.Run(context.Background(), &Request{Name: "ok", Perm: PermAll}); err != nil || res.(Text) != "fine" {
		t.Fatalf("after a panic Run(ok) = %v, %v", res, err)
	}
}
