package xmlrpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/voipsensor/voipsensor/internal/command"
)

// Requests as Python's xmlrpc.client marshals them (spec §4, E4).
func TestParseCall(t *testing.T) {
	tests := []struct {
		name, in, method, params string
		err                      bool
	}{
		{"no params", `<?xml version='1.0'?><methodCall><methodName>uptime</methodName><params></params></methodCall>`, "uptime", "", false},
		{"list param → positional", `<?xml version='1.0'?>
<methodCall>
<methodName>get_statistics</methodName>
<params>
<param>
<value><array><data>
<value><string>dialog:</string></value>
<value><string>core:</string></value>
</data></array></value>
</param>
</params>
</methodCall>`, "get_statistics", `[["dialog:","core:"]]`, false},
		{"struct param → named", `<methodCall><methodName>log_level</methodName><params><param><value><struct><member><name>level</name><value><int>4</int></value></member><member><name>pid</name><value><i4>7</i4></value></member></struct></value></param></params></methodCall>`,
			"log_level", `{"level":4,"pid":7}`, false},
		{"untyped, entities, i8, bool, double, nil", `<methodCall><methodName>x</methodName><params><param><value>a&amp;b</value></param><param><value><i8>9000000000</i8></value></param><param><value><boolean>1</boolean></value></param><param><value><double>1.5</double></value></param><param><value><nil/></value></param></params></methodCall>`,
			"x", `["a\u0026b",9000000000,true,1.5,null]`, false},
		{"int overflow", `<methodCall><methodName>x</methodName><params><param><value><int>9000000000</int></value></param></params></methodCall>`, "", "", true},
		{"no method", `<methodCall><params/></methodCall>`, "", "", true},
		{"not xml", `{"jsonrpc":"2.0"}`, "", "", true},
		{"unknown type", `<methodCall><methodName>x</methodName><params><param><value><dateTime.iso8601>20260101T00:00:00</dateTime.iso8601></value></param></params></methodCall>`, "", "", true},
		{"truncated", `<methodCall><methodName>x</methodName><params><param><value><array><data>`, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, p, err := ParseCall([]byte(tt.in))
			if (err != nil) != tt.err || (err != nil && !errors.Is(err, ErrInvalid)) {
				t.Fatalf("ParseCall err = %v, want error %v", err, tt.err)
			}
			if m != tt.method || string(p) != tt.params {
				t.Errorf("ParseCall = %q, %s; want %q, %s", m, p, tt.method, tt.params)
			}
		})
	}
}

