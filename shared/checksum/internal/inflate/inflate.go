// Package inflate decodes DEFLATE streams (RFC 1951), the compression of module zips, in about
// half the CPU time of compress/flate. Verifying a module means inflating every file of its zip,
// and that is most of what a proxy's fill and the generator spend; the go command does it again
// on its side.
//
// The speed comes from a 64-bit bit buffer refilled eight bytes at a time, Huffman tables that
// decode a symbol in one lookup (two for the rare codes longer than the root table), and a loop
// that keeps its state in local variables. It accepts exactly the streams compress/flate accepts
// (the same rules for Huffman codes, code counts, symbols and distances), which the tests check
// against it, so a zip this package verifies is one the go command can extract.
package inflate

import (
	"encoding/binary"
	"errors"
	"io"
	"math/bits"
)

// ErrCorrupt is returned for a stream that breaks the format.
var ErrCorrupt = errors.New("inflate: corrupt input")

const (
	windowSize = 32 << 10 // the furthest back a match reaches
	outSize    = windowSize + 96<<10
	inSize     = 32 << 10
	// padding is how many zero bytes follow the input's end, so that refills never check for
	// it. A refill reads 8 bytes at inPos, and inPos is at most 7 bytes past what the stream has
	// consumed: a stream that ends within its input never reads past the padding, and one that
	// needs more has run past its end (fill reports it, and so does overrun for the bits).
	padding  = 16
	maxMatch = 258 // the longest match: the room a symbol needs in the output

	litRootBits  = 10
	distRootBits = 8
	clenRootBits = 7 // code-length codes are at most 7 bits: one level

	numLitLen = 288 // symbols of the fixed literal/length code; dynamic codes have at most 286
	numDist   = 32  // symbols of the fixed distance code; dynamic codes have at most 30
)

// A table entry is a uint32: the bits to consume in the low byte, the extra bits to read after
// them in bits 8-11, flags in bits 12-15 and a value in the high 16 bits (a literal byte, the base
// of a length or distance, a code-length symbol, or for a link the offset of its subtable).
const (
	flagLiteral = 1 << 12
	flagEnd     = 1 << 13 // end of block
	flagLink    = 1 << 14 // a subtable: consume the root bits, then index it with extra bits
	flagInvalid = 1 << 15 // a symbol no stream may use, or a code the table does not hold
)

// The base and extra bits of length symbols 257-285 and distance symbols 0-29 (RFC 1951 3.2.5).
var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	// codeOrder is the order in which a dynamic block gives the code-length code's lengths.
	codeOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

// state is where a Reader is in the stream between calls.
type state uint8

const (
	stateHeader  state = iota // at a block header
	stateHuffman              // inside a compressed block
	stateStored               // inside a stored block
	stateDone                 // after the final block
)

// A Reader decodes one DEFLATE stream at a time; Reset starts the next. Its buffers (about 220
// KiB) are reused across streams, so one Reader per goroutine serves a whole zip.
type Reader struct {
	src    io.Reader
	srcEOF bool // src is exhausted: in[realEnd:inEnd] is zero padding
	in     []byte
	inPos  int
	inEnd  int
	// realEnd is where the input really ends once srcEOF is set.
	realEnd int
	bits    uint64 // the next bits of input, the first in the low bit
	nbits   uint   // how many of them are valid; those above are the next input bytes or zero

	out     []byte // the last windowSize bytes of output, then what was decoded since
	o       int    // decoded up to here
	flushed int    // handed to Read up to here

	state      state
	final      bool // the current block is the stream's last
	storedLeft int

	lit, dist       []uint32 // the current block's tables
	dynLit, dynDist []uint32 // room for a dynamic block's tables
	fixLit, fixDist []uint32 // the fixed code's tables, built on first use
	clen            [1 << clenRootBits]uint32
	lengths         [numLitLen + numDist]uint8
	err             error
}

// NewReader returns a Reader of the stream r.
func NewReader(r io.Reader) *Reader {
	d := &Reader{in: make([]byte, inSize+padding), out: make([]byte, outSize)}
	d.Reset(r)
	return d
}

