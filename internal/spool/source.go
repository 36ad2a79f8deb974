package spool

import "github.com/voipsensor/voipsensor/internal/capture"

// Source wraps src so that every frame it delivers is announced to r
// ([Recorder.Frame]) before it is decoded: the datagrams the table then
// attributes to calls are recorded from it. A sensor that records nothing
// does not wrap its source and pays nothing.
func Source(src capture.Source, r *Recorder) capture.Source {
	return &source{Source: src, r: r}
}

type source struct {
	capture.Source
	r *Recorder
}

func (s *source) ReadFrame(f *capture.Frame) error {
	if s.r.opt.Backpressure {
		s.r.waitRoom()
	}
	err := s.Source.ReadFrame(f)
	if err == nil {
		s.r.Frame(f)
	}
	return err
}
