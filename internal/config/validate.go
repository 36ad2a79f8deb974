package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
)

// Validate checks the constraints between keys that a single line cannot:
// the MySQL settings when sqldriver is mysql, the AES key and IV together,
// and a server destination with a password. Each problem is a [*ParseError]
// wrapping [ErrInvalid] that names the key and, when it came from a file,
// the file and line; several are joined with [errors.Join].
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, c.errAt(key, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)))
	}
	if c.SQLDriver == "mysql" {
		if c.MySQLHost == "" {
			bad("mysqlhost", "required when sqldriver = mysql")
		}
	}
	if c.ManagerAESKey.IsSet() != c.ManagerAESIV.IsSet() {
		if c.ManagerAESKey.IsSet() {
			bad("manager_aes_iv", "required when manager_aes_key is set")
		} else {
			bad("manager_aes_key", "required when manager_aes_iv is set")
		}
	}
	if c.ManagerAESKey.IsSet() {
		if k, err := base64.StdEncoding.DecodeString(c.ManagerAESKey.Reveal()); err != nil {
			bad("manager_aes_key", "not base64")
		} else if !slices.Contains([]int{16, 24, 32}, len(k)) {
			bad("manager_aes_key", "decodes to %d bytes, want 16, 24 or 32", len(k))
		}
	}
	if c.ManagerAESIV.IsSet() {
		if iv, err := base64.StdEncoding.DecodeString(c.ManagerAESIV.Reveal()); err != nil {
			bad("manager_aes_iv", "not base64")
		} else if len(iv) != 16 {
			bad("manager_aes_iv", "decodes to %d bytes, want 16", len(iv))
		}
	}
	if len(c.ServerDestination) > 0 && !c.ServerPassword.IsSet() {
		bad("server_password", "required when server_destination is set")
	}
	if c.ServerBind != "" && !c.ServerPassword.IsSet() {
		bad("server_password", "required when server_bind is set")
	}
	if c.AbsoluteTimeout < c.RTPTimeout {
		bad("absolute_timeout", "%v is shorter than rtptimeout %v", c.AbsoluteTimeout, c.RTPTimeout)
	}
	if c.CDRQueueSize < c.CDRBatchSize {
		bad("cdr_queue_size", "%d is smaller than cdr_batch_size %d", c.CDRQueueSize, c.CDRBatchSize)
	}
	return errors.Join(errs...)
}

// Reloadable compares two configurations key by key and sorts the keys whose
// value changed: applied lists those a running sensor can take over live
// (timeouts, limits, sipport, log level, CDR batching, manager AES settings),
// needRestart those that need a restart (binds, capture device, storage).
// Both lists are in key order.
func Reloadable(old, new *Config) (applied, needRestart []string) {
	for _, k := range Keys() {
		o := options[k]
		if slices.Equal(o.get(old), o.get(new)) {
			continue
		}
		if o.live {
			applied = append(applied, k)
		} else {
			needRestart = append(needRestart, k)
		}
	}
	return applied, needRestart
}
