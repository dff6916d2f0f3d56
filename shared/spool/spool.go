// Package spool holds a download (a module zip) while it is checked and hashed, so that a zip of
// any size passes through in bounded memory: in memory when it is small or when the host has no
// file system (a Worker), else in a temporary file. A spool is written once, then read, seeked
// and read at offsets; Close discards it.
package spool

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"golang.org/x/sync/semaphore"
)

// File is a spool.
type File interface {
	io.ReadWriteSeeker
	io.ReaderAt
	io.Closer
}

// ErrFull is returned by a memory spool's Write past its limit.
var ErrFull = errors.New("spool: over its memory limit")

// Options say where a spool is held.
type Options struct {
	// Dir holds temporary files. Empty: no file system (a Worker); every spool is in memory.
	Dir string
	// MemoryMax is the largest content of known size held in memory when Dir is set, and the
	// largest content at all when it is not.
	MemoryMax int64
	// Shared, if set with Dir, is memory that every spool made with these Options shares:
	// content up to MemoryMax is held in memory while Shared has room for it, else in a file,
	// and Close gives the memory back.
	Shared *Budget
}

// Budget is an amount of memory that spools share. It is safe for concurrent use.
type Budget struct{ sem *semaphore.Weighted }

// NewBudget returns a budget of n bytes.
func NewBudget(n int64) *Budget { return &Budget{sem: semaphore.NewWeighted(n)} }

// Copy spools what r holds: size bytes, or -1 when unknown. More than limit bytes, or a size
// other than announced, is an error; so is, with no Dir, more than MemoryMax. The returned spool
// is positioned at its start.
func (o Options) Copy(r io.Reader, size, limit int64) (File, int64, error) {
	return o.CopyTo(nil, r, size, limit)
}

// CopyTo is Copy, but content that does not fit in memory goes to the spool newFile makes (a
// store's staged object, which the caller commits without a copy once it is checked) instead of
// a temporary file in Dir. A nil newFile makes it Copy.
func (o Options) CopyTo(newFile func() (File, error), r io.Reader, size, limit int64) (File, int64, error) {
	var f File
	switch {
	case o.Dir == "":
		if size > o.MemoryMax {
			return nil, 0, o.tooLarge()
		}
		f = NewMemory(min(limit+1, o.MemoryMax))
	case size >= 0 && size <= o.MemoryMax && o.Shared == nil:
		f = NewMemory(size)
	case size >= 0 && size <= o.MemoryMax && o.Shared.sem.TryAcquire(size):
		f = &budgeted{Memory: NewMemory(size), budget: o.Shared, size: size}
	default:
		if newFile == nil {
			newFile = func() (File, error) { return NewTemp(o.Dir) }
		}
		var err error
		if f, err = newFile(); err != nil {
			return nil, 0, err
		}
	}
	n, err := io.Copy(f, io.LimitReader(r, limit+1))
	switch {
	case errors.Is(err, ErrFull) && o.Dir == "":
		err = o.tooLarge()
	case errors.Is(err, ErrFull):
		err = fmt.Errorf("got more than the %d bytes announced", size)
	case err != nil:
	case n > limit:
		err = fmt.Errorf("over the %d-byte limit", limit)
	case size >= 0 && n != size:
		err = fmt.Errorf("got %d bytes, not the %d announced", n, size)
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, n, nil
}

func (o Options) tooLarge() error {
	return fmt.Errorf("%w: too large to verify in memory, over %d MiB", ErrFull, o.MemoryMax>>20)
}

// budgeted is a memory spool whose memory comes from a Budget.
type budgeted struct {
	*Memory
	budget *Budget
	size   int64 // taken from the budget; 0 once given back
}

func (b *budgeted) Close() error {
	err := b.Memory.Close()
	if b.size > 0 {
		b.budget.sem.Release(b.size)
		b.size = 0
	}
	return err
}

// NewTemp returns a spool in a new temporary file in dir. Where the system lets an open file be
// removed (all but Windows), its name is removed at once: whatever ends the process, a crash or a
// timed-out Lambda invocation, nothing is left in dir. Elsewhere it is removed on Close.
func NewTemp(dir string) (File, error) {
	f, err := os.CreateTemp(dir, "modmirror-spool-*")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if runtime.GOOS != "windows" {
		if err := os.Remove(f.Name()); err != nil {
			f.Close()
			return nil, fmt.Errorf("spool: %w", err)
		}
		return f, nil
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

// chunk is the unit a memory spool grows by: growing never copies what it holds already.
const chunk = 1 << 20

// Memory is a spool in memory holding at most a limit of bytes, in chunks of 1 MiB (the last one
// cut to the limit), so that growing never copies and a small spool takes only what it needs.
type Memory struct {
	limit  int64
	chunks [][]byte
	size   int64
	off    int64
	closed bool
}

// NewMemory returns an empty memory spool that holds at most limit bytes.
func NewMemory(limit int64) *Memory { return &Memory{limit: limit} }

// Write implements io.Writer at the current offset; writing past the limit fails with ErrFull
// and writes nothing.
func (m *Memory) Write(p []byte) (int, error) {
	if m.closed {
		return 0, errors.New("spool: closed")
	}
	end := m.off + int64(len(p))
	if end > m.limit {
		return 0, fmt.Errorf("%w of %d bytes", ErrFull, m.limit)
	}
	for held := int64(len(m.chunks)) * chunk; held < end; held += chunk {
		m.chunks = append(m.chunks, make([]byte, min(chunk, m.limit-held)))
	}
	n := 0
	for n < len(p) {
		pos := m.off + int64(n)
		n += copy(m.chunks[pos/chunk][pos%chunk:], p[n:])
	}
	m.off = end
	m.size = max(m.size, end)
	return n, nil
}

// ReadAt implements io.ReaderAt.
func (m *Memory) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("spool: negative offset")
	}
	n := 0
	for n < len(p) && off+int64(n) < m.size {
		pos := off + int64(n)
		c := m.chunks[pos/chunk][pos%chunk:]
		c = c[:min(int64(len(c)), m.size-pos)]
		n += copy(p[n:], c)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Read implements io.Reader at the current offset.
func (m *Memory) Read(p []byte) (int, error) {
	n, err := m.ReadAt(p, m.off)
	m.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Seek implements io.Seeker.
func (m *Memory) Seek(offset int64, whence int) (int64, error) {
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

// Close drops the chunks, so the memory can be collected.
func (m *Memory) Close() error {
	m.chunks, m.size, m.off, m.closed = nil, 0, 0, true
	return nil
}
