package manager

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Client errors, returned when the server answers with the legacy texts.
var (
	// ErrNeedAES is returned for a "need aes!" reply.
	ErrNeedAES = errors.New("manager: server needs aes")
	// ErrServerDecrypt is returned for a "failed aes decrypt!" reply.
	ErrServerDecrypt = errors.New("manager: server failed to decrypt the request")
)

// MaxReplySize bounds a reply the Client reads, in bytes.
const MaxReplySize = 1 << 30

// Client sends one command per connection to a manager server. Set Addr
// (TCP host:port) or Socket (unix path). When Key is valid, requests are
// encrypted with Cipher (default aes-128-cbc) and "aes:" replies
// decrypted. A Client is safe for concurrent use.
type Client struct {
	Addr    string
	Socket  string
	Key     Key
	Cipher  string
	Timeout time.Duration // whole exchange; 0 means 30 s
}

// Do sends cmd and returns the reply: decrypted when it is "aes:"-framed
// and gunzipped when it is gzip. "need aes!" and "failed aes decrypt!"
// replies become [ErrNeedAES] and [ErrServerDecrypt].
func (c *Client) Do(ctx context.Context, cmd string) ([]byte, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	network, addr := "tcp", c.Addr
	if c.Socket != "" {
		network, addr = "unix", c.Socket
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	cipherName := c.Cipher
	if cipherName == "" {
		cipherName = DefaultCipher
	}
	var req []byte
	encrypted := c.Key.Valid()
	if encrypted {
		ct, err := c.Key.Encrypt(cipherName, []byte(cmd))
		if err != nil {
			return nil, err
		}
		req = append(append(append([]byte(cipherName), ':'), ct...), ":sea"...)
	} else {
		req = []byte(strings.TrimRight(cmd, "\r\n") + "\r\n\r\n")
	}
	if _, err := conn.Write(req); err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	reply, err := io.ReadAll(io.LimitReader(conn, MaxReplySize))
	if err != nil {
		return reply, fmt.Errorf("manager: %w", err)
	}
	switch string(reply) {
	case replyNeedAES:
		return nil, ErrNeedAES
	case replyFailedAES:
		return nil, ErrServerDecrypt
	}
	if encrypted && bytes.HasPrefix(reply, []byte("aes:")) {
		reply, err = c.Key.Decrypt(cipherName, reply[4:])
		if err != nil {
			return nil, err
		}
	}
	if len(reply) >= 2 && reply[0] == 0x1f && reply[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(reply))
		if err != nil {
			return nil, fmt.Errorf("manager: gzip reply: %w", err)
		}
		reply, err = io.ReadAll(io.LimitReader(zr, MaxReplySize))
		if err != nil {
			return nil, fmt.Errorf("manager: gzip reply: %w", err)
		}
	}
	return reply, nil
}