// Reset makes d read a new stream from r, keeping its buffers.
func (d *Reader) Reset(r io.Reader) {
	*d = Reader{
		src: r, in: d.in, out: d.out,
		dynLit: d.dynLit, dynDist: d.dynDist, fixLit: d.fixLit, fixDist: d.fixDist,
	}
}

// Close does nothing; it makes a Reader an io.ReadCloser, as archive/zip's decompressors are.
func (d *Reader) Close() error { return nil }

// Read reads decoded bytes. After the final block it returns io.EOF; a stream that breaks the
// format gives ErrCorrupt, one cut short io.ErrUnexpectedEOF.
func (d *Reader) Read(p []byte) (int, error) {
	for d.flushed == d.o {
		if d.err != nil {
			return 0, d.err
		}
		if d.state == stateDone {
			d.err = io.EOF
			return 0, io.EOF
		}
		if len(d.out)-d.o < maxMatch {
			d.slide()
		}
		if err := d.step(); err != nil {
			d.err = err
		}
	}
	n := copy(p, d.out[d.flushed:d.o])
	d.flushed += n
	return n, nil
}

// Rest returns the input the Reader read past the end of the stream: once Read has returned
// io.EOF, the bytes that follow the final block (the Reader reads its source ahead, in chunks).
// It returns nil before the end. The slice is valid until the next Reset or Read.
func (d *Reader) Rest() []byte {
	if d.state != stateDone {
		return nil
	}
	d.unread()
	end := d.inEnd
	if d.srcEOF {
		end = d.realEnd
	}
	if d.inPos >= end {
		return nil
	}
	return d.in[d.inPos:end]
}

// slide moves the last windowSize bytes of output to the front of the buffer, making room.
func (d *Reader) slide() {
	copy(d.out, d.out[d.o-windowSize:d.o])
	d.o = windowSize
	d.flushed = windowSize
}

// step decodes until it has output to hand over, the output buffer is full or the block ends.
func (d *Reader) step() error {
	switch d.state {
	case stateHeader:
		return d.header()
	case stateStored:
		return d.stored()
	default:
		return d.huffman()
	}
}

// need makes at least n (at most 56) bits valid.
func (d *Reader) need(n uint) error {
	for d.nbits < n {
		if d.inPos+8 > d.inEnd {
			if err := d.fill(); err != nil {
				return err
			}
			continue
		}
		d.refill()
	}
	return nil
}

// refill loads bits until at least 56 are valid; it needs 8 bytes of input.
func (d *Reader) refill() {
	d.bits |= binary.LittleEndian.Uint64(d.in[d.inPos:]) << d.nbits
	d.inPos += int((63 - d.nbits) >> 3)
	d.nbits |= 56
}

// take consumes n bits and returns them.
func (d *Reader) take(n uint) uint32 {
	v := uint32(d.bits & (1<<n - 1))
	d.bits >>= n
	d.nbits -= n
	return v
}

// fill reads more input: afterwards at least 8 bytes follow inPos, or it returns an error. The
// whole bytes in the bit buffer go back to the input first, so that nothing is lost in the move.
func (d *Reader) fill() error {
	d.unread()
	if d.srcEOF {
		// The input and the padding after it are used up: a stream that ended within its
		// input never comes here (see padding).
		return io.ErrUnexpectedEOF
	}
	d.inEnd = copy(d.in, d.in[d.inPos:d.inEnd])
	d.inPos = 0
	for {
		n, err := d.src.Read(d.in[d.inEnd : len(d.in)-padding])
		d.inEnd += n
		switch {
		case err == io.EOF:
			d.srcEOF = true
			d.realEnd = d.inEnd
			clear(d.in[d.inEnd : d.inEnd+padding])
			d.inEnd += padding
			return nil
		case err != nil:
			return err
		case d.inEnd >= 8:
			return nil
		}
	}
}

// unread gives the whole bytes of the bit buffer back to the input, keeping the bits of a
// partly consumed byte.
func (d *Reader) unread() {
	d.inPos -= int(d.nbits >> 3)
	d.nbits &= 7
	d.bits &= 1<<d.nbits - 1
}

