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

// Client makes the one-shot requests of the server API (manager_command,
// gui_command), as tools and the VoIPmonitor GUI do. The zero value with
// Addr set suits a server that trusts the caller: one on this host
// (loopback) or one without server_password.
type Client struct {
	// Addr is the server's host:port.
	Addr string
	// Password, if set, is sent as "password" in the request: what a
	// server of this implementation needs from another host unless the
	// request is wrapped with the manager key. The legacy server ignores
	// the key.
	Password string
	// Key, if set, wraps requests as "<CipherName>:<ciphertext>:sea" with
	// the manager AES key and decrypts an "aes:" reply.
	Key        Cipher
	CipherName string
}

// request encodes one opening message, wrapped when cl.Key is set.
func (cl Client) request(fields map[string]any) ([]byte, error) {
	if cl.Password != "" {
		fields["password"] = cl.Password
	}
	msg, _ := json.Marshal(fields)
	if cl.Key == nil {
		return append(msg, '\r', '\n'), nil
	}
	ct, err := cl.Key.Encrypt(cl.CipherName, msg)
	if err != nil {
		return nil, err
	}
	return append(append([]byte(cl.CipherName+":"), ct...), ":sea"...), nil
}

// Active asks the server which sensors are connected.
func (cl Client) Active(ctx context.Context) (ActiveReply, error) {
	var r ActiveReply
	msg, err := cl.request(map[string]any{"type_connection": "manager_command", "command": "active"})
	if err != nil {
		return r, err
	}
	b, err := roundTrip(ctx, cl.Addr, msg)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("server: active reply %q: %w", b, err)
	}
	return r, nil
}

// GUICommand relays a manager command line to sensorID through the server
// and returns the reply bytes (legacy texts such as
// "missing sniffer service - connect sensor?" and "bad password"
// included), an "aes:" reply decrypted when cl.Key is set.
func (cl Client) GUICommand(ctx context.Context, sensorID int, line string) ([]byte, error) {
	msg, err := cl.request(map[string]any{"type_connection": "gui_command", "sensor_id": sensorID, "command": line})
	if err != nil {
		return nil, err
	}
	b, err := roundTrip(ctx, cl.Addr, msg)
	if err != nil {
		return nil, err
	}
	if cl.Key != nil && bytes.HasPrefix(b, []byte("aes:")) {
		return cl.Key.Decrypt(cl.CipherName, b[4:])
	}
	return b, nil
}

// Active asks the server at addr which sensors are connected, without a
// password ([Client.Active] sends one).
func Active(ctx context.Context, addr string) (ActiveReply, error) {
	return Client{Addr: addr}.Active(ctx)
}

// GUICommand relays a manager command line to sensorID through the server
// at addr, without a password ([Client.GUICommand] sends one). When key
// is non-nil the request is wrapped with it under cipherName and an
// "aes:" reply is decrypted.
func GUICommand(ctx context.Context, addr string, sensorID int, line string, key Cipher, cipherName string) ([]byte, error) {
	return Client{Addr: addr, Key: key, CipherName: cipherName}.GUICommand(ctx, sensorID, line)
}
