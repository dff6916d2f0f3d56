package checksum

import (
	"archive/zip"
	"bufio"
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strings"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"

	"github.com/modmirror/modmirror/shared/checksum/internal/inflate"
)

// ErrNotStreamable is returned by HashZipStream for a zip whose layout cannot be verified front
// to back: its files' data are not where the directory says, in order, or a stored file's
// length is given only after its data. Such a zip may still be valid; HashZip, which reads at
// offsets, decides.
var ErrNotStreamable = errors.New("zip layout cannot be verified as a stream")

// Bounds of what HashZipStream holds in memory.
const (
	// maxStreamTail is the most of a zip's end (its central directory and end records) held.
	maxStreamTail = 16 << 20
	// maxStreamFiles is the most files (local headers) a zip may have: what is kept of each
	// file, and archive/zip's reading of its directory, take some 400 bytes a file.
	maxStreamFiles = 100_000
	// streamWindow is how much of the last bytes read is kept for archive/zip's search for the
	// end of the central directory, which reads up to 65 KiB from the end.
	streamWindow = 66 << 10
)

// The signatures of zip records.
const (
	sigLocal      = 0x04034b50
	sigCentral    = 0x02014b50
	sigDescriptor = 0x08074b50
	sigEnd        = 0x06054b50
	sigEnd64      = 0x06064b50
	sigLocator64  = 0x07064b50
)

// HashZipStream is HashZip for a zip read once, front to back, from r: it reads and inflates
// each file as it comes, keeping only its SHA-256, CRC-32 and lengths, then reads the central
// directory at the end with archive/zip and checks each entry against what came: where its data
// began, its method, compressed and uncompressed lengths, CRC-32 and data descriptor, with
// archive/zip's own rules. It applies HashZip's rules to the names and returns the same hash
// for every zip it accepts. size is the zip's length, or -1 if unknown; r must end there.
//
// Its memory is bounded whatever the zip's size: a decoder, the hashes and local headers of the
// files (at most 100,000 of them), the last 66 KiB read and the central directory (at most
// 16 MiB). A zip whose layout cannot be checked this way (see ErrNotStreamable) is refused,
// never accepted with another hash.
func HashZipStream(r io.Reader, size int64, path, version string) (string, error) {
	sum, err := hashZipStream(r, size, path, version)
	if err != nil {
		return "", fmt.Errorf("hash %s@%s zip: %w", path, version, err)
	}
	return sum, nil
}

func hashZipStream(r io.Reader, size int64, modPath, version string) (string, error) {
	if v := module.CanonicalVersion(version); v != version {
		return "", fmt.Errorf("version %q is not canonical (should be %q)", version, v)
	}
	if err := module.Check(modPath, version); err != nil {
		return "", err
	}
	if size > modzip.MaxZipFile {
		return "", fmt.Errorf("module zip file is too large (%d bytes; limit is %d bytes)", size, modzip.MaxZipFile)
	}
	s := &zipStream{in: newStreamInput(r, modzip.MaxZipFile)}
	if err := s.readEntries(); err != nil {
		return "", err
	}
	end := s.in.off
	if size >= 0 && end != size {
		return "", fmt.Errorf("got %d bytes, not the %d announced", end, size)
	}
	z, err := zip.NewReader(s, end)
	if s.unavailable != nil {
		return "", s.unavailable
	}
	if err != nil {
		return "", err
	}
	if err := checkZipFiles(z.File, modPath, version, false); err != nil {
		return "", err
	}

	// dirhash.HashZip's summary, from the hashes taken as the files came.
	names := make([]string, len(z.File))
	sums := make(map[string][sha256.Size]byte, len(z.File))
	for i, zf := range z.File {
		sum, err := s.match(zf)
		if s.unavailable != nil {
			return "", s.unavailable
		}
		if err != nil {
			return "", fmt.Errorf("read %s: %w", zf.Name, err)
		}
		names[i] = zf.Name
		sums[zf.Name] = sum
	}
	slices.Sort(names)
	summary := sha256.New()
	for _, name := range names {
		if strings.Contains(name, "\n") {
			return "", errors.New("dirhash: filenames with newlines are not supported")
		}
		fmt.Fprintf(summary, "%x  %s\n", sums[name], name)
	}
	return "h1:" + base64.StdEncoding.EncodeToString(summary.Sum(nil)), nil
}