// overrun reports whether the stream has consumed bits past the end of its input: the zero
// padding.
func (d *Reader) overrun() bool {
	return d.srcEOF && d.inPos*8-int(d.nbits) > d.realEnd*8
}

// header reads a block header and, for a dynamic block, its code.
func (d *Reader) header() error {
	if err := d.need(3); err != nil {
		return err
	}
	d.final = d.take(1) == 1
	switch d.take(2) {
	case 0:
		d.unread()
		d.nbits, d.bits = 0, 0 // skip to a byte boundary
		return d.storedHeader()
	case 1:
		if d.fixLit == nil {
			if err := d.buildFixed(); err != nil {
				return err
			}
		}
		d.lit, d.dist = d.fixLit, d.fixDist
	case 2:
		if err := d.readDynamic(); err != nil {
			return err
		}
	default:
		return ErrCorrupt
	}
	if d.overrun() {
		return io.ErrUnexpectedEOF
	}
	d.state = stateHuffman
	return nil
}

// available returns how many bytes of real input follow inPos, reading more if none do.
func (d *Reader) available() (int, error) {
	end := d.inEnd
	if d.srcEOF {
		end = d.realEnd
	}
	if d.inPos < end {
		return end - d.inPos, nil
	}
	if d.srcEOF {
		return 0, io.ErrUnexpectedEOF
	}
	if err := d.fill(); err != nil {
		return 0, err
	}
	return d.available()
}

// storedHeader reads a stored block's LEN and NLEN, byte-aligned.
func (d *Reader) storedHeader() error {
	var hdr [4]byte
	for i := range hdr {
		if _, err := d.available(); err != nil {
			return err
		}
		hdr[i] = d.in[d.inPos]
		d.inPos++
	}
	n := binary.LittleEndian.Uint16(hdr[:2])
	if n != ^binary.LittleEndian.Uint16(hdr[2:]) {
		return ErrCorrupt
	}
	d.storedLeft = int(n)
	d.state = stateStored
	return nil
}

// stored copies a stored block's bytes, as many as there is room for.
func (d *Reader) stored() error {
	for d.storedLeft > 0 && d.o < len(d.out) {
		n, err := d.available()
		if err != nil {
			return err
		}
		n = copy(d.out[d.o:d.o+min(n, d.storedLeft, len(d.out)-d.o)], d.in[d.inPos:])
		d.o += n
		d.inPos += n
		d.storedLeft -= n
	}
	if d.storedLeft == 0 {
		d.endBlock()
	}
	return nil
}

func (d *Reader) endBlock() {
	if d.final {
		d.state = stateDone
	} else {
		d.state = stateHeader
	}
}

// readDynamic reads a dynamic block's code lengths and builds its tables, with the rules of
// compress/flate: at most 286 literal/length and 30 distance codes, a repeat that does not run
// past them or repeat nothing.
func (d *Reader) readDynamic() error {
	if err := d.need(14); err != nil {
		return err
	}
	nlit := int(d.take(5)) + 257
	ndist := int(d.take(5)) + 1
	nclen := int(d.take(4)) + 4
	if nlit > 286 || ndist > 30 {
		return ErrCorrupt
	}
	var clens [19]uint8
	for i := range nclen {
		if err := d.need(3); err != nil {
			return err
		}
		clens[codeOrder[i]] = uint8(d.take(3))
	}
	if _, err := build(d.clen[:], clens[:], clenRootBits, clenEntry); err != nil {
		return err
	}
	lengths := d.lengths[:nlit+ndist]
	for i := 0; i < len(lengths); {
		if err := d.need(7 + 7); err != nil {
			return err
		}
		e := d.clen[d.bits&(1<<clenRootBits-1)]
		if e&flagInvalid != 0 {
			return ErrCorrupt
		}
		d.take(uint(e & 0xff))
		sym := uint8(e >> 16)
		if sym < 16 {
			lengths[i] = sym
			i++
			continue
		}
		var rep int
		var val uint8
		switch sym {
		case 16:
			if i == 0 {
				return ErrCorrupt
			}
			rep, val = 3+int(d.take(2)), lengths[i-1]
		case 17:
			rep = 3 + int(d.take(3))
		default:
			rep = 11 + int(d.take(7))
		}
		if i+rep > len(lengths) {
			return ErrCorrupt
		}
		for range rep {
			lengths[i] = val
			i++
		}
	}
	var err error
	if d.dynLit, err = build(grow(d.dynLit, litTableMost), lengths[:nlit], litRootBits, litEntry); err != nil {
		return err
	}
	if d.dynDist, err = build(grow(d.dynDist, distTableMost), lengths[nlit:], distRootBits, distEntry); err != nil {
		return err
	}
	d.lit, d.dist = d.dynLit, d.dynDist
	return nil
}

