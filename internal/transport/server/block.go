package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Block frame constants.
const (
	// BlockHeaderSize is the size of the block header in bytes.
	BlockHeaderSize = 40
	// BlockMagic opens every block header (NUL-padded to 30 bytes).
	BlockMagic = "vm_cloud_router_block_header"
	// MaxBlockSize bounds one block payload a reader accepts, in bytes.
	MaxBlockSize = 16 << 20
)

// Block errors.
var (
	// ErrBadBlock means the bytes did not start with a block header.
	ErrBadBlock = errors.New("server: bad block header")
	// ErrBlockTooLarge means a header announced more than the reader's limit.
	ErrBlockTooLarge = errors.New("server: block too large")
	// ErrChecksum means a decoded payload does not match the header's sum.
	ErrChecksum = errors.New("server: block checksum mismatch")
)

// Sum is the block checksum: the byte-wise sum of the plaintext payload,
// wrapping modulo 2^32.
func Sum(b []byte) uint32 {
	var s uint32
	for _, c := range b {
		s += uint32(c)
	}
	return s
}

// AppendBlock appends one block to dst: the header announcing len(payload)
// bytes with checksum sum, then payload. For a plain block sum is
// Sum(payload); for an encrypted one it is the Sum of the plaintext.
//
//	offset  size  field
//	0       30    "vm_cloud_router_block_header", NUL-padded
//	30      2     alignment padding (zero)
//	32      4     length of the payload as sent (little-endian)
//	36      4     byte sum of the plaintext payload (little-endian)
//	40      n     payload
func AppendBlock(dst, payload []byte, sum uint32) []byte {
	var h [BlockHeaderSize]byte
	copy(h[:], BlockMagic)
	binary.LittleEndian.PutUint32(h[32:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[36:], sum)
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}

// BlockHeader is a decoded block header.
type BlockHeader struct {
	Length uint32
	Sum    uint32
}

// Unmarshal decodes a 40-byte header. Only the magic prefix is checked (as
// the legacy reader does); the padding bytes are ignored.
func (h *BlockHeader) Unmarshal(b []byte) error {
	if len(b) < BlockHeaderSize || !bytes.Equal(b[:len(BlockMagic)], []byte(BlockMagic)) {
		return ErrBadBlock
	}
	h.Length = binary.LittleEndian.Uint32(b[32:])
	h.Sum = binary.LittleEndian.Uint32(b[36:])
	return nil
}

// ReadBlock reads one block from r and returns its payload (a new slice)
// and header. A payload over max bytes (max <= 0 means MaxBlockSize) is
// [ErrBlockTooLarge] and nothing more is read. The checksum is not
// verified here, since for encrypted blocks it covers the plaintext.
func ReadBlock(r io.Reader, max int) ([]byte, BlockHeader, error) {
	if max <= 0 {
		max = MaxBlockSize
	}
	var hb [BlockHeaderSize]byte
	var h BlockHeader
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		return nil, h, err
	}
	if err := h.Unmarshal(hb[:]); err != nil {
		return nil, h, err
	}
	if uint64(h.Length) > uint64(max) {
		return nil, h, fmt.Errorf("%w: %d bytes, limit %d", ErrBlockTooLarge, h.Length, max)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(r, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, h, err
	}
	return p, h, nil
}

// readPlain reads a plain block and verifies its checksum.
func readPlain(r io.Reader, max int) ([]byte, error) {
	p, h, err := ReadBlock(r, max)
	if err != nil {
		return nil, err
	}
	if Sum(p) != h.Sum {
		return nil, ErrChecksum
	}
	return p, nil
}

// writePlain writes payload as one plain block.
func writePlain(w io.Writer, payload []byte) error {
	_, err := w.Write(AppendBlock(nil, payload, Sum(payload)))
	return err
}
