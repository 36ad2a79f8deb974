package command

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// JSONText reads a JSON string or number as text: legacy clients send
// numeric parameters either way ("limit":30 or "limit":"30"). null and an
// empty value give "".
func JSONText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return "", fmt.Errorf("want string or number, got %.40s", raw)
	}
	return n.String(), nil
}
