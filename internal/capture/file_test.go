package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// record is one frame as a test expects to read it.
type record struct {
	Data      []byte
	Time      time.Time
	Length    int
	LinkType  LinkType
	Interface int
}

// readAll reads every frame from s, copying Data.
func readAll(t testing.TB, s Source) []record {
	t.Helper()
	var out []record
	var fr Frame
	for {
		err := s.ReadFrame(&fr)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("ReadFrame after %d frames: %v", len(out), err)
		}
		out = append(out, record{bytes.Clone(fr.Data), fr.Time, fr.Length, fr.LinkType, fr.Interface})
	}
}

func openAll(t testing.TB, path string) []record {
	t.Helper()
	f, err := OpenFile(path)
	if err != nil {
		t.Fatalf("OpenFile(%s): %v", path, err)
	}
	defer f.Close()
	return readAll(t, f)
}

// buildPcap writes a classic pcap file by hand (independently of pcapgo's
// writer), in the given byte order and timestamp resolution.
func buildPcap(order binary.ByteOrder, nano bool, link LinkType, recs []record) []byte {
	var b bytes.Buffer
	hdr := make([]byte, 24)
	magic := uint32(0xa1b2c3d4)
	if nano {
		magic = 0xa1b23c4d
	}
	order.PutUint32(hdr[0:], magic)
	order.PutUint16(hdr[4:], 2)
	order.PutUint16(hdr[6:], 4)
	order.PutUint32(hdr[16:], 65535)
	order.PutUint32(hdr[20:], uint32(link))
	b.Write(hdr)
	for _, r := range recs {
		rh := make([]byte, 16)
		order.PutUint32(rh[0:], uint32(r.Time.Unix()))
		frac := uint32(r.Time.Nanosecond())
		if !nano {
			frac /= 1000
		}
		order.PutUint32(rh[4:], frac)
		order.PutUint32(rh[8:], uint32(len(r.Data)))
		order.PutUint32(rh[12:], uint32(r.Length))
		b.Write(rh)
		b.Write(r.Data)
	}
	return b.Bytes()
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// sampleRecords returns three frames with nanosecond timestamps. Data
// content does not matter to the file reader.
func sampleRecords(link LinkType) []record {
	base := time.Date(2024, 3, 1, 12, 0, 0, 123456789, time.UTC)
	var recs []record
	for i := range 3 {
		data := bytes.Repeat([]byte{byte(0x40 + i)}, 20+i*7)
		recs = append(recs, record{Data: data, Time: base.Add(time.Duration(i) * 1500 * time.Microsecond), Length: len(data) + i, LinkType: link})
	}
	return recs
}

func TestFileFormats(t *testing.T) {
	tests := []struct {
		name  string
		order binary.ByteOrder
		nano  bool
		link  LinkType
		gzip  bool
	}{
		{"le-micro-ethernet", binary.LittleEndian, false, LinkTypeEthernet, false},
		{"be-micro-ethernet", binary.BigEndian, false, LinkTypeEthernet, false},
		{"le-nano-sll", binary.LittleEndian, true, LinkTypeLinuxSLL, false},
		{"be-nano-sll2", binary.BigEndian, true, LinkTypeLinuxSLL2, false},
		{"le-nano-raw", binary.LittleEndian, true, LinkTypeRaw, false},
		{"be-micro-ipv6", binary.BigEndian, false, LinkTypeIPv6, false},
		{"gzip-le-nano-null", binary.LittleEndian, true, LinkTypeNull, true},
		{"gzip-be-micro-ipv4", binary.BigEndian, false, LinkTypeIPv4, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := sampleRecords(tt.link)
			raw := buildPcap(tt.order, tt.nano, tt.link, want)
			if tt.gzip {
				raw = gzipBytes(t, raw)
			}
			if !tt.nano {
				for i := range want {
					want[i].Time = want[i].Time.Truncate(time.Microsecond)
				}
			}
			f, err := NewFileReader(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("NewFileReader: %v", err)
			}
			got := readAll(t, f)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("frames mismatch (-want +got):\n%s", diff)
			}
			if done, total := f.Progress(); done != int64(len(raw)) || total != -1 {
				t.Errorf("Progress() = %d, %d, want %d, -1", done, total, len(raw))
			}
			if st := f.Stats(); st.Frames != 3 {
				t.Errorf("Stats().Frames = %d, want 3", st.Frames)
			}
			if n := f.Truncated(); n != 0 {
				t.Errorf("Truncated() = %d, want 0", n)
			}
		})
	}
}

