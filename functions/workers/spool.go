package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/modmirror/modmirror/shared/proxy"
)

// spoolChunk is the unit a memSpool grows by: growing never copies what is already held.
const spoolChunk = 1 << 20

// ErrSpoolFull is returned when a zip does not fit the memory a Worker can give it to be
// verified. The fill then fails (502) and nothing is stored.
var ErrSpoolFull = errors.New("zip too large to verify in the Worker's memory")

// memSpooler makes spools in memory, each holding at most limit bytes. A Worker has no file
// system, and the whole isolate has 128 MB, so a zip is verified only if it fits.
type memSpooler struct{ limit int64 }

var _ proxy.Spooler = memSpooler{}

// Spool implements proxy.Spooler.
func (s memSpooler) Spool() (proxy.SpoolFile, error) {
	return &memSpool{limit: s.limit}, nil
}

// memSpool is a proxy.SpoolFile in memory: a list of 1 MiB chunks, so that growing it never
// copies, bounded by limit.
type memSpool struct {
	limit  int64
	chunks [][]byte
	size   int64
	off    int64
}

// Write implements io.Writer at the current offset; writing past the limit fails with
// ErrSpoolFull and writes nothing.
func (m *memSpool) Write(p []byte) (int, error) {
	if m.chunks == nil && m.limit < 0 {
		return 0, errors.New("spool closed")
	}
	end := m.off + int64(len(p))
	if end > m.limit {
		return 0, fmt.Errorf("%w: over %d MiB", ErrSpoolFull, m.limit>>20)
	}
	for int64(len(m.chunks))*spoolChunk < end {
		m.chunks = append(m.chunks, make([]byte, spoolChunk))
	}
	n := 0
	for n < len(p) {
		pos := m.off + int64(n)
		n += copy(m.chunks[pos/spoolChunk][pos%spoolChunk:], p[n:])
	}
	m.off = end
	m.size = max(m.size, end)
	return n, nil
}

// ReadAt implements io.ReaderAt.
func (m *memSpool) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("spool: negative offset")
	}
	n := 0
	for n < len(p) && off+int64(n) < m.size {
		pos := off + int64(n)
		c := m.chunks[pos/spoolChunk][pos%spoolChunk:]
		c = c[:min(int64(len(c)), m.size-pos)]
		n += copy(p[n:], c)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Read implements io.Reader at the current offset.
func (m *memSpool) Read(p []byte) (int, error) {
	n, err := m.ReadAt(p, m.off)
	m.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Seek implements io.Seeker.
func (m *memSpool) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += m.off
	case io.SeekEnd:
		offset += m.size
	default:
		return 0, fmt.Errorf("spool: bad whence %d", whence)
	}
	if offset < 0 {
		return 0, errors.New("spool: negative position")
	}
	m.off = offset
	return offset, nil
}

// Close implements io.Closer: it drops the chunks, so the memory can be collected.
func (m *memSpool) Close() error {
	m.chunks, m.size, m.off, m.limit = nil, 0, 0, -1
	return nil
}
