package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// The tests of the block reader: pcapng's variants built by hand (pcapgo's
// writer makes only little-endian files of Enhanced Packet Blocks), and
// the same frames, truncation and errors as pcapgo's reader on every
// input: the shared captures, each of them cut short, and the fuzzer's.

// ngFile builds a pcapng file block by block.
type ngFile struct {
	b  bytes.Buffer
	be bool // the current section's byte order
}

func (w *ngFile) order() binary.AppendByteOrder {
	if w.be {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// block writes a block of type typ around body (padded to 32 bits).
func (w *ngFile) block(typ uint32, body []byte) {
	body = append(body, make([]byte, (4-len(body)%4)%4)...)
	o := w.order()
	total := uint32(12 + len(body))
	w.b.Write(o.AppendUint32(o.AppendUint32(nil, typ), total))
	w.b.Write(body)
	w.b.Write(o.AppendUint32(nil, total))
}

// ngOpt is an option (code, value), written padded.
func (w *ngFile) opts(opts ...ngOpt) []byte {
	o := w.order()
	var b []byte
	for _, op := range opts {
		b = o.AppendUint16(b, op.code)
		b = o.AppendUint16(b, uint16(len(op.val)))
		b = append(b, op.val...)
		b = append(b, make([]byte, (4-len(op.val)%4)%4)...)
	}
	if len(opts) > 0 {
		b = append(b, 0, 0, 0, 0) // opt_endofopt
	}
	return b
}

type ngOpt struct {
	code uint16
	val  []byte
}

func (w *ngFile) shb(be bool, opts ...ngOpt) {
	w.be = be
	o := w.order()
	body := o.AppendUint32(nil, ngByteOrderMagic)
	body = o.AppendUint16(o.AppendUint16(body, 1), 0)
	body = o.AppendUint64(body, ^uint64(0)) // section length unknown
	w.block(ngSHB, append(body, w.opts(opts...)...))
}

func (w *ngFile) idb(link LinkType, snaplen uint32, opts ...ngOpt) {
	o := w.order()
	body := o.AppendUint16(nil, uint16(link))
	body = o.AppendUint16(body, 0)
	body = o.AppendUint32(body, snaplen)
	w.block(ngIDB, append(body, w.opts(opts...)...))
}

func (w *ngFile) epb(iface uint32, ts uint64, data []byte, length int, opts ...ngOpt) {
	o := w.order()
	body := o.AppendUint32(nil, iface)
	body = o.AppendUint32(o.AppendUint32(body, uint32(ts>>32)), uint32(ts))
	body = o.AppendUint32(o.AppendUint32(body, uint32(len(data))), uint32(length))
	body = append(body, data...)
	body = append(body, make([]byte, (4-len(data)%4)%4)...)
	w.block(ngEPB, append(body, w.opts(opts...)...))
}

func (w *ngFile) pb(iface uint16, ts uint64, data []byte, length int) {
	o := w.order()
	body := o.AppendUint16(nil, iface)
	body = o.AppendUint16(body, 0) // drops count
	body = o.AppendUint32(o.AppendUint32(body, uint32(ts>>32)), uint32(ts))
	body = o.AppendUint32(o.AppendUint32(body, uint32(len(data))), uint32(length))
	w.block(ngPB, append(body, data...))
}

func (w *ngFile) spb(length int, data []byte) {
	w.block(ngSPB, append(w.order().AppendUint32(nil, uint32(length)), data...))
}

func u64(v uint64, be bool) []byte {
	if be {
		return binary.BigEndian.AppendUint64(nil, v)
	}
	return binary.LittleEndian.AppendUint64(nil, v)
}

// ngVariants builds a file with two sections, one in each byte order,
// interfaces of different link types and timestamp resolutions, every
// packet block type and blocks the reader skips, and the frames it holds.
func ngVariants() ([]byte, []record) {
	var w ngFile
	var want []record
	frame := func(n int, seed byte) []byte {
		d := make([]byte, n)
		for i := range d {
			d[i] = seed + byte(i)
		}
		return d
	}
	const sec = 1709294400 // 2024-03-01 12:00:00 UTC
	w.shb(false, ngOpt{4, []byte("voipsensor test")})
	w.idb(LinkTypeEthernet, 65535, ngOpt{2, []byte("eth0")}, ngOpt{ngOptTSResol, []byte{9}})
	w.idb(LinkTypeLinuxSLL, 64, ngOpt{ngOptTSOffset, u64(100, false)}) // µs by default, offset 100 s
	w.idb(LinkTypeRaw, 0, ngOpt{ngOptTSResol, []byte{0x80 | 20}})      // 2^-20 s
	w.block(ngNRB, []byte{1, 0, 9, 0, 10, 0, 0, 1, 'h', 'o', 's', 't', 0, 0, 0, 0, 0, 0, 0, 0})
	d := frame(61, 1)
	w.epb(0, sec*1e9+123456789, d, 61, ngOpt{1, []byte("a comment")}, ngOpt{2, []byte{1, 0, 0, 0}})
	want = append(want, record{d, time.Unix(sec, 123456789).UTC(), 61, LinkTypeEthernet, 0})
	d = frame(64, 2)
	w.epb(1, sec*1e6+654321, d, 1500)
	want = append(want, record{d, time.Unix(sec+100, 654321000).UTC(), 1500, LinkTypeLinuxSLL, 1})
	d = frame(40, 3)
	w.epb(2, sec<<20|1<<19, d, 40) // half a second in 2^-20 units, which pcapgo converts with 953 ns a unit
	want = append(want, record{d, time.Unix(sec, 1<<19*953).UTC(), 40, LinkTypeRaw, 2})
	w.block(ngISB, append(binary.LittleEndian.AppendUint32(nil, 1), make([]byte, 8)...))
	w.block(0x40000bad, []byte("a custom block, skipped"))
	d = frame(70, 4)
	w.spb(70, d)
	want = append(want, record{d, time.Time{}, 70, LinkTypeEthernet, 0})
	d = frame(33, 5)
	w.pb(1, sec*1e6+1, d, 33)
	want = append(want, record{d, time.Unix(sec+100, 1000).UTC(), 33, LinkTypeLinuxSLL, 1})

	// A second section, big-endian: its interfaces replace the first's.
	w.shb(true)
	w.idb(LinkTypeIPv4, 21, ngOpt{ngOptTSResol, []byte{3}}) // ms
	w.idb(LinkTypeLinuxSLL2, 32, ngOpt{ngOptTSResol, []byte{6}})
	d = frame(21, 6)
	w.epb(0, sec*1e3+7, d, 21)
	want = append(want, record{d, time.Unix(sec, 7e6).UTC(), 21, LinkTypeIPv4, 0})
	d = frame(32, 7)
	w.spb(25, frame(21, 8)) // a Simple Packet Block holds the snaplen of interface 0
	want = append(want, record{frame(21, 8), time.Time{}, 25, LinkTypeIPv4, 0})
	w.epb(1, sec*1e6+2, d, 100)
	want = append(want, record{d, time.Unix(sec, 2000).UTC(), 100, LinkTypeLinuxSLL2, 1})
	return w.b.Bytes(), want
}

func TestFilePcapngVariants(t *testing.T) {
	raw, want := ngVariants()
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			in := raw
			if gz {
				in = gzipBytes(t, raw)
			}
			f, err := NewFileReader(bytes.NewReader(in))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if diff := cmp.Diff(want, readAll(t, f)); diff != "" {
				t.Errorf("frames mismatch (-want +got):\n%s", diff)
			}
			if n := f.Truncated(); n != 0 {
				t.Errorf("Truncated() = %d, want 0", n)
			}
			if done, _ := f.Progress(); done != int64(len(in)) {
				t.Errorf("Progress() done = %d, want %d", done, len(in))
			}
			sameAsPcapgo(t, in)
		})
	}
}

