package ami

import "errors"

// Sentinel errors. Framing errors are reported with the message they spoil
// and answered on the wire; the session stays open.
var (
	// ErrLineTooLong means a line exceeded [MaxLine] bytes.
	ErrLineTooLong = errors.New("ami: line too long")
	// ErrTooManyHeaders means a message had more than [MaxHeaders] lines.
	ErrTooManyHeaders = errors.New("ami: too many headers")
	// ErrConfig wraps every manager.conf parse error.
	ErrConfig = errors.New("ami: bad configuration")
	// ErrFilter means an event filter did not compile or was malformed.
	ErrFilter = errors.New("ami: bad event filter")
	// ErrServerClosed is returned by Run when Listen was not called, or
	// when Run was called before.
	ErrServerClosed = errors.New("ami: server closed")
)