// streamEntry is what was read of one file as it came: its local header, and its content's
// lengths and hashes.
type streamEntry struct {
	headerOff, dataOff int64    // where its local header and its data begin
	header             [30]byte // the local file header's fixed part, for archive/zip's DataOffset
	method             uint16
	hasDesc            bool  // the local header announced a data descriptor
	clen               int64 // compressed length
	ulen               uint64
	crc                uint32
	descCRC            uint32 // the data descriptor's CRC-32, if it has one
	sum                [sha256.Size]byte
	err                error // the content could not be read (checked only if the directory names it)
}

// zipStream reads a zip front to back and then serves archive/zip's reads of its end.
type zipStream struct {
	in      *streamInput
	entries []streamEntry // in the order they came: by increasing offsets
	// tailStart is where the local files end: what follows is held in tail.
	tailStart int64
	tail      []byte
	// unavailable is set when archive/zip asked for bytes that were not kept.
	unavailable error
	decoder     *inflate.Reader
}

// readEntries reads the local files, then holds the rest.
func (s *zipStream) readEntries() error {
	buf := make([]byte, 32<<10)
	digest := sha256.New()
	for {
		sig, err := s.in.peek(4)
		if err != nil && err != io.EOF {
			return err
		}
		if len(sig) < 4 || binary.LittleEndian.Uint32(sig) != sigLocal {
			break
		}
		if err := s.readEntry(buf, digest); err != nil {
			return err
		}
	}
	s.tailStart = s.in.off
	tail, err := io.ReadAll(io.LimitReader(s.in, maxStreamTail+1))
	if err != nil {
		return err
	}
	if len(tail) > maxStreamTail {
		return fmt.Errorf("%w: more than %d MiB after the last file's data", ErrNotStreamable, maxStreamTail>>20)
	}
	s.tail = tail
	return nil
}

// readEntry reads one local file: its header, its data (inflated and hashed) and its data
// descriptor, if it has one.
func (s *zipStream) readEntry(buf []byte, digest hashWriter) error {
	headerOff := s.in.off
	e := new(streamEntry)
	if _, err := io.ReadFull(s.in, e.header[:]); err != nil {
		return noEOF(err)
	}
	h := e.header[:]
	flags := binary.LittleEndian.Uint16(h[6:])
	e.method = binary.LittleEndian.Uint16(h[8:])
	clen32 := binary.LittleEndian.Uint32(h[18:])
	ulen32 := binary.LittleEndian.Uint32(h[22:])
	nameLen := int64(binary.LittleEndian.Uint16(h[26:]))
	extraLen := int(binary.LittleEndian.Uint16(h[28:]))
	if _, err := io.CopyN(io.Discard, s.in, nameLen); err != nil {
		return noEOF(err)
	}
	extra := make([]byte, extraLen)
	if _, err := io.ReadFull(s.in, extra); err != nil {
		return noEOF(err)
	}
	dataOff := s.in.off
	if len(s.entries) >= maxStreamFiles {
		return fmt.Errorf("%w: more than %d files", ErrNotStreamable, maxStreamFiles)
	}
	e.headerOff, e.dataOff = headerOff, dataOff
	s.entries = append(s.entries, streamEntry{})
	defer func() { s.entries[len(s.entries)-1] = *e }()
	e.hasDesc = flags&0x8 != 0

	digest.Reset()
	crc := crc32.NewIEEE()
	out := io.MultiWriter(digest, crc)
	switch {
	case !e.hasDesc:
		// The local header gives the compressed length: read exactly that.
		clen := int64(clen32)
		if clen32 == 0xffffffff || ulen32 == 0xffffffff {
			if _, c, ok := zip64Sizes(extra); ok {
				clen = int64(c)
			}
		}
		if clen < 0 || clen > modzip.MaxZipFile {
			return fmt.Errorf("%w: a local header gives a compressed length of %d", ErrNotStreamable, clen)
		}
		e.clen = clen
		data := &io.LimitedReader{R: s.in, N: clen}
		switch e.method {
		case zip.Store:
			n, err := io.CopyBuffer(out, data, buf)
			if err != nil {
				return err
			}
			if n < clen {
				return io.ErrUnexpectedEOF
			}
			e.ulen = uint64(n)
		case zip.Deflate:
			if clen == 0 {
				e.err = io.ErrUnexpectedEOF // as archive/zip's inflating of nothing fails
				break
			}
			d := s.inflater(data)
			n, err := io.CopyBuffer(out, d, buf)
			e.ulen = uint64(n)
			if err != nil {
				e.err = err
			}
			// archive/zip ignores what follows the stream within the compressed length.
			if _, err := io.CopyBuffer(io.Discard, data, buf); err != nil {
				return err
			}
			if data.N > 0 {
				return io.ErrUnexpectedEOF
			}
		default:
			e.err = zip.ErrAlgorithm
			if _, err := io.CopyN(io.Discard, s.in, clen); err != nil {
				return noEOF(err)
			}
		}
	case e.method == zip.Deflate:
		// The length comes after the data: the DEFLATE stream's own end says where it is.
		counted := s.in.off
		d := s.inflater(s.in)
		n, err := io.CopyBuffer(out, d, buf)
		if err != nil {
			return fmt.Errorf("inflate the file at offset %d: %w", dataOff, noEOF(err))
		}
		e.ulen = uint64(n)
		s.in.unread(d.Rest())
		e.clen = s.in.off - counted
		if err := s.readDescriptor(e); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: a file (method %d) at offset %d gives its length only after its data", ErrNotStreamable, e.method, dataOff)
	}
	e.crc = crc.Sum32()
	digest.Sum(e.sum[:0])
	return nil
}

