package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"time"
)

// ActiveEntry is one element of the "active" reply's services.
type ActiveEntry struct {
	IP       string `json:"ip"`
	Port     int    `json:"port"`
	SensorID int    `json:"sensor_id"`
}

// ActiveReply is the manager_command "active" reply.
type ActiveReply struct {
	Count    int           `json:"count"`
	Services []ActiveEntry `json:"services"`
}

// roundTrip sends one opening message and reads the reply until the
// server closes.
func roundTrip(ctx context.Context, addr string, msg []byte) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTaskTimeout+10*time.Second)
		defer cancel()
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(c, DefaultMaxResponse+64))
	if err != nil && ctx.Err() != nil {
		return b, ctx.Err()
	}
	return b, err
}

// Active asks the server at addr which sensors are connected.
func Active(ctx context.Context, addr string) (ActiveReply, error) {
	var r ActiveReply
	b, err := roundTrip(ctx, addr, []byte(`{"type_connection":"manager_command","command":"active"}`+"\r\n"))
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("server: active reply %q: %w", b, err)
	}
	return r, nil
}

// GUICommand relays a manager command line to sensorID through the server
// at addr and returns the reply bytes (legacy texts such as
// "missing sniffer service - connect sensor?" included). When key is
// non-nil the request is wrapped "<cipherName>:<ciphertext>:sea" and an
// "aes:" reply is decrypted.
func GUICommand(ctx context.Context, addr string, sensorID int, line string, key Cipher, cipherName string) ([]byte, error) {
	msg, _ := json.Marshal(map[string]any{"type_connection": "gui_command", "sensor_id": sensorID, "command": line})
	if key != nil {
		ct, err := key.Encrypt(cipherName, msg)
		if err != nil {
			return nil, err
		}
		msg = append(append([]byte(cipherName+":"), ct...), ":sea"...)
	} else {
		msg = append(msg, '\r', '\n')
	}
	b, err := roundTrip(ctx, addr, msg)
	if err != nil {
		return nil, err
	}
	if key != nil && bytes.HasPrefix(b, []byte("aes:")) {
		return key.Decrypt(cipherName, b[4:])
	}
	return b, nil
}
