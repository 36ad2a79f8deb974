package rtp

import (
	"testing"
	"unsafe"
)

// TestStreamSize keeps Stream small enough for a call table of many
// thousands of streams.
func TestStreamSize(t *testing.T) {
	if got := unsafe.Sizeof(Stream{}); got > 640 {
		t.Errorf("unsafe.Sizeof(Stream{}) = %d, want <= 640", got)
	} else {
		t.Logf("unsafe.Sizeof(Stream{}) = %d", got)
	}
}
