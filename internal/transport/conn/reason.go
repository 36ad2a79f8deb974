package conn

// ClosedState is why a session ended, after NATS' ClosedState. The first
// reason given to [Conn.Close] sticks; each is counted per listener.
type ClosedState uint8

// The reasons a session ends.
const (
	ClosedNone           ClosedState = iota // still open
	ClosedDone                              // the exchange is complete (one-shot protocols)
	ClosedClient                            // the client closed its side
	ClosedShutdown                          // the server is shutting down
	ClosedFirstRequest                      // no complete first request (or login) in time
	ClosedIdle                              // idle for too long
	ClosedSlowConsumer                      // outbound queue over its bound
	ClosedWriteTimeout                      // a write did not finish within the write timeout
	ClosedWriteError                        // a write failed
	ClosedReadError                         // a read failed (reset, ...)
	ClosedTooLarge                          // a request over the size limit
	ClosedProtocolError                     // bytes the framer cannot make sense of
	ClosedAuthFailed                        // authentication refused
	ClosedPanic                             // the handler panicked
	ClosedRefusedCap                        // refused: the listener's session cap
	ClosedRefusedUnauth                     // refused: the unauthenticated cap
	ClosedRefusedPerAddr                    // refused: the per-address cap
	numClosedStates
)

var closedNames = [numClosedStates]string{
	ClosedNone:           "open",
	ClosedDone:           "done",
	ClosedClient:         "client closed",
	ClosedShutdown:       "server shutdown",
	ClosedFirstRequest:   "first request timeout",
	ClosedIdle:           "idle timeout",
	ClosedSlowConsumer:   "slow consumer",
	ClosedWriteTimeout:   "write timeout",
	ClosedWriteError:     "write error",
	ClosedReadError:      "read error",
	ClosedTooLarge:       "request too large",
	ClosedProtocolError:  "protocol error",
	ClosedAuthFailed:     "authentication failed",
	ClosedPanic:          "internal error",
	ClosedRefusedCap:     "refused: session limit",
	ClosedRefusedUnauth:  "refused: unauthenticated session limit",
	ClosedRefusedPerAddr: "refused: per-address limit",
}

// String returns the reason as logged ("slow consumer").
func (r ClosedState) String() string {
	if r < numClosedStates {
		return closedNames[r]
	}
	return "unknown"
}

// Refused reports whether the connection was refused before its handler
// ran.
func (r ClosedState) Refused() bool {
	return r == ClosedRefusedCap || r == ClosedRefusedUnauth || r == ClosedRefusedPerAddr
}

// ClosedStates lists every reason but [ClosedNone], in order, for
// exporting the counters.
func ClosedStates() []ClosedState {
	out := make([]ClosedState, 0, numClosedStates-1)
	for r := ClosedDone; r < numClosedStates; r++ {
		out = append(out, r)
	}
	return out
}