// A record larger than the reader's 1 MiB buffer, in each format: the
// buffer grows for it.
func TestFileLargeRecord(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<20/16+3) // 3 MiB + 48 bytes
	small := []byte("a small frame after the big one")
	ts := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	want := []record{
		{big, ts, len(big), LinkTypeEthernet, 0},
		{small, ts.Add(time.Second), len(small), LinkTypeEthernet, 0},
	}
	classic := buildPcap(binary.LittleEndian, true, LinkTypeEthernet, want)
	binary.LittleEndian.PutUint32(classic[16:], 8<<20) // a snaplen that allows it
	var ng ngFile
	ng.shb(false)
	ng.idb(LinkTypeEthernet, 0, ngOpt{ngOptTSResol, []byte{9}})
	for _, r := range want {
		ng.epb(0, uint64(r.Time.UnixNano()), r.Data, r.Length)
	}
	for name, raw := range map[string][]byte{"pcap": classic, "pcapng": ng.b.Bytes(), "pcapng.gz": gzipBytes(t, ng.b.Bytes())} {
		t.Run(name, func(t *testing.T) {
			f, err := NewFileReader(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got := readAll(t, f)
			if len(got) != len(want) {
				t.Fatalf("%d frames, want %d", len(got), len(want))
			}
			for i := range got { // not cmp.Diff: it takes seconds over 3 MiB
				g, w := got[i], want[i]
				if !bytes.Equal(g.Data, w.Data) || g.Time != w.Time || g.Length != w.Length || g.LinkType != w.LinkType || g.Interface != w.Interface {
					t.Errorf("frame %d: %d bytes, %v, length %d; want %d bytes, %v, length %d", i, len(g.Data), g.Time, g.Length, len(w.Data), w.Time, w.Length)
				}
			}
			sameAsPcapgo(t, raw)
		})
	}
}

