package conn

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// Workers runs requests that arrive without a connection of their own
// (MI datagrams, FIFO requests) on at most n goroutines, each guarded
// against panics like a session. Safe for concurrent use.
type Workers struct {
	name        string
	log         *slog.Logger
	sem         chan struct{}
	wg          sync.WaitGroup
	panics      atomic.Uint64
	stackLogged atomic.Bool
}

// NewWorkers returns a pool of n workers; log receives panics.
func NewWorkers(name string, n int, log *slog.Logger) *Workers {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Workers{name: name, log: log, sem: make(chan struct{}, max(n, 1))}
}

// Go runs fn on a worker, waiting for a free one first. When fn panics the
// panic is logged (the stack once per pool), counted, and onPanic (if not
// nil) is called to send the protocol's internal error.
func (w *Workers) Go(fn func(), onPanic func()) {
	w.sem <- struct{}{}
	w.wg.Add(1)
	go func() {
		defer func() { <-w.sem; w.wg.Done() }()
		defer func() {
			if v := recover(); v != nil {
				w.panicked(v)
				if onPanic != nil {
					func() {
						defer func() { recover() }()
						onPanic()
					}()
				}
			}
		}()
		fn()
	}()
}

func (w *Workers) panicked(v any) {
	n := w.panics.Add(1)
	if !w.stackLogged.Swap(true) {
		w.log.Error("request panicked", "listener", w.name, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		return
	}
	w.log.Error("request panicked", "listener", w.name, "panic", fmt.Sprint(v), "panics", n)
}

// Wait waits for every running request.
func (w *Workers) Wait() { w.wg.Wait() }

// Panics counts the requests that panicked.
func (w *Workers) Panics() uint64 { return w.panics.Load() }