func TestAppendResponse(t *testing.T) {
	got, err := AppendResponse(nil, json.RawMessage(`{"b":[1,"x<y",true,null,2.5,3000000000],"a":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := `<?xml version="1.0"?>` + "\n" + `<methodResponse><params><param><value><struct>` +
		`<member><name>b</name><value><array><data><value><int>1</int></value><value><string>x&lt;y</string></value>` +
		`<value><boolean>1</boolean></value><value><nil/></value><value><double>2.5</double></value><value><i8>3000000000</i8></value></data></array></value></member>` +
		`<member><name>a</name><value><struct></struct></value></member></struct></value></param></params></methodResponse>` + "\n"
	if string(got) != want {
		t.Errorf("AppendResponse\n got %s\nwant %s", got, want)
	}
}

func TestFault(t *testing.T) {
	got := string(AppendFault(nil, FaultFor(-32601, "Method not found")))
	want := `<?xml version="1.0"?>` + "\n" + `<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>-32601</int></value></member><member><name>faultString</name><value><string>server error. requested method not found</string></value></member></struct></value></fault></methodResponse>` + "\n"
	if got != want {
		t.Errorf("AppendFault\n got %s\nwant %s", got, want)
	}
	if f := FaultFor(404, "No such dialog"); f.Code != 404 || f.String != "No such dialog" {
		t.Errorf("FaultFor(404) = %+v", f)
	}
	if f := FaultFor(-32700, ""); f.Code != -32700 {
		t.Errorf("FaultFor(-32700).Code = %d, want the sign kept", f.Code)
	}
}

type echoBackend struct{}

func (echoBackend) Call(_ context.Context, method string, params json.RawMessage, perm command.Perm) (json.RawMessage, error) {
	switch method {
	case "echo":
		return append(json.RawMessage(nil), params...), nil
	case "kill":
		if !perm.Has(command.PermSystem) {
			return nil, FaultFor(403, "Forbidden")
		}
		return json.RawMessage(`"OK"`), nil
	}
	return nil, FaultFor(-32601, "")
}

// TestResponder: a call's result, a Backend fault as is (a control
// command refused to a read-only grant), -32600 for a body that is no
// methodCall, and -32603 for a panic. HTTP (POST only, text/xml, 200 with
// faults) is the MI HTTP listener's, tested in internal/transport/mi.
func TestResponder(t *testing.T) {
	rs := Responder{Backend: echoBackend{}}
	readOnly := command.PermAll &^ command.PermSystem
	tests := []struct {
		name, body string
		want       string
	}{
		{"echo", `<methodCall><methodName>echo</methodName><params><param><value><string>hi</string></value></param></params></methodCall>`,
			`<array><data><value><string>hi</string></value></data></array>`},
		{"kill on read-only", `<methodCall><methodName>kill</methodName></methodCall>`, "<int>403</int>"},
		{"garbage", `garbage`, "<int>-32600</int>"},
		{"unknown method", `<methodCall><methodName>nope</methodName></methodCall>`, "<string>server error. requested method not found</string>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(rs.Respond(context.Background(), []byte(tt.body), readOnly)); !strings.Contains(got, tt.want) {
				t.Errorf("Respond = %s, want it to contain %s", got, tt.want)
			}
		})
	}
	if got, want := string(rs.Internal()), "<int>-32603</int></value></member><member><name>faultString</name><value><string>server error. internal xml-rpc error</string>"; !strings.Contains(got, want) {
		t.Errorf("Internal = %s, want it to contain %s", got, want)
	}
}

// FuzzCodec: any request that parses has params that are valid JSON, and
// they survive a round trip through the response encoder and back.
func FuzzCodec(f *testing.F) {
	for _, s := range []string{
		`<methodCall><methodName>get_statistics</methodName><params><param><value><array><data><value><string>all</string></value></data></array></value></param></params></methodCall>`,
		`<methodCall><methodName>x</methodName><params><param><value><struct><member><name>a</name><value><i8>-5</i8></value></member></struct></value></param></params></methodCall>`,
		`<methodCall><methodName>x</methodName><params><param><value>t&lt;</value></param><param><value><double>-0.25</double></value></param><param><value><nil/></value></param></params></methodCall>`,
		`<methodCall><methodName>x</methodName><params><param><value><base64>aGk=</base64></value></param></params></methodCall>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, params, err := ParseCall(b)
		if err != nil || params == nil {
			return
		}
		if !json.Valid(params) {
			t.Fatalf("params %s not JSON", params)
		}
		resp, err := AppendResponse(nil, params)
		if err != nil {
			t.Fatalf("AppendResponse(%s): %v", params, err)
		}
		// Wrap the response value as a call param and parse it back.
		i := bytes.Index(resp, []byte("<param>"))
		j := bytes.LastIndex(resp, []byte("</param>"))
		call := "<methodCall><methodName>y</methodName><params>" + string(resp[i:j]) + "</param></params></methodCall>"
		_, back, err := ParseCall([]byte(call))
		if err != nil {
			t.Fatalf("re-parse of %s: %v", call, err)
		}
		var v1, v2 any
		json.Unmarshal(params, &v1)
		json.Unmarshal(back, &v2)
		// A struct param comes back named; an array comes back wrapped once.
		if a, ok := v2.([]any); ok && len(a) == 1 {
			v2 = a[0]
		}
		j1, _ := json.Marshal(v1)
		j2, _ := json.Marshal(v2)
		if !bytes.Equal(j1, j2) {
			t.Fatalf("round trip %s → %s", j1, j2)
		}
	})
}