// hashWriter is the part of hash.Hash readEntry uses.
type hashWriter interface {
	io.Writer
	Reset()
	Sum([]byte) []byte
}

// inflater returns the stream's decoder, reset to read r.
func (s *zipStream) inflater(r io.Reader) *inflate.Reader {
	if s.decoder == nil {
		s.decoder = inflate.NewReader(r)
	} else {
		s.decoder.Reset(r)
	}
	return s.decoder
}

// find returns the entry whose offset (as key gives it) is off, or nil.
func (s *zipStream) find(key func(*streamEntry) int64, off int64) *streamEntry {
	i, ok := slices.BinarySearchFunc(s.entries, off, func(e streamEntry, off int64) int {
		return cmp.Compare(key(&e), off)
	})
	if !ok {
		return nil
	}
	return &s.entries[i]
}

// readDescriptor reads the data descriptor after a file's data as archive/zip does (an optional
// signature, then the CRC-32), then skips its sizes: 32-bit ones, unless 64-bit ones are what
// leads to the next record.
func (s *zipStream) readDescriptor(e *streamEntry) error {
	var b [4]byte
	if _, err := io.ReadFull(s.in, b[:]); err != nil {
		return noEOF(err)
	}
	if binary.LittleEndian.Uint32(b[:]) == sigDescriptor {
		if _, err := io.ReadFull(s.in, b[:]); err != nil {
			return noEOF(err)
		}
	}
	e.descCRC = binary.LittleEndian.Uint32(b[:])
	next, err := s.in.peek(20)
	if err != nil && err != io.EOF {
		return err
	}
	skip := 8
	if len(next) >= 20 && !isRecord(next[8:12]) && isRecord(next[16:20]) {
		skip = 16
	}
	if len(next) < skip {
		return io.ErrUnexpectedEOF
	}
	_, err = io.CopyN(io.Discard, s.in, int64(skip))
	return err
}

// isRecord reports whether b starts a zip record that may follow a file.
func isRecord(b []byte) bool {
	switch binary.LittleEndian.Uint32(b) {
	case sigLocal, sigCentral, sigEnd, sigEnd64, sigLocator64:
		return true
	}
	return false
}

// zip64Sizes returns the sizes in a local header's zip64 extra field.
func zip64Sizes(extra []byte) (ulen, clen uint64, ok bool) {
	for len(extra) >= 4 {
		id := binary.LittleEndian.Uint16(extra)
		n := int(binary.LittleEndian.Uint16(extra[2:]))
		extra = extra[4:]
		if n > len(extra) {
			return 0, 0, false
		}
		if id == 0x0001 && n >= 16 {
			return binary.LittleEndian.Uint64(extra), binary.LittleEndian.Uint64(extra[8:]), true
		}
		extra = extra[n:]
	}
	return 0, 0, false
}