func TestFilePcapngMixedLinkTypes(t *testing.T) {
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriterInterface(&buf, pcapgo.NgInterface{LinkType: layers.LinkTypeEthernet, SnapLength: 65535, TimestampResolution: 9}, pcapgo.DefaultNgWriterOptions)
	if err != nil {
		t.Fatal(err)
	}
	sll2, err := w.AddInterface(pcapgo.NgInterface{LinkType: layers.LinkType(LinkTypeLinuxSLL2), SnapLength: 65535, TimestampResolution: 9})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2024, 3, 1, 12, 0, 0, 987654321, time.UTC)
	want := []record{
		{Data: []byte("ethernet frame bytes"), Time: base, Length: 20, LinkType: LinkTypeEthernet, Interface: 0},
		{Data: []byte("sll2 frame bytes, longer"), Time: base.Add(time.Millisecond), Length: 99, LinkType: LinkTypeLinuxSLL2, Interface: sll2},
		{Data: []byte("ethernet again"), Time: base.Add(2 * time.Millisecond), Length: 14, LinkType: LinkTypeEthernet, Interface: 0},
	}
	for _, r := range want {
		ci := gopacket.CaptureInfo{Timestamp: r.Time, CaptureLength: len(r.Data), Length: r.Length, InterfaceIndex: r.Interface}
		if err := w.WritePacket(ci, r.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f, err := NewFileReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("NewFileReader: %v", err)
	}
	if diff := cmp.Diff(want, readAll(t, f)); diff != "" {
		t.Errorf("frames mismatch (-want +got):\n%s", diff)
	}
}

func TestFileTruncatedLastRecord(t *testing.T) {
	recs := sampleRecords(LinkTypeEthernet)
	full := buildPcap(binary.LittleEndian, true, LinkTypeEthernet, recs)
	lastLen := 16 + len(recs[2].Data)
	tests := []struct {
		name      string
		cut       int // bytes removed from the end
		wantN     int
		truncated uint64
	}{
		{"complete", 0, 3, 0},
		{"data cut", 5, 2, 1},
		{"header cut", lastLen - 7, 2, 1},
		{"whole record gone", lastLen, 2, 0},
	}
	for _, tt := range tests {
		for _, gz := range []bool{false, true} {
			name := tt.name
			raw := full[:len(full)-tt.cut]
			if gz {
				name += "/gzip"
				raw = gzipBytes(t, raw)
			}
			t.Run(name, func(t *testing.T) {
				f, err := NewFileReader(bytes.NewReader(raw))
				if err != nil {
					t.Fatal(err)
				}
				got := readAll(t, f)
				if len(got) != tt.wantN {
					t.Errorf("read %d frames, want %d", len(got), tt.wantN)
				}
				if n := f.Truncated(); n != tt.truncated {
					t.Errorf("Truncated() = %d, want %d", n, tt.truncated)
				}
				var fr Frame
				if err := f.ReadFrame(&fr); err != io.EOF {
					t.Errorf("ReadFrame after end = %v, want io.EOF", err)
				}
			})
		}
	}
}

func TestFileTruncatedPcapng(t *testing.T) {
	raw, err := os.ReadFile("testdata/rtp5.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewFileReader(bytes.NewReader(raw[:len(raw)-10]))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(readAll(t, f)); got != 4 {
		t.Errorf("read %d frames, want 4", got)
	}
	if n := f.Truncated(); n != 1 {
		t.Errorf("Truncated() = %d, want 1", n)
	}
}

func TestFileUnknownFormat(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"short", []byte{0xd4, 0xc3}},
		{"text", []byte("INVITE sip:bob@example.com SIP/2.0\r\n")},
		{"gzipped text", gzipBytes(t, []byte("hello, not a capture"))},
		{"pcap bad version", func() []byte {
			b := buildPcap(binary.LittleEndian, false, LinkTypeEthernet, nil)
			b[4] = 9
			return b
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewFileReader(bytes.NewReader(tt.in))
			if !errors.Is(err, ErrUnknownFormat) {
				t.Errorf("NewFileReader(%q) error = %v, want ErrUnknownFormat", tt.in, err)
			}
		})
	}
	if _, err := OpenFile(filepath.Join(t.TempDir(), "missing.pcap")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenFile(missing) error = %v, want os.ErrNotExist", err)
	}
}

