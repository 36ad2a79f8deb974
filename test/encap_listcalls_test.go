package test

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/capture"
	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/gen"
	"github.com/voipsensor/voipsensor/internal/tableview"
)

// TestEncapListCalls: listcalls' callerip_encaps, calledip_encaps and
// *_encaps_prot of a call in progress on each generated encapsulation are
// the sniffer's: the outermost IP header that carried a tunnel and its IP
// protocol (sniff_inline.cpp keeps the first IP header as
// header_ip_encaps; calltable.cpp reports header_ip_protocol(true) of the
// INVITE), 0 and 255 when no IP header carried one (VLAN, PPPoE, MPLS).
func TestEncapListCalls(t *testing.T) {
	for _, kind := range gen.Encaps {
		t.Run(kind, func(t *testing.T) {
			tab := calltable.New(calltable.Config{}, nil)
			f, err := capture.OpenFile(filepath.Join("testdata", "encap", kind+".pcap"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			dec := decode.NewDecoder(decode.Config{})
			var fr capture.Frame
			for {
				if err := f.ReadFrame(&fr); err != nil {
					if !errors.Is(err, io.EOF) {
						t.Fatal(err)
					}
					break
				}
				dec.Decode(&fr, withoutBYE{tab})
			}
			rows := tableview.NewSource(tab, -1, false).ActiveCalls(false)
			if len(rows) != 1 {
				t.Fatalf("%d calls in progress, want 1", len(rows))
			}
			var wantProto uint8
			wantSrc, wantDst := netip.Addr{}, netip.Addr{}
			v4 := func() { wantSrc, wantDst = netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2") }
			switch kind {
			case "ipip":
				wantProto = 4
				v4()
			case "ip4in6":
				wantProto = 4
				wantSrc, wantDst = netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
			case "gre", "gre-teb", "erspan1", "erspan2", "erspan3":
				wantProto = 47
				v4()
			case "vxlan", "tzsp", "l2tp":
				wantProto = 17
				v4()
			}
			r := rows[0]
			gotProto := r.EncapProto
			if !r.CallerEncap.IsValid() && !r.CalledEncap.IsValid() {
				gotProto = 0
			}
			if r.CallerEncap != wantSrc || r.CalledEncap != wantDst || gotProto != wantProto {
				t.Errorf("callerip_encaps %v calledip_encaps %v prot %d; want %v %v %d",
					r.CallerEncap, r.CalledEncap, gotProto, wantSrc, wantDst, wantProto)
			}
		})
	}
}

// withoutBYE feeds the table everything but the BYE transaction, so that
// the call is still in progress at the end of the file.
type withoutBYE struct{ t *calltable.Table }

func (h withoutBYE) HandleDatagram(dg *decode.Datagram) {
	if !bytes.Contains(dg.Payload, []byte(" BYE\r\n")) {
		h.t.HandleDatagram(dg)
	}
}
