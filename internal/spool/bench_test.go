package spool

import (
	"context"
	"encoding/binary"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/capture"
	"github.com/voipsensor/voipsensor/internal/decode"
)

// benchCalls are n calls in progress, each with one RTP frame to record
// (214 bytes on the wire, a 20 ms PCMU packet).
func benchCalls(b *testing.B, n int) (ids []string, frames []*capture.Frame, dgs []*decode.Datagram) {
	for c := 0; c < n; c++ {
		ids = append(ids, "bench-call-"+strconv.Itoa(c)+"@example.com")
		fr, dg := udpFrame(b, "10.0.0.1:4000", "10.0.0.2:4000", rtpPayload(uint16(c)), t0)
		frames, dgs = append(frames, fr), append(dgs, dg)
	}
	return ids, frames, dgs
}

// BenchmarkRecordPacketPath is the packet path's cost per frame: the
// copy into the batch under the leaf mutex. The writer does not run; the
// benchmark empties the batch itself, so that no frame is dropped.
func BenchmarkRecordPacketPath(b *testing.B) {
	r := New(Options{Dir: b.TempDir(), RTP: RTPFull})
	ids, frames, dgs := benchCalls(b, 200)
	b.ReportAllocs()
	b.SetBytes(int64(len(frames[0].Data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := i % len(ids)
		r.Frame(frames[c])
		r.Record(calltable.RecordRTP, uint64(c+1), ids[c], t0, dgs[c])
		if i%10000 == 9999 {
			r.mu.Lock()
			r.fill.data, r.fill.recs = r.fill.data[:0], r.fill.recs[:0]
			r.mu.Unlock()
		}
	}
	if d := r.Stats().Dropped; d > 0 {
		b.Fatalf("%d frames dropped", d)
	}
}

// BenchmarkRecordThroughput is what the writer sustains to disk: frames of
// 200 concurrent calls pushed as fast as the writer takes them without a
// drop (the producer backs off while the buffer is full, which capture
// never does), until every frame is in its pcap. "long" calls last the
// whole run; "short" ones end after 50 frames (1 s of RTP) and a new call
// takes their place, so files are created and closed all along; "many" are
// 4,000 long calls, as many files open.
func BenchmarkRecordThroughput(b *testing.B) {
	for _, tt := range []struct {
		name   string
		calls  int // at once
		frames int // per call; 0: the whole run
	}{{"long", 200, 0}, {"short", 200, 50}, {"many", 4000, 0}} {
		b.Run(tt.name, func(b *testing.B) { benchThroughput(b, tt.calls, tt.frames) })
	}
}

func benchThroughput(b *testing.B, calls, perCall int) {
	r := New(Options{Dir: b.TempDir(), RTP: RTPFull, BufferBytes: 16 << 20, Linger: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	ids, frames, dgs := benchCalls(b, calls)
	refs := make([]uint64, len(ids)) // each slot's current call
	sent := make([]int, len(ids))
	for c := range refs {
		refs[c] = uint64(c + 1)
	}
	next := uint64(len(ids))
	b.ResetTimer()
	start := time.Now()
	var dropped uint64
	for i := 0; i < b.N; i++ {
		c := i % len(ids)
		for {
			r.Frame(frames[c])
			r.Record(calltable.RecordRTP, refs[c], ids[c]+strconv.FormatUint(refs[c], 10), t0, dgs[c])
			if d := r.dropped.Load(); d == dropped {
				break
			} else {
				dropped = d
				runtime.Gosched()
			}
		}
		if sent[c]++; perCall > 0 && sent[c] == perCall {
			r.Ended(refs[c])
			next++
			refs[c], sent[c] = next, 0
		}
	}
	for c := range refs {
		r.Ended(refs[c])
	}
	for r.Stats().Frames < uint64(b.N) {
		time.Sleep(time.Millisecond)
	}
	el := time.Since(start).Seconds()
	b.StopTimer()
	cancel()
	<-done
	st := r.Stats()
	b.ReportMetric(float64(st.Frames)/el, "frames/s")
	b.ReportMetric(float64(st.Bytes)/el/1e6, "MB/s")
	b.ReportMetric(float64(st.FilesCreated)/el, "files/s")
}

// BenchmarkAudioPacketPath is the packet path's cost per RTP packet with
// saveaudio: the copy of its flow and payload into the batch, alone and
// beside savertp's copy of the frame.
func BenchmarkAudioPacketPath(b *testing.B) {
	for _, tt := range []struct {
		name string
		opt  Options
	}{{"audio", Options{Audio: true}}, {"rtp+audio", Options{RTP: RTPFull, Audio: true}}} {
		b.Run(tt.name, func(b *testing.B) {
			tt.opt.Dir = b.TempDir()
			r := New(tt.opt)
			ids, frames, dgs := benchCalls(b, 200)
			b.ReportAllocs()
			b.SetBytes(int64(len(frames[0].Data)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c := i % len(ids)
				r.Frame(frames[c])
				r.Record(calltable.RecordRTP, uint64(c+1), ids[c], t0, dgs[c])
				if i%10000 == 9999 {
					r.mu.Lock()
					r.fill.data, r.fill.recs = r.fill.data[:0], r.fill.recs[:0]
					r.mu.Unlock()
				}
			}
			if st := r.Stats(); st.Dropped+st.AudioDropped > 0 {
				b.Fatalf("%d frames and %d audio packets dropped", st.Dropped, st.AudioDropped)
			}
		})
	}
}

// BenchmarkAudioThroughput is what the writer sustains decoding calls
// into WAVs: 200 concurrent G.711 calls (one direction each, 20 ms
// packets, their INVITE's SDP first) pushed as fast as the writer takes
// them without a drop, until every packet is in its WAV. "realtime_calls"
// is how many such one-way streams that rate would carry live (50 packets
// a second each).
func BenchmarkAudioThroughput(b *testing.B) {
	r := New(Options{Dir: b.TempDir(), Audio: true, BufferBytes: 16 << 20})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	ids, frames, dgs := benchCalls(b, 200)
	sdp := "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	invite := "INVITE sip:b@x SIP/2.0\r\nFrom: <sip:a@x>;tag=a1\r\nTo: <sip:b@x>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n" +
		"Content-Type: application/sdp\r\nContent-Length: " + strconv.Itoa(len(sdp)) + "\r\n\r\n" + sdp
	fr, dg := udpFrame(b, "10.0.0.1:5060", "10.0.0.2:5060", []byte(invite), t0)
	for c := range ids {
		r.Frame(fr)
		r.Record(calltable.RecordSIP, uint64(c+1), ids[c], t0, dg)
	}
	b.ResetTimer()
	start := time.Now()
	var dropped uint64
	for i := 0; i < b.N; i++ {
		c, k := i%len(ids), i/len(ids)
		p := dgs[c].Payload
		binary.BigEndian.PutUint16(p[2:], uint16(k))
		binary.BigEndian.PutUint32(p[4:], uint32(k*160))
		dgs[c].Time = t0.Add(time.Duration(k) * 20 * time.Millisecond)
		for {
			r.Frame(frames[c])
			r.Record(calltable.RecordRTP, uint64(c+1), ids[c], t0, dgs[c])
			if d := r.audioDropped.Load(); d == dropped {
				break
			} else {
				dropped = d
				runtime.Gosched()
			}
		}
	}
	for c := range ids {
		r.Ended(uint64(c + 1))
	}
	for r.Stats().AudioPackets < uint64(b.N) {
		time.Sleep(time.Millisecond)
	}
	el := time.Since(start).Seconds()
	b.StopTimer()
	cancel()
	<-done
	st := r.Stats()
	if st.AudioLost+st.AudioLate+st.Errors > 0 {
		b.Fatalf("stats %+v: packets lost", st)
	}
	b.ReportMetric(float64(st.AudioPackets)/el, "packets/s")
	b.ReportMetric(float64(st.AudioBytes)/el/1e6, "MB/s")
	b.ReportMetric(float64(st.AudioPackets)/el/50, "realtime_calls")
}