func TestFileClose(t *testing.T) {
	f, err := OpenFile("testdata/rtp5_ns.pcap")
	if err != nil {
		t.Fatal(err)
	}
	var fr Frame
	if err := f.ReadFrame(&fr); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := f.ReadFrame(&fr); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadFrame after Close = %v, want ErrClosed", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

// TestFileFixtures compares the editcap-made fixtures (nanosecond pcap and
// gzipped pcapng of the first 5 frames of sipp_rtpstream.pcap) with the
// original.
func TestFileFixtures(t *testing.T) {
	src := sharedtest.Pcap(t, "sipp_rtpstream.pcap")
	if _, err := os.Stat(src); err != nil {
		sharedtest.Missing(t, "shared captures absent: %v", err)
	}
	want := openAll(t, src)[:5]
	for _, name := range []string{"testdata/rtp5_ns.pcap", "testdata/rtp5.pcapng", "testdata/rtp5.pcapng.gz"} {
		t.Run(name, func(t *testing.T) {
			f, err := OpenFile(name)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got := readAll(t, f)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("frames mismatch (-want +got):\n%s", diff)
			}
			fi, _ := os.Stat(name)
			if done, total := f.Progress(); done != fi.Size() || total != fi.Size() {
				t.Errorf("Progress() = %d, %d, want %d, %d", done, total, fi.Size(), fi.Size())
			}
		})
	}
}

// capinfosCount returns the number of frames in path as counted by capinfos,
// or -1 when it is not installed.
func capinfosCount(t *testing.T, path string) int {
	t.Helper()
	bin, err := exec.LookPath("capinfos")
	if err != nil {
		return -1
	}
	out, err := exec.Command(bin, "-c", "-M", "-T", "-r", path).Output()
	if err != nil {
		t.Fatalf("capinfos %s: %v", path, err)
	}
	fields := strings.Fields(strings.TrimSpace(string(out)))
	n, err := strconv.Atoi(fields[len(fields)-1])
	if err != nil {
		t.Fatalf("capinfos output %q: %v", out, err)
	}
	return n
}

func TestFileSharedPcapVsPcapng(t *testing.T) {
	pcapPath := sharedtest.Pcap(t, "sipp_rtpstream.pcap")
	ngPath := sharedtest.Pcap(t, "sipp_rtpstream.pcapng")
	if _, err := os.Stat(ngPath); err != nil {
		sharedtest.Missing(t, "shared captures absent: %v", err)
	}
	a := openAll(t, pcapPath)
	b := openAll(t, ngPath)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("pcap and pcapng frames differ (-pcap +pcapng):\n%s", diff)
	}
	if n := capinfosCount(t, pcapPath); n >= 0 && len(a) != n {
		t.Errorf("read %d frames, capinfos counts %d", len(a), n)
	}
	if len(a) == 0 || a[0].LinkType != LinkTypeEthernet {
		t.Errorf("first frame = %+v, want an Ethernet frame", a[:min(1, len(a))])
	}
}

// manyFrames builds an in-memory pcap of n 200-byte frames.
func manyFrames(n int) []byte {
	recs := make([]record, n)
	base := time.Unix(1700000000, 0)
	for i := range recs {
		recs[i] = record{Data: make([]byte, 200), Time: base.Add(time.Duration(i) * 20 * time.Millisecond), Length: 200}
	}
	return buildPcap(binary.LittleEndian, false, LinkTypeEthernet, recs)
}

func TestFileReadFrameAllocs(t *testing.T) {
	for _, ng := range []bool{false, true} {
		raw := manyFrames(2000)
		if ng {
			var buf bytes.Buffer
			w, err := pcapgo.NewNgWriter(&buf, layers.LinkTypeEthernet)
			if err != nil {
				t.Fatal(err)
			}
			pr, _ := pcapgo.NewReader(bytes.NewReader(raw))
			for {
				d, ci, err := pr.ReadPacketData()
				if err != nil {
					break
				}
				if err := w.WritePacket(ci, d); err != nil {
					t.Fatal(err)
				}
			}
			w.Flush()
			raw = buf.Bytes()
		}
		f, err := NewFileReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		var fr Frame
		f.ReadFrame(&fr) // warm up the buffer
		allocs := testing.AllocsPerRun(1000, func() {
			if err := f.ReadFrame(&fr); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("pcapng=%v: ReadFrame allocates %.1f times per frame, want 0", ng, allocs)
		}
	}
}

func BenchmarkFileReadFrame(b *testing.B) {
	raw := manyFrames(10000)
	b.ReportAllocs()
	b.SetBytes(200)
	var fr Frame
	f, _ := NewFileReader(bytes.NewReader(raw))
	for b.Loop() {
		if err := f.ReadFrame(&fr); err != nil {
			f, _ = NewFileReader(bytes.NewReader(raw))
		}
	}
}