// The most entries build may use: the root table, and a subtable of 1<<(15-root) entries for at
// most every symbol.
const (
	litTableMost  = 1<<litRootBits + numLitLen<<(15-litRootBits)
	distTableMost = 1<<distRootBits + numDist<<(15-distRootBits)
)

// grow returns t with room for n entries.
func grow(t []uint32, n int) []uint32 {
	if cap(t) < n {
		return make([]uint32, n)
	}
	return t[:n]
}

// buildFixed builds the fixed code's tables (RFC 1951 3.2.6).
func (d *Reader) buildFixed() error {
	var lengths [numLitLen]uint8
	for i := range lengths {
		switch {
		case i < 144:
			lengths[i] = 8
		case i < 256:
			lengths[i] = 9
		case i < 280:
			lengths[i] = 7
		default:
			lengths[i] = 8
		}
	}
	lit, err := build(grow(nil, litTableMost), lengths[:], litRootBits, litEntry)
	if err != nil {
		return err
	}
	var dl [numDist]uint8
	for i := range dl {
		dl[i] = 5
	}
	dist, err := build(grow(nil, distTableMost), dl[:], distRootBits, distEntry)
	if err != nil {
		return err
	}
	d.fixLit, d.fixDist = lit, dist
	return nil
}

// litEntry, distEntry and clenEntry give the table entry of a symbol, without its length.
func litEntry(sym int) uint32 {
	switch {
	case sym < 256:
		return flagLiteral | uint32(sym)<<16
	case sym == 256:
		return flagEnd
	case sym < 286:
		return uint32(lengthExtra[sym-257])<<8 | uint32(lengthBase[sym-257])<<16
	}
	return flagInvalid
}

func distEntry(sym int) uint32 {
	if sym < 30 {
		return uint32(distExtra[sym])<<8 | uint32(distBase[sym])<<16
	}
	return flagInvalid
}

func clenEntry(sym int) uint32 { return uint32(sym) << 16 }

// build fills table with the canonical Huffman code of lengths: a root table of 1<<root
// entries, then a subtable for each root prefix of longer codes. It returns the table, cut to
// what it used. Like compress/flate it accepts a complete code, a code with no symbols (whose
// every entry is invalid) and a code of one symbol of length 1, and nothing else.
func build(table []uint32, lengths []uint8, root uint, entry func(int) uint32) ([]uint32, error) {
	var count [16]int
	maxLen := 0
	for _, n := range lengths {
		count[n]++
		maxLen = max(maxLen, int(n))
	}
	rootSize := 1 << root
	if maxLen == 0 {
		for i := range rootSize {
			table[i] = flagInvalid
		}
		return table[:rootSize], nil
	}
	count[0] = 0
	code, left := 0, 1
	var next [16]int
	for n := 1; n <= 15; n++ {
		code = (code + count[n-1]) << 1
		next[n] = code
		left = left<<1 - count[n]
		if left < 0 {
			return nil, ErrCorrupt // over-subscribed
		}
	}
	if left != 0 && !(maxLen == 1 && count[1] == 1) {
		return nil, ErrCorrupt // incomplete
	}
	if left != 0 {
		// One symbol of length 1: the other 1-bit code is invalid.
		for i := range rootSize {
			table[i] = flagInvalid
		}
	}
	size := rootSize
	if maxLen > int(root) {
		// Codes longer than root share their first root bits with others; each such prefix
		// gets a subtable of 1<<(maxLen-root) entries, after the root table in prefix order.
		sub := 1 << (maxLen - int(root))
		first := next[root+1] >> 1 // the first root-bit prefix of a longer code, MSB first
		for p := first; p < rootSize; p++ {
			rev := int(bits.Reverse16(uint16(p)) >> (16 - root))
			table[rev] = flagLink | uint32(root) | uint32(maxLen-int(root))<<8 | uint32(size)<<16
			size += sub
		}
	}
	for sym, n := range lengths {
		if n == 0 {
			continue
		}
		c := next[n]
		next[n]++
		rev := int(bits.Reverse16(uint16(c)) >> (16 - n))
		e := entry(sym)
		if int(n) <= int(root) {
			for i := rev; i < rootSize; i += 1 << n {
				table[i] = e | uint32(n)
			}
			continue
		}
		link := table[rev&(rootSize-1)]
		base, subBits := int(link>>16), uint(link>>8&0xf)
		step := 1 << (uint(n) - root)
		for i := rev >> root; i < 1<<subBits; i += step {
			table[base+i] = e | uint32(uint(n)-root)
		}
	}
	return table[:size], nil
}

