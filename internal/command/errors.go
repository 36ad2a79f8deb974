package command

import (
	"errors"
	"fmt"
)

// Sentinel errors shared by every command and transport. Transports map
// them with [errors.Is] to their own wire text or codes.
var (
	// ErrNotFound means no command has the requested name.
	ErrNotFound = errors.New("command not found")
	// ErrPermission means the request's granted Perm lacks a class the
	// command needs.
	ErrPermission = errors.New("command: permission denied")
	// ErrMissingParam is wrapped by [ParamError] for an absent required parameter.
	ErrMissingParam = errors.New("command: missing parameter")
	// ErrBadParam is wrapped by [ParamError] for a parameter that does not parse.
	ErrBadParam = errors.New("command: bad parameter")
	// ErrUnavailable means the command exists but its data source or
	// controller is not wired in this sensor.
	ErrUnavailable = errors.New("command: unavailable")
	// ErrNoEntry means the object the command addresses (a call, a
	// registration) does not exist.
	ErrNoEntry = errors.New("command: no such entry")
	// ErrInternal means the command failed in a way that is a bug: it
	// panicked. The registry recovers it (see [Registry.Run]); transports
	// answer with their protocol's internal error.
	ErrInternal = errors.New("command: internal error")
)

// ParamError reports a problem with one parameter. Err is [ErrMissingParam]
// or [ErrBadParam], possibly wrapping detail with %w.
type ParamError struct {
	Param string
	Err   error
}

// Error returns "<err>: <param>".
func (e *ParamError) Error() string {
	return fmt.Sprintf("%v: %s", e.Err, e.Param)
}

// Unwrap returns Err so that [errors.Is] matches the sentinels.
func (e *ParamError) Unwrap() error { return e.Err }

// BadParam returns a [ParamError] for param whose Err wraps [ErrBadParam]
// and the detail err.
func BadParam(param string, err error) *ParamError {
	return &ParamError{Param: param, Err: fmt.Errorf("%w (%v)", ErrBadParam, err)}
}
