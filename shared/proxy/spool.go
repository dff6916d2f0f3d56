package proxy

import (
	"fmt"
	"io"
	"os"
)

// SpoolFile holds one zip while it is hashed and verified, so that a zip of any size passes
// through in bounded memory. Close discards it.
type SpoolFile interface {
	io.ReadWriteSeeker
	io.ReaderAt
	io.Closer
}

// Spooler makes SpoolFiles. Hosts without a file system supply their own.
type Spooler interface {
	Spool() (SpoolFile, error)
}

// TempFileSpool spools to temporary files in dir.
func TempFileSpool(dir string) Spooler { return tempFileSpool(dir) }

type tempFileSpool string

func (dir tempFileSpool) Spool() (SpoolFile, error) {
	f, err := os.CreateTemp(string(dir), "modmirror-spool-*")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return removeOnClose{f}, nil
}

type removeOnClose struct{ *os.File }

func (f removeOnClose) Close() error {
	err := f.File.Close()
	if rerr := os.Remove(f.Name()); err == nil {
		err = rerr
	}
	return err
}

// smallZip is the largest zip spooled in memory rather than in a temporary file, when the
// upstream says its size up front: most module zips are small, and a file costs system calls.
const smallZip = 1 << 20

// memSpool is a SpoolFile in memory for a zip of known, small size.
type memSpool struct {
	data []byte
	off  int64
}

func newMemSpool(size int64) *memSpool { return &memSpool{data: make([]byte, 0, size)} }

func (m *memSpool) Write(p []byte) (int, error) {
	m.data = append(m.data, p...)
	return len(p), nil
}

func (m *memSpool) Read(p []byte) (int, error) {
	if m.off >= int64(len(m.data)) {
		return 0, io.EOF
	}
	n := copy(p, m.data[m.off:])
	m.off += int64(n)
	return n, nil
}

func (m *memSpool) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(m.data)) {
		return 0, io.EOF
	}
	n := copy(p, m.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memSpool) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += m.off
	case io.SeekEnd:
		offset += int64(len(m.data))
	default:
		return 0, fmt.Errorf("spool: bad whence %d", whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("spool: negative offset %d", offset)
	}
	m.off = offset
	return offset, nil
}

func (m *memSpool) Close() error { return nil }