// match checks a directory entry against what was read of its file, with the rules of
// archive/zip's File.Open and its reader's checks, and returns its content's SHA-256.
func (s *zipStream) match(zf *zip.File) ([sha256.Size]byte, error) {
	var none [sha256.Size]byte
	off, err := zf.DataOffset()
	if err != nil {
		return none, err
	}
	if strings.HasSuffix(zf.Name, "/") {
		// archive/zip reads nothing of a directory, which must have no data.
		if zf.CompressedSize64 != 0 || zf.Flags&0x8 != 0 {
			return none, zip.ErrFormat
		}
		return sha256.Sum256(nil), nil
	}
	e := s.find(func(e *streamEntry) int64 { return e.dataOff }, off)
	if e == nil {
		return none, fmt.Errorf("%w: the directory puts its data at offset %d, where no file came", ErrNotStreamable, off)
	}
	if zf.Method != zip.Store && zf.Method != zip.Deflate {
		return none, zip.ErrAlgorithm
	}
	if zf.Method != e.method {
		return none, fmt.Errorf("%w: the directory gives method %d, the local header %d", ErrNotStreamable, zf.Method, e.method)
	}
	if e.err != nil {
		return none, e.err
	}
	if zf.CompressedSize64 != uint64(e.clen) {
		return none, fmt.Errorf("%w: the directory gives a compressed length of %d, the data is %d bytes", zip.ErrFormat, zf.CompressedSize64, e.clen)
	}
	if zf.Flags&0x8 != 0 != e.hasDesc {
		return none, fmt.Errorf("%w: the directory and the local header disagree on a data descriptor", ErrNotStreamable)
	}
	if e.ulen != zf.UncompressedSize64 {
		return none, fmt.Errorf("%w: the directory gives a length of %d, the content is %d bytes", zip.ErrFormat, zf.UncompressedSize64, e.ulen)
	}
	switch {
	case e.hasDesc && (e.descCRC != zf.CRC32 || e.crc != zf.CRC32):
		return none, zip.ErrChecksum
	case !e.hasDesc && zf.CRC32 != 0 && e.crc != zf.CRC32:
		return none, zip.ErrChecksum
	}
	return e.sum, nil
}

// ReadAt serves archive/zip's reads of the zip's end and of local headers from what was kept;
// any other read fails and marks the zip as not streamable.
func (s *zipStream) ReadAt(p []byte, off int64) (int, error) {
	end := s.in.off
	if off < 0 || off > end {
		return 0, s.miss(off, len(p))
	}
	want := p[:min(int64(len(p)), end-off)]
	var n int
	switch win := s.in.window; {
	case off >= s.tailStart:
		n = copy(want, s.tail[off-s.tailStart:])
	case off >= end-int64(len(win)):
		n = copy(want, win[off-(end-int64(len(win))):])
	default:
		e := s.find(func(e *streamEntry) int64 { return e.headerOff }, off)
		if e == nil || len(want) > len(e.header) {
			return 0, s.miss(off, len(p))
		}
		n = copy(want, e.header[:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (s *zipStream) miss(off int64, n int) error {
	if s.unavailable == nil {
		s.unavailable = fmt.Errorf("%w: its directory refers to %d bytes at offset %d, which were not kept", ErrNotStreamable, n, off)
	}
	return s.unavailable
}

// noEOF turns io.EOF, a zip that ends within a record, into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// streamInput is the zip being read: it counts the offset, can give back bytes read ahead, and
// keeps the last streamWindow bytes read.
type streamInput struct {
	r      *bufio.Reader
	limit  int64
	off    int64
	back   []byte // given back, read again first
	window []byte // the last bytes read, at most 2*streamWindow
}

func newStreamInput(r io.Reader, limit int64) *streamInput {
	return &streamInput{r: bufio.NewReaderSize(r, 64<<10), limit: limit}
}

// Read implements io.Reader.
func (in *streamInput) Read(p []byte) (int, error) {
	var n int
	var err error
	if len(in.back) > 0 {
		n = copy(p, in.back)
		in.back = in.back[n:]
	} else {
		n, err = in.r.Read(p)
	}
	in.keep(p[:n])
	in.off += int64(n)
	if in.off > in.limit {
		return n, fmt.Errorf("over the %d-byte limit", in.limit)
	}
	return n, err
}

// keep appends p to the window, dropping the oldest bytes past streamWindow.
func (in *streamInput) keep(p []byte) {
	if len(p) >= streamWindow {
		in.window = append(in.window[:0], p[len(p)-streamWindow:]...)
		return
	}
	if len(in.window)+len(p) > 2*streamWindow {
		drop := len(in.window) + len(p) - streamWindow
		in.window = in.window[:copy(in.window, in.window[drop:])]
	}
	in.window = append(in.window, p...)
}

// unread gives back p, the last len(p) bytes read.
func (in *streamInput) unread(p []byte) {
	if len(p) == 0 {
		return
	}
	in.back = append(slices.Clone(p), in.back...)
	in.off -= int64(len(p))
	in.window = in.window[:max(0, len(in.window)-len(p))]
}

// peek returns the next n bytes without reading them (fewer, with io.EOF, at the end).
func (in *streamInput) peek(n int) ([]byte, error) {
	if len(in.back) >= n {
		return in.back[:n], nil
	}
	// Move what was given back in front of the buffered reader's bytes.
	b, err := in.r.Peek(n - len(in.back))
	out := append(slices.Clone(in.back), b...)
	return out, err
}
