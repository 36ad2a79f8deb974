package xmlrpc

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// ErrInvalid means the body is not a well-formed XML-RPC methodCall, or
// uses a value this codec cannot map to JSON.
var ErrInvalid = errors.New("xmlrpc: invalid methodCall")

// maxDepth bounds array/struct nesting in a request.
const maxDepth = 32

// ParseCall decodes an XML-RPC methodCall and returns its method name and
// its params as JSON text: an object when the first param is a <struct>
// (named parameters), otherwise an array of every param (positional); nil
// when there are none. Accepted values: string (also untyped), int, i4,
// i8, boolean, double, nil, base64 (as a string), array, struct.
func ParseCall(body []byte) (method string, params json.RawMessage, err error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.Strict = true
	p := parser{dec: dec}
	if err := p.expectStart("methodCall"); err != nil {
		return "", nil, err
	}
	var vals []any
	for {
		t, err := p.nextElem()
		if err != nil {
			return "", nil, err
		}
		if t.end {
			break // </methodCall>
		}
		switch t.name {
		case "methodName":
			s, err := p.text()
			if err != nil {
				return "", nil, err
			}
			method = strings.TrimSpace(s)
		case "params":
			for {
				t, err := p.nextElem()
				if err != nil {
					return "", nil, err
				}
				if t.end {
					break
				}
				if t.name != "param" {
					return "", nil, fmt.Errorf("%w: <%s> in <params>", ErrInvalid, t.name)
				}
				if err := p.expectStart("value"); err != nil {
					return "", nil, err
				}
				v, err := p.value(0)
				if err != nil {
					return "", nil, err
				}
				vals = append(vals, v)
				if err := p.expectEnd(); err != nil { // </param>
					return "", nil, err
				}
			}
		default:
			return "", nil, fmt.Errorf("%w: <%s> in <methodCall>", ErrInvalid, t.name)
		}
	}
	if method == "" {
		return "", nil, fmt.Errorf("%w: no methodName", ErrInvalid)
	}
	switch {
	case len(vals) == 0:
		return method, nil, nil
	case isStruct(vals[0]):
		params, err = json.Marshal(vals[0].(object))
	default:
		params, err = json.Marshal(vals)
	}
	return method, params, err
}

func isStruct(v any) bool { _, ok := v.(object); return ok }

// object keeps struct members in wire order for JSON.
type object struct {
	keys []string
	vals []any
}

// MarshalJSON encodes the members in order.
func (o object) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, k := range o.keys {
		if i > 0 {
			b = append(b, ',')
		}
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(o.vals[i])
		if err != nil {
			return nil, err
		}
		b = append(append(append(b, kb...), ':'), vb...)
	}
	return append(b, '}'), nil
}

type parser struct{ dec *xml.Decoder }

type elem struct {
	name string
	end  bool
}

// nextElem returns the next start or end element, skipping whitespace,
// comments and processing instructions; other text is an error.
func (p *parser) nextElem() (elem, error) {
	for {
		tok, err := p.dec.Token()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return elem{}, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return elem{name: t.Name.Local}, nil
		case xml.EndElement:
			return elem{name: t.Name.Local, end: true}, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return elem{}, fmt.Errorf("%w: stray text %q", ErrInvalid, string(t))
			}
		}
	}
}

func (p *parser) expectStart(name string) error {
	t, err := p.nextElem()
	if err != nil {
		return err
	}
	if t.end || t.name != name {
		return fmt.Errorf("%w: want <%s>", ErrInvalid, name)
	}
	return nil
}

func (p *parser) expectEnd() error {
	t, err := p.nextElem()
	if err != nil {
		return err
	}
	if !t.end {
		return fmt.Errorf("%w: unexpected <%s>", ErrInvalid, t.name)
	}
	return nil
}

// text reads character data up to the current element's end.
func (p *parser) text() (string, error) {
	var sb strings.Builder
	for {
		tok, err := p.dec.Token()
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			sb.Write(t)
		case xml.EndElement:
			return sb.String(), nil
		case xml.StartElement:
			return "", fmt.Errorf("%w: <%s> inside text", ErrInvalid, t.Name.Local)
		}
	}
}

// value reads the content of a <value> element, its end included.
func (p *parser) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: nesting deeper than %d", ErrInvalid, maxDepth)
	}
	var sb strings.Builder
	for {
		tok, err := p.dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			sb.Write(t)
		case xml.EndElement:
			return sb.String(), nil // untyped: a string
		case xml.StartElement:
			if strings.TrimSpace(sb.String()) != "" {
				return nil, fmt.Errorf("%w: text before <%s>", ErrInvalid, t.Name.Local)
			}
			v, err := p.typed(t.Name.Local, depth)
			if err != nil {
				return nil, err
			}
			return v, p.expectEnd() // </value>
		}
	}
}