// huffman decodes a compressed block until the output buffer is full or the block ends.
func (d *Reader) huffman() error {
	for {
		var (
			in, out   = d.in, d.out
			pos, end  = d.inPos, d.inEnd
			o         = d.o
			b, nb     = d.bits, d.nbits
			lit, dist = d.lit, d.dist
			done      bool
			err       error
		)
		for pos+8 <= end && o+maxMatch <= len(out) {
			b |= binary.LittleEndian.Uint64(in[pos:]) << nb
			pos += int((63 - nb) >> 3)
			nb |= 56

			e := lit[b&(1<<litRootBits-1)]
			if e&flagLink != 0 {
				b >>= litRootBits
				nb -= litRootBits
				e = lit[int(e>>16)+int(b&(1<<(e>>8&0xf)-1))]
			}
			n := uint(e & 0xff)
			b >>= n & 63
			nb -= n
			if e&flagLiteral != 0 {
				out[o] = byte(e >> 16)
				o++
				continue
			}
			if e&(flagEnd|flagInvalid) != 0 {
				if e&flagInvalid != 0 {
					err = ErrCorrupt
				}
				done = true
				break
			}
			extra := uint(e >> 8 & 0xf)
			length := int(e>>16) + int(b&(1<<extra-1))
			b >>= extra
			nb -= extra

			// At most 20 bits went since the refill: 36 or more remain for the distance.
			e = dist[b&(1<<distRootBits-1)]
			if e&flagLink != 0 {
				b >>= distRootBits
				nb -= distRootBits
				e = dist[int(e>>16)+int(b&(1<<(e>>8&0xf)-1))]
			}
			n = uint(e & 0xff)
			b >>= n & 63
			nb -= n
			if e&flagInvalid != 0 {
				err = ErrCorrupt
				break
			}
			extra = uint(e >> 8 & 0xf)
			distance := int(e>>16) + int(b&(1<<extra-1))
			b >>= extra
			nb -= extra
			if distance > o {
				err = ErrCorrupt
				break
			}
			from, to := o-distance, o+length
			if distance >= 8 && to+8 <= len(out) {
				// Eight bytes at a time, the last word running past the match: what it
				// writes there is overwritten by what follows.
				for ; o < to; o, from = o+8, from+8 {
					binary.LittleEndian.PutUint64(out[o:], binary.LittleEndian.Uint64(out[from:]))
				}
				o = to
				continue
			}
			if distance >= length {
				copy(out[o:to], out[from:from+length])
				o = to
				continue
			}
			for o < to { // overlapping: the copied part grows with each round
				o += copy(out[o:to], out[from:o])
			}
		}
		d.inPos, d.inEnd, d.o, d.bits, d.nbits = pos, end, o, b, nb
		switch {
		case err != nil:
			return err
		case d.overrun():
			return io.ErrUnexpectedEOF
		case done:
			d.endBlock()
			return nil
		case o+maxMatch > len(out):
			return nil // full: Read hands it over and makes room
		}
		if err := d.fill(); err != nil {
			return err
		}
	}
}