// Errors of damaged files, with pcapgo's texts.
func TestFileDamaged(t *testing.T) {
	recs := sampleRecords(LinkTypeEthernet)
	classic := buildPcap(binary.BigEndian, false, LinkTypeEthernet, recs)
	tooLong := bytes.Clone(classic)
	binary.BigEndian.PutUint32(tooLong[24+8:], 300000) // caplen of the first record > 262144 and > snaplen
	longerThanWire := bytes.Clone(classic)
	binary.BigEndian.PutUint32(longerThanWire[24+12:], 3) // original length 3 < caplen 20
	ngRaw, _ := ngVariants()
	badIface := bytes.Clone(ngRaw)
	i := bytes.Index(badIface, []byte{6, 0, 0, 0}) // the first Enhanced Packet Block, interface 0
	badIface[i+8] = 9
	tests := []struct {
		name string
		raw  []byte
		want string // ReadFrame's error after the good frames
	}{
		{"caplen over snaplen", tooLong, "capture: reader: capture length exceeds snap length: 300000 > 65535"},
		{"caplen over length", longerThanWire, "capture: reader: capture length exceeds original packet length: 20 > 3"},
		{"pcapng unknown interface", badIface, "capture: reader: Interface id 9 not present in section (have only 3 interfaces)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sameAsPcapgo(t, tt.raw)
			if got.err == nil || got.err.Error() != tt.want {
				t.Errorf("error %v, want %q", got.err, tt.want)
			}
		})
	}
}

// Every cut of a file: the frames before the cut, then the end pcapgo
// reports (truncated, clean, or its error).
func TestFileCutEverywhere(t *testing.T) {
	ngRaw, _ := ngVariants()
	classic := buildPcap(binary.LittleEndian, false, LinkTypeEthernet, sampleRecords(LinkTypeEthernet))
	for name, raw := range map[string][]byte{"pcap": classic, "pcapng": ngRaw} {
		t.Run(name, func(t *testing.T) {
			truncated := 0
			for cut := range len(raw) + 1 {
				if r := sameAsPcapgo(t, raw[:cut]); r.truncated > 0 {
					truncated++
				}
			}
			if truncated == 0 {
				t.Error("no cut was read as a truncated file")
			}
		})
		t.Run(name+".gz", func(t *testing.T) {
			gz := gzipBytes(t, raw)
			for cut := range len(gz) + 1 {
				sameAsPcapgoVia(t, gz[:cut], readAtOnce, readAheadLarge) // a gzip file is always read ahead
			}
		})
	}
}

