// Package hsperf reads a HotSpot JVM's performance counters (the hsperfdata
// file jstat reads). The file is the JVM user's: every offset is checked.
package hsperf

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Layout of format version 2 (OpenJDK's perfMemory.hpp and perfData.hpp).
const (
	prologueSize = 32
	entryHeader  = 20
	majorVersion = 2

	typeLong = 'J'
	typeByte = 'B'
)

var magic = [4]byte{0xca, 0xfe, 0xc0, 0xc0}

// nativeOrder is this machine's byte_order value: 0 big endian, 1 little.
var nativeOrder = byte(binary.NativeEndian.Uint16([]byte{1, 0}))

// Reasons a file is refused, for callers that count them by reason.
var (
	ErrTruncated     = errors.New("truncated")
	ErrBadMagic      = errors.New("not an hsperfdata file")
	ErrForeignEndian = errors.New("foreign byte order")
	ErrVersion       = errors.New("unsupported version")
	ErrNotReady      = errors.New("not yet accessible")
	ErrCorrupt       = errors.New("corrupt entry")
)

// Counters are the longs and strings (byte vectors) of one file.
type Counters struct {
	Longs   map[string]int64
	Strings map[string]string
}

// Parse decodes a whole file, refusing anything out of bounds.
func Parse(b []byte) (*Counters, error) {
	if len(b) < prologueSize {
		return nil, fmt.Errorf("%w: %d bytes, a prologue needs %d", ErrTruncated, len(b), prologueSize)
	}
	if [4]byte(b[:4]) != magic {
		return nil, fmt.Errorf("%w: magic %x", ErrBadMagic, b[:4])
	}
	// A JVM writes its own order: one of another machine's is no file of ours.
	if b[4] != nativeOrder {
		return nil, fmt.Errorf("%w: byte_order %d", ErrForeignEndian, b[4])
	}
	order := binary.NativeEndian
	if b[5] != majorVersion {
		return nil, fmt.Errorf("%w: %d.%d", ErrVersion, b[5], b[6])
	}
	if b[7] != 1 {
		return nil, ErrNotReady
	}
	used := int64(order.Uint32(b[8:]))
	entryOffset := int64(order.Uint32(b[24:]))
	numEntries := int64(order.Uint32(b[28:]))
	if used > int64(len(b)) {
		return nil, fmt.Errorf("%w: %d bytes used, %d read", ErrTruncated, used, len(b))
	}
	if entryOffset < prologueSize || entryOffset > used || numEntries > (used-entryOffset)/entryHeader {
		return nil, fmt.Errorf("%w: %d entries at %d in %d bytes", ErrCorrupt, numEntries, entryOffset, used)
	}
	c := &Counters{Longs: make(map[string]int64, numEntries), Strings: make(map[string]string)}
	off := entryOffset
	for i := int64(0); i < numEntries; i++ {
		next, err := c.entry(b[:used], off, order)
		if err != nil {
			return nil, fmt.Errorf("entry %d at %d: %w", i, off, err)
		}
		off = next
	}
	return c, nil
}

func (c *Counters) entry(b []byte, off int64, order binary.ByteOrder) (int64, error) {
	if off+entryHeader > int64(len(b)) {
		return 0, ErrTruncated
	}
	h := b[off:]
	length := int64(int32(order.Uint32(h)))
	nameOff := int64(int32(order.Uint32(h[4:])))
	vectorLen := int64(int32(order.Uint32(h[8:])))
	dataType := h[12]
	dataOff := int64(int32(order.Uint32(h[16:])))
	if length < entryHeader || off+length > int64(len(b)) {
		return 0, fmt.Errorf("%w: length %d", ErrCorrupt, length)
	}
	e := b[off : off+length]
	if nameOff < entryHeader || nameOff >= length || dataOff < entryHeader || dataOff > length || vectorLen < 0 {
		return 0, fmt.Errorf("%w: name at %d, data at %d, length %d", ErrCorrupt, nameOff, dataOff, length)
	}
	name, ok := cString(e[nameOff:])
	if !ok || name == "" {
		return 0, fmt.Errorf("%w: unterminated name", ErrCorrupt)
	}
	switch {
	case dataType == typeLong && vectorLen == 0:
		if dataOff+8 > length {
			return 0, fmt.Errorf("%w: %s: long outside its entry", ErrCorrupt, name)
		}
		c.Longs[name] = int64(order.Uint64(e[dataOff:]))
	case dataType == typeByte && vectorLen > 0:
		if dataOff+vectorLen > length {
			return 0, fmt.Errorf("%w: %s: string outside its entry", ErrCorrupt, name)
		}
		s, _ := cString(e[dataOff : dataOff+vectorLen])
		c.Strings[name] = s
	}
	// Other types (vectors of longs, none in HotSpot today) are skipped.
	return off + length, nil
}

func cString(b []byte) (string, bool) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), true
		}
	}
	return string(b), false
}
