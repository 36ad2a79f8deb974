package config

// Ladder sizes the memory that keeps the SIP messages of calls for the
// console's ladder and the history (the call table's ladder log): one
// budget for every call together and a cap per message. VoIPmonitor has
// no such setting (its GUI reads SIP from the spool); after a call has
// left the log, its ladder comes from its SIP pcap (savesip = yes). The
// zero value selects the defaults.
type Ladder struct {
	MemoryMB     int // ladder_memory_mb: the log's budget in MB (0: DefaultLadderMemoryMB)
	MessageBytes int // ladder_message_bytes: text kept of each message (0: DefaultLadderMessageBytes)
}

// Defaults of [Ladder].
const (
	DefaultLadderMemoryMB     = 16
	DefaultLadderMessageBytes = 16 << 10
	// MaxLadderMessageBytes is the largest ladder_message_bytes: the log
	// keeps a message's length in 16 bits.
	MaxLadderMessageBytes = 1<<16 - 1
)

// Bytes returns the log's budget and the text kept per message, in
// bytes, defaults applied.
func (l Ladder) Bytes() (budget, perMessage int) {
	budget, perMessage = l.MemoryMB<<20, l.MessageBytes
	if budget == 0 {
		budget = DefaultLadderMemoryMB << 20
	}
	if perMessage == 0 {
		perMessage = DefaultLadderMessageBytes
	}
	return budget, perMessage
}

// ladderOptions are the keys of [Ladder]; none is live.
func ladderOptions() []*option {
	return []*option{
		intOpt("ladder_memory_mb", false, func(c *Config) *int { return &c.Ladder.MemoryMB }, 0, 1<<14),
		intOpt("ladder_message_bytes", false, func(c *Config) *int { return &c.Ladder.MessageBytes }, 0, MaxLadderMessageBytes),
	}
}