// sharedCaptures lists the shared captures: ../shared/pcaps and its
// foreign/ directory.
func sharedCaptures(t *testing.T) []string {
	t.Helper()
	dir := filepath.Dir(sharedtest.Pcap(t, "sipp_rtpstream.pcap"))
	var out []string
	for _, d := range []string{dir, filepath.Join(dir, "foreign")} {
		ents, err := os.ReadDir(d)
		if err != nil {
			sharedtest.Missing(t, "shared captures absent: %v", err)
		}
		for _, e := range ents {
			if n := e.Name(); strings.HasSuffix(n, ".pcap") || strings.HasSuffix(n, ".pcapng") || strings.HasSuffix(n, ".cap") {
				out = append(out, filepath.Join(d, n))
			}
		}
	}
	return out
}

// TestFileSharedCapturesSameAsPcapgo: every shared capture, gzipped too,
// and copies cut at 32 places, read as pcapgo reads them (read ahead in
// tiny chunks only whole: a 3.7 MB file takes 100,000 blocks).
func TestFileSharedCapturesSameAsPcapgo(t *testing.T) {
	for _, name := range sharedCaptures(t) {
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(filepath.Base(name), func(t *testing.T) {
			r := sameAsPcapgo(t, raw)
			t.Logf("%d frames, error %v", r.frames, r.err) // NormB_sipnab_c07-sip-r2.cap is not a pcap file
			sameAsPcapgoVia(t, gzipBytes(t, raw), readAtOnce, readAheadLarge)
			for i := 1; i <= 32; i++ {
				sameAsPcapgoVia(t, raw[:len(raw)*i/33+i%7], readAtOnce, readAheadLarge)
			}
		})
	}
}

// readResult is how a reader read a file.
type readResult struct {
	frames    int
	err       error // the open's or ReadFrame's error other than io.EOF
	truncated uint64
}

// sameAsPcapgo reads raw with File and with pcapgo and reports any
// difference: the open's error, each frame (data, time, lengths, link
// type, interface), the error that ends the file, and truncation. File
// reads raw three ways: at once (a small file, on the caller's
// goroutine), and from a read-ahead goroutine in blocks of a few bytes to
// 70 KB (so that records straddle blocks, some longer than a block's
// headroom) and of 1 to 100 bytes.
func sameAsPcapgo(t testing.TB, raw []byte) readResult {
	t.Helper()
	return sameAsPcapgoVia(t, raw, readVariants[:]...)
}

// sameAsPcapgoVia is sameAsPcapgo with File reading only as vias say (the
// first is the result's).
func sameAsPcapgoVia(t testing.TB, raw []byte, vias ...readVariant) readResult {
	t.Helper()
	var got readResult
	for i, via := range vias {
		r, diff := compareWithPcapgo(raw, 0, via)
		if diff != "" {
			t.Errorf("%d bytes, %s: %s", len(raw), via, diff)
		}
		if i == 0 {
			got = r
		}
	}
	return got
}

// How File reads the bytes of a test.
type readVariant string

const (
	readAtOnce       readVariant = "at once"
	readAheadLarge   readVariant = "read ahead in chunks up to 70 KB"
	readAheadTiny    readVariant = "read ahead in chunks up to 100 bytes"
	readVariantCount             = 3
)

var readVariants = [readVariantCount]readVariant{readAtOnce, readAheadLarge, readAheadTiny}

// chunkReader returns its bytes in chunks of sizes cycling through sizes.
type chunkReader struct {
	b     []byte
	sizes []int
	i     int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.b), c.sizes[c.i%len(c.sizes)])
	c.i++
	n = copy(p, c.b[:n])
	c.b = c.b[n:]
	return n, nil
}

// openVariant opens raw for File as via says.
func openVariant(raw []byte, via readVariant) (*File, error) {
	switch via {
	case readAheadLarge:
		return newFile(&chunkReader{b: raw, sizes: []int{70000, 3, 65537, 4096, 131071, 1}}, "reader", -1, -1, true)
	case readAheadTiny:
		return newFile(&chunkReader{b: raw, sizes: []int{1, 7, 100, 16, 3, 64, 2}}, "reader", -1, -1, true)
	}
	return NewFileReader(bytes.NewReader(raw))
}

