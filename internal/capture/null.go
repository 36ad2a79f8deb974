package capture

import "sync"

// Null returns a source that yields no frame: ReadFrame waits until Close
// and then returns ErrClosed. It is the packet source of a sensor that
// only analyses what its HEP collector receives (interface = none).
func Null() Source { return &null{closed: make(chan struct{})} }

type null struct {
	once   sync.Once
	closed chan struct{}
}

func (n *null) ReadFrame(*Frame) error { <-n.closed; return ErrClosed }
func (n *null) Stats() Stats           { return Stats{} }
func (n *null) Close() error           { n.once.Do(func() { close(n.closed) }); return nil }
