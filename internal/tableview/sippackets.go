package tableview

import (
	"strconv"
	"strings"

	"github.com/voipsensor/voipsensor/internal/command/calls"
)

// SIPPackets implements calls.PacketSource: the SIP packets the table keeps
// for the call with reference callRef ("0x…", as [CallRef] writes it),
// when it keeps them (calltable.Config.SIPPackets). The table is locked
// only to read the call's records.
func (ts Source) SIPPackets(callRef string) ([]calls.SIPPacket, bool) {
	if !ts.t.KeepsSIPPackets() {
		return nil, false
	}
	ref, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(callRef), "0x"), 16, 64)
	if err != nil {
		return nil, true
	}
	kept, _ := ts.t.SIPPackets(ref)
	out := make([]calls.SIPPacket, len(kept.Packets))
	for i, p := range kept.Packets {
		out[i] = calls.SIPPacket{
			Time:  p.Time.UnixMicro(),
			SrcIP: p.Src.Addr().Unmap(), SrcPort: p.Src.Port(),
			DstIP: p.Dst.Addr().Unmap(), DstPort: p.Dst.Port(),
			Line: p.Line, SIPLen: p.Size, PacketLen: p.FrameLen,
			CSeqMethod: snifferMethods[p.CSeqMethod.String()], CSeq: p.CSeq,
		}
	}
	return out, true
}

// snifferMethods number SIP methods as the sniffer does (calltable.h);
// a method it does not know is 0.
var snifferMethods = map[string]int{
	"INVITE": 1, "BYE": 2, "CANCEL": 3, "REGISTER": 4, "MESSAGE": 5, "INFO": 6, "SUBSCRIBE": 7,
	"OPTIONS": 8, "NOTIFY": 9, "ACK": 10, "PRACK": 11, "PUBLISH": 12, "REFER": 13, "UPDATE": 14,
}

var _ calls.PacketSource = Source{}