// compareWithPcapgo reads raw with both readers (at most limit frames
// when limit > 0), File as via says, and describes the first difference,
// "" when none.
func compareWithPcapgo(raw []byte, limit int, via readVariant) (readResult, string) {
	var res readResult
	f, err := openVariant(raw, via)
	ref, rerr := newPcapgoFile(bytes.NewReader(raw), "reader")
	if (err == nil) != (rerr == nil) || (err != nil && err.Error() != rerr.Error()) {
		return res, fmt.Sprintf("open: error %v, pcapgo's %v", err, rerr)
	}
	if err != nil {
		res.err = err
		return res, ""
	}
	defer f.Close()
	if errors.Is(err, ErrUnknownFormat) != errors.Is(rerr, ErrUnknownFormat) {
		return res, "open: ErrUnknownFormat differs"
	}
	var a, b Frame
	ended := false
	for limit <= 0 || res.frames < limit {
		err, rerr := f.ReadFrame(&a), ref.ReadFrame(&b)
		if (err == nil) != (rerr == nil) || (err != nil && err.Error() != rerr.Error()) {
			return res, fmt.Sprintf("after %d frames: ReadFrame error %v, pcapgo's %v", res.frames, err, rerr)
		}
		if err != nil {
			if err != io.EOF {
				res.err = err
			}
			ended = true
			break
		}
		if !bytes.Equal(a.Data, b.Data) || a.Time != b.Time || a.Length != b.Length || a.LinkType != b.LinkType || a.Interface != b.Interface {
			return res, fmt.Sprintf("frame %d: %d bytes, %v, length %d, link %d, interface %d; pcapgo's %d bytes, %v, length %d, link %d, interface %d",
				res.frames, len(a.Data), a.Time, a.Length, a.LinkType, a.Interface, len(b.Data), b.Time, b.Length, b.LinkType, b.Interface)
		}
		res.frames++
	}
	res.truncated = f.Truncated()
	if st := f.Stats(); ended && st.Frames != uint64(res.frames) {
		return res, fmt.Sprintf("Stats().Frames = %d, read %d", st.Frames, res.frames)
	}
	if res.truncated != ref.Truncated() {
		return res, fmt.Sprintf("Truncated() = %d, pcapgo's %d", res.truncated, ref.Truncated())
	}
	return res, ""
}

// FuzzReadFile reads any input with File and pcapgo: same frames, same
// end (clean, truncated or the same error), no panic. The seeds in
// testdata/fuzz/FuzzReadFile are every format variant, whole and cut.
func FuzzReadFile(f *testing.F) {
	ngRaw, _ := ngVariants()
	f.Add(ngRaw)
	f.Add(buildPcap(binary.BigEndian, true, LinkTypeLinuxSLL, sampleRecords(LinkTypeLinuxSLL)))
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, via := range readVariants {
			if _, diff := compareWithPcapgo(raw, 10000, via); diff != "" {
				t.Fatalf("%s: %s", via, diff)
			}
		}
	})
}

