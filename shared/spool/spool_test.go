package spool

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestMemory(t *testing.T) {
	sp := NewMemory(3 * chunk)
	defer sp.Close()
	data := make([]byte, 2*chunk+12345)
	rand.NewChaCha8([32]byte{7}).Read(data)
	// Written in odd pieces, across chunk boundaries.
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 70001)
		if w, err := sp.Write(rest[:n]); w != n || err != nil {
			t.Fatalf("Write = %d, %v", w, err)
		}
		rest = rest[n:]
	}
	if pos, err := sp.Seek(0, io.SeekStart); pos != 0 || err != nil {
		t.Fatalf("Seek = %d, %v", pos, err)
	}
	got, err := io.ReadAll(sp)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadAll: %d bytes, %v; want the %d written", len(got), err, len(data))
	}
	buf := make([]byte, 100)
	off := int64(chunk - 50)
	if n, err := sp.ReadAt(buf, off); n != 100 || err != nil || !bytes.Equal(buf, data[off:off+100]) {
		t.Errorf("ReadAt across a chunk boundary = %d, %v", n, err)
	}
	if n, err := sp.ReadAt(buf, int64(len(data))-10); n != 10 || err != io.EOF {
		t.Errorf("ReadAt at the end = %d, %v; want 10, EOF", n, err)
	}
	if pos, err := sp.Seek(-10, io.SeekEnd); pos != int64(len(data))-10 || err != nil {
		t.Errorf("Seek from the end = %d, %v", pos, err)
	}
	if _, err := sp.Seek(-1, io.SeekStart); err == nil {
		t.Error("a negative position was accepted")
	}
	// Past the limit: refused, nothing written.
	sp.Seek(0, io.SeekEnd)
	if n, err := sp.Write(make([]byte, chunk)); n != 0 || !errors.Is(err, ErrFull) {
		t.Errorf("Write past the limit = %d, %v; want 0, ErrFull", n, err)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Write([]byte("x")); err == nil {
		t.Errorf("Write after Close succeeded")
	}
}

func TestMemorySmallTakesWhatItNeeds(t *testing.T) {
	sp := NewMemory(10)
	sp.Write([]byte("0123456789"))
	if len(sp.chunks) != 1 || cap(sp.chunks[0]) != 10 {
		t.Fatalf("a 10-byte spool holds %d chunks, the first of %d bytes; want one of 10", len(sp.chunks), cap(sp.chunks[0]))
	}
}

func TestCopy(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		body    string
		size    int64
		o       Options
		limit   int64
		wantErr string
	}{
		{"memory", "hello", 5, Options{Dir: dir, MemoryMax: 10}, 100, ""},
		{"file, unknown size", "hello", -1, Options{Dir: dir, MemoryMax: 10}, 100, ""},
		{"file, over MemoryMax", "hello", 5, Options{Dir: dir, MemoryMax: 2}, 100, ""},
		{"shorter than announced", "hel", 5, Options{Dir: dir, MemoryMax: 10}, 100, "not the 5 announced"},
		{"longer than announced, memory", "hello!", 5, Options{Dir: dir, MemoryMax: 10}, 100, "more than the 5 bytes announced"},
		{"longer than announced, file", "hello!", 5, Options{Dir: dir, MemoryMax: 2}, 100, "not the 5 announced"},
		{"over the limit", "hello", -1, Options{Dir: dir, MemoryMax: 10}, 3, "over the 3-byte limit"},
		{"memory only, unknown size", "hello", -1, Options{Dir: "", MemoryMax: 10}, 100, ""},
		{"memory only, too large announced", "hello", 5, Options{Dir: "", MemoryMax: 3}, 100, "too large to verify in memory"},
		{"memory only, too large unannounced", "hello", -1, Options{Dir: "", MemoryMax: 3}, 100, "too large to verify in memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, n, err := tt.o.Copy(strings.NewReader(tt.body), tt.size, tt.limit)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Copy = %v; want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, _ := io.ReadAll(f)
			if n != int64(len(tt.body)) || string(got) != tt.body {
				t.Fatalf("Copy = %d bytes, reads back %q; want %q", n, got, tt.body)
			}
		})
	}
	f, _, err := Options{Dir: dir, MemoryMax: 0}.Copy(strings.NewReader("x"), -1, 100)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Fatalf("temporary files left after Close: %q", left)
	}
}

func TestSharedBudget(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, MemoryMax: 8, Shared: NewBudget(10)}
	inMemory := func(f File) bool { _, ok := f.(*budgeted); return ok }
	copyOf := func(body string, size int64) File {
		t.Helper()
		f, _, err := o.Copy(strings.NewReader(body), size, 100)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	a := copyOf("12345678", 8)
	if !inMemory(a) {
		t.Fatal("8 bytes of a 10-byte budget went to a file")
	}
	b := copyOf("123", 3)
	if inMemory(b) {
		t.Fatal("3 bytes went to memory with 2 left in the budget")
	}
	c := copyOf("12", 2)
	if !inMemory(c) {
		t.Fatal("2 bytes went to a file with 2 left in the budget")
	}
	for _, f := range []File{a, b, c} {
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	a.Close() // a second Close gives nothing back twice
	if !o.Shared.sem.TryAcquire(10) || o.Shared.sem.TryAcquire(1) {
		t.Fatal("closed spools did not give back exactly what they took")
	}
	o.Shared.sem.Release(10)

	// A body longer than announced fails and gives its memory back.
	if _, _, err := o.Copy(strings.NewReader("123456789"), 4, 100); err == nil {
		t.Fatal("a body longer than announced was spooled")
	}
	if !o.Shared.sem.TryAcquire(10) {
		t.Fatal("a failed copy kept its memory")
	}
}

// TestCopyTo checks that content too large for memory goes to the file newFile makes, content
// that fits stays in memory, and a failed copy closes the file it made.
func TestCopyTo(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, MemoryMax: 4}
	var made []File
	newFile := func() (File, error) {
		f, err := NewTemp(dir)
		made = append(made, f)
		return f, err
	}
	small, _, err := o.CopyTo(newFile, strings.NewReader("abc"), 3, 100)
	if err != nil || len(made) != 0 {
		t.Fatalf("3 bytes of a 4-byte MemoryMax: %v, %d files made; want memory", err, len(made))
	}
	small.Close()
	large, n, err := o.CopyTo(newFile, strings.NewReader("abcdefgh"), 8, 100)
	if err != nil || len(made) != 1 || large != made[0] {
		t.Fatalf("8 bytes: %v, %d files made; want the one newFile made", err, len(made))
	}
	if got, _ := io.ReadAll(large); n != 8 || string(got) != "abcdefgh" {
		t.Fatalf("8 bytes: %d, reads back %q", n, got)
	}
	large.Close()
	if _, _, err := o.CopyTo(newFile, strings.NewReader("abcdefgh"), 7, 100); err == nil {
		t.Fatal("a body longer than announced was spooled")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Fatalf("files left after Close and a failed copy: %q", left)
	}
}

// TestNewTempHasNoName checks that a temporary spool leaves nothing in its directory even while
// it is open, so that a process killed mid-fill leaves nothing behind.
func TestNewTempHasNoName(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows cannot remove an open file; the spool is removed on Close there")
	}
	dir := t.TempDir()
	f, err := NewTemp(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("content")); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Errorf("an open spool is visible in its directory: %q", left)
	}
	buf := make([]byte, 7)
	if _, err := f.ReadAt(buf, 0); err != nil || string(buf) != "content" {
		t.Errorf("ReadAt = %q, %v", buf, err)
	}
}
