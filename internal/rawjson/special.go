package rawjson

import (
	"encoding/binary"
	"math/bits"
)

// Special returns the index of the first byte of data at or after i that
// ends or interrupts a run of plain string bytes: a quote, a backslash or
// a control character (below 0x20), and also, when high is set, a byte
// of 0x80 or more (part of a UTF-8 sequence to check); len(data) when
// there is none. It tests eight bytes at a time, so a scanner spends its
// time on the bytes that need it.
func Special(data []byte, i int, high bool) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	for ; i+8 <= len(data); i += 8 {
		x := binary.LittleEndian.Uint64(data[i:])
		q, b := x^(ones*'"'), x^(ones*'\\')
		// The lowest byte each term flags is exact (a borrow only runs
		// upwards), so the lowest of their union is too.
		m := (q-ones)&^q | (b-ones)&^b | (x-ones*0x20)&^x
		if high {
			m |= x
		}
		if m &= highs; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(data); i++ {
		if c := data[i]; c == '"' || c == '\\' || c < 0x20 || high && c >= 0x80 {
			return i
		}
	}
	return len(data)
}