// Close stops the gzip goroutine, also when the file was not read to its
// end, and a ReadFrame after it returns ErrClosed.
func TestFileGzipClose(t *testing.T) {
	raw := gzipBytes(t, manyFrames(30000)) // 6.6 MB decompressed: the goroutine runs ahead and waits
	before := runtime.NumGoroutine()
	for range 5 {
		f, err := NewFileReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		var fr Frame
		for range 100 {
			if err := f.ReadFrame(&fr); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if err := f.ReadFrame(&fr); !errors.Is(err, ErrClosed) {
			t.Fatalf("ReadFrame after Close = %v, want ErrClosed", err)
		}
	}
	sharedtest.Eventually(t, 10*time.Second, "the gzip goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

// A frame's Data stays valid until the next ReadFrame, including the last
// frame of a block before the next (frames of 1,000 to 1,999 bytes
// straddle every block of this 10.5 MB file, read as it is and gzipped),
// and Progress reaches the file's size.
func TestFileDataValidUntilNextRead(t *testing.T) {
	var recs []record
	base := time.Unix(1700000000, 0)
	for i := range 7000 {
		d := bytes.Repeat([]byte{byte(i)}, 1000+i%1000)
		recs = append(recs, record{d, base.Add(time.Duration(i) * time.Millisecond), len(d), LinkTypeEthernet, 0})
	}
	plain := buildPcap(binary.LittleEndian, true, LinkTypeEthernet, recs)
	for name, raw := range map[string][]byte{"pcap": plain, "pcap.gz": gzipBytes(t, plain)} {
		t.Run(name, func(t *testing.T) {
			f, err := OpenFile(writeTemp(t, raw))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var fr Frame
			for i, r := range recs {
				if err := f.ReadFrame(&fr); err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if !bytes.Equal(fr.Data, r.Data) {
					t.Fatalf("frame %d: data differs", i)
				}
			}
			if err := f.ReadFrame(&fr); err != io.EOF {
				t.Fatalf("after the last frame: %v, want io.EOF", err)
			}
			if done, total := f.Progress(); done != int64(len(raw)) || total != int64(len(raw)) {
				t.Errorf("Progress() = %d, %d, want %d, %d", done, total, len(raw), len(raw))
			}
			if st := f.Stats(); st.Frames != uint64(len(recs)) {
				t.Errorf("Stats().Frames = %d, want %d", st.Frames, len(recs))
			}
		})
	}
}

func writeTemp(t testing.TB, raw []byte) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "capture")
	if err := os.WriteFile(name, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// benchCapture builds a capture like a VoIP trunk's: mostly 214-byte RTP
// frames, a SIP message of about 900 bytes every 50 frames. The bytes are
// random over 16 values, so that gzip compresses them about as much as
// G.711 speech (2:1), not as zeros.
func benchCapture(n int) []record {
	recs := make([]record, n)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	x := uint32(1)
	for i := range recs {
		d := make([]byte, 214)
		if i%50 == 0 {
			d = make([]byte, 900)
		}
		for j := range d {
			x = x*1664525 + 1013904223
			d[j] = byte(x>>28) * 17
		}
		recs[i] = record{d, base.Add(time.Duration(i) * 20 * time.Microsecond), len(d), LinkTypeEthernet, 0}
	}
	return recs
}

// BenchmarkReadFile reads a 200,000-frame capture file (48 MB, in the page
// cache) to its end, with pcapgo as File did before and with the block
// reader: classic pcap, pcapng and gzipped pcap. ns/op is per file;
// ns/frame per frame.
func BenchmarkReadFile(b *testing.B) {
	const n = 200000
	recs := benchCapture(n)
	classic := buildPcap(binary.LittleEndian, false, LinkTypeEthernet, recs)
	var ng bytes.Buffer
	w, err := pcapgo.NewNgWriter(&ng, layers.LinkTypeEthernet)
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range recs {
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: r.Time, CaptureLength: len(r.Data), Length: r.Length}, r.Data); err != nil {
			b.Fatal(err)
		}
	}
	w.Flush()
	files := []struct {
		name string
		raw  []byte
	}{
		{"pcap", classic},
		{"pcapng", ng.Bytes()},
		{"pcap.gz", gzipBytes(b, classic)},
	}
	for _, fl := range files {
		name := writeTemp(b, fl.raw)
		for _, impl := range []string{"pcapgo", "blocks"} {
			b.Run(fl.name+"/"+impl, func(b *testing.B) {
				b.SetBytes(int64(len(fl.raw)))
				b.ReportAllocs()
				for b.Loop() {
					osf, err := os.Open(name)
					if err != nil {
						b.Fatal(err)
					}
					var src Source
					if impl == "pcapgo" {
						src, err = newPcapgoFile(osf, name)
					} else {
						src, err = NewFileReader(osf)
					}
					if err != nil {
						b.Fatal(err)
					}
					var fr Frame
					got := 0
					for src.ReadFrame(&fr) == nil {
						got++
					}
					src.Close()
					osf.Close()
					if got != n {
						b.Fatalf("%d frames, want %d", got, n)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/frame")
			})
		}
	}
}
