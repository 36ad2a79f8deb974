package conn

// MaxJSONDepth bounds the nesting [JSONEnd] follows.
const MaxJSONDepth = 64

// JSONEnd finds the end of the JSON object or array that b starts with, for
// framers that must cut a stream into JSON values before decoding them
// (MI FIFO requests, the server API's first message). It tracks nesting
// and strings only; validity is checked by the decoder afterwards. It
// returns n > 0, the length of the value, when the value is complete; 0
// when more bytes are needed; -1 when b does not start with '{' or '[' or
// nests deeper than [MaxJSONDepth].
func JSONEnd(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	if b[0] != '{' && b[0] != '[' {
		return -1
	}
	depth, inStr, esc := 0, false, false
	for i, c := range b {
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			if depth++; depth > MaxJSONDepth {
				return -1
			}
		case c == '}' || c == ']':
			if depth--; depth == 0 {
				return i + 1
			}
		}
	}
	return 0
}