func (p *parser) typed(name string, depth int) (any, error) {
	switch name {
	case "array":
		if err := p.expectStart("data"); err != nil {
			return nil, err
		}
		arr := []any{}
		for {
			t, err := p.nextElem()
			if err != nil {
				return nil, err
			}
			if t.end {
				break
			}
			if t.name != "value" {
				return nil, fmt.Errorf("%w: <%s> in <data>", ErrInvalid, t.name)
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		return arr, p.expectEnd() // </array>
	case "struct":
		o := object{}
		for {
			t, err := p.nextElem()
			if err != nil {
				return nil, err
			}
			if t.end {
				return o, nil
			}
			if t.name != "member" {
				return nil, fmt.Errorf("%w: <%s> in <struct>", ErrInvalid, t.name)
			}
			if err := p.expectStart("name"); err != nil {
				return nil, err
			}
			k, err := p.text()
			if err != nil {
				return nil, err
			}
			if err := p.expectStart("value"); err != nil {
				return nil, err
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			if err := p.expectEnd(); err != nil { // </member>
				return nil, err
			}
			o.keys, o.vals = append(o.keys, k), append(o.vals, v)
		}
	case "nil":
		return nil, p.expectEnd()
	}
	s, err := p.text()
	if err != nil {
		return nil, err
	}
	switch name {
	case "string":
		return s, nil
	case "int", "i4", "i8":
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || (name != "i8" && (n > math.MaxInt32 || n < math.MinInt32)) {
			return nil, fmt.Errorf("%w: bad <%s> %q", ErrInvalid, name, s)
		}
		return json.Number(strconv.FormatInt(n, 10)), nil
	case "boolean":
		switch strings.TrimSpace(s) {
		case "1":
			return true, nil
		case "0":
			return false, nil
		}
		return nil, fmt.Errorf("%w: bad <boolean> %q", ErrInvalid, s)
	case "double":
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("%w: bad <double> %q", ErrInvalid, s)
		}
		return f, nil
	case "base64":
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%w: bad <base64>", ErrInvalid)
		}
		return string(b), nil
	}
	return nil, fmt.Errorf("%w: unsupported type <%s>", ErrInvalid, name)
}

// AppendResponse appends a methodResponse carrying the JSON value result.
// Object member order is kept.
func AppendResponse(b []byte, result json.RawMessage) ([]byte, error) {
	b = append(b, `<?xml version="1.0"?>`+"\n"+`<methodResponse><params><param>`...)
	dec := json.NewDecoder(bytes.NewReader(result))
	dec.UseNumber()
	b, err := appendJSONValue(b, dec, 0)
	if err != nil {
		return nil, err
	}
	return append(b, "</param></params></methodResponse>\n"...), nil
}

func appendJSONValue(b []byte, dec *json.Decoder, depth int) ([]byte, error) {
	if depth > 2*maxDepth {
		return nil, errors.New("xmlrpc: result nested too deep")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("xmlrpc: result: %w", err)
	}
	b = append(b, "<value>"...)
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			b = append(b, "<struct>"...)
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				b = append(b, "<member><name>"...)
				b = appendEscaped(b, kt.(string))
				b = append(b, "</name>"...)
				if b, err = appendJSONValue(b, dec, depth+1); err != nil {
					return nil, err
				}
				b = append(b, "</member>"...)
			}
			dec.Token()
			b = append(b, "</struct>"...)
		case '[':
			b = append(b, "<array><data>"...)
			for dec.More() {
				if b, err = appendJSONValue(b, dec, depth+1); err != nil {
					return nil, err
				}
			}
			dec.Token()
			b = append(b, "</data></array>"...)
		}
	case string:
		b = append(b, "<string>"...)
		b = appendEscaped(b, t)
		b = append(b, "</string>"...)
	case json.Number:
		if n, err := t.Int64(); err == nil {
			tag := "int"
			if n > math.MaxInt32 || n < math.MinInt32 {
				tag = "i8"
			}
			b = append(b, "<"+tag+">"...)
			b = strconv.AppendInt(b, n, 10)
			b = append(b, "</"+tag+">"...)
		} else {
			f, _ := t.Float64()
			b = append(b, "<double>"...)
			b = strconv.AppendFloat(b, f, 'f', -1, 64)
			b = append(b, "</double>"...)
		}
	case bool:
		if t {
			b = append(b, "<boolean>1</boolean>"...)
		} else {
			b = append(b, "<boolean>0</boolean>"...)
		}
	case nil:
		b = append(b, "<nil/>"...)
	}
	return append(b, "</value>"...), nil
}

func appendEscaped(b []byte, s string) []byte {
	var buf bytes.Buffer
	xml.EscapeText(&buf, []byte(s))
	return append(b, buf.Bytes()...)
}

// Fault is an XML-RPC fault. It is also the error a [Backend] returns to
// choose the fault sent.
type Fault struct {
	Code   int
	String string
}

// Error returns "xmlrpc: fault CODE: STRING".
func (f *Fault) Error() string { return "xmlrpc: fault " + strconv.Itoa(f.Code) + ": " + f.String }

// FaultFor maps a JSON-RPC error to the fault OpenSIPS mi_xmlrpc sends:
// fixed texts for the standard codes, the message otherwise. Unlike
// OpenSIPS, -32700 keeps its sign.
func FaultFor(code int, message string) *Fault {
	switch code {
	case -32700:
		message = "parse error. not well formed"
	case -32600:
		message = "server error. invalid xml-rpc. not conforming to spec."
	case -32601:
		message = "server error. requested method not found"
	case -32602:
		message = "server error. invalid method parameters"
	case -32603:
		message = "server error. internal xml-rpc error"
	case -32000:
		message = "server error"
	}
	return &Fault{Code: code, String: message}
}

// AppendFault appends a methodResponse carrying the fault f.
func AppendFault(b []byte, f *Fault) []byte {
	b = append(b, `<?xml version="1.0"?>`+"\n"+`<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>`...)
	b = strconv.AppendInt(b, int64(f.Code), 10)
	b = append(b, `</int></value></member><member><name>faultString</name><value><string>`...)
	b = appendEscaped(b, f.String)
	return append(b, "</string></value></member></struct></value></fault></methodResponse>\n"...)
}
