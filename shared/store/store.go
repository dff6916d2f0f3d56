// Package store defines where modmirror keeps objects: a flat namespace of slash-separated keys,
// each key exactly the URL path the go command requests, so that whatever a Store holds is
// itself a static GOPROXY.
//
// Implementations live beside this package (dirstore, memstore, and the cloud stores); storetest
// holds the conformance suite every one of them passes.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"
)

// Errors every Store reports, testable with errors.Is.
var (
	// ErrNotExist: no object under the key.
	ErrNotExist = fs.ErrNotExist
	// ErrExist: Put with IfAbsent found an object already there. Not a failure for a filler: the
	// race was lost to an identical write, so serve what is there.
	ErrExist = fs.ErrExist
	// ErrPrecondition: Put with IfMatch found no object, or one with another ETag.
	ErrPrecondition = errors.New("store: precondition failed")
	// ErrInvalidKey: the key could escape the store's root or is otherwise not a key.
	ErrInvalidKey = errors.New("store: invalid key")
)

// Info describes a stored object.
type Info struct {
	Key  string
	Size int64
	// ETag is quoted, as in an HTTP ETag header. It changes whenever the content may have
	// changed, and a Put with IfMatch set to it succeeds only while the object holds the content
	// it was given for: either it is derived from the content (memstore, S3) or it never comes
	// back for a key (dirstore).
	ETag    string
	ModTime time.Time
	// ContentType and CacheControl are as given to Put; empty if not given, or if the store
	// cannot keep them (dirstore), in which case the HTTP layer derives them from the key.
	ContentType  string
	CacheControl string
}

// Object is an open stored object. Stores whose objects can seek (files, memory) return an Object
// that also implements io.ReadSeeker; callers test for it to serve Range requests cheaply.
type Object interface {
	io.ReadCloser
	Info() Info
}

// PutOptions qualify a Put.
type PutOptions struct {
	// IfAbsent makes the Put create-only: if the key exists the Put writes nothing and returns
	// ErrExist.
	IfAbsent bool
	// IfMatch makes the Put a compare-and-swap: it writes only if the key exists with this ETag,
	// and returns ErrPrecondition otherwise.
	IfMatch      string
	ContentType  string
	CacheControl string
}

// Check returns an error for options that no Put can honour: IfAbsent and IfMatch together.
// Every Store calls it before reading any content.
func (o PutOptions) Check() error {
	if o.IfAbsent && o.IfMatch != "" {
		return errors.New("IfAbsent and IfMatch together can never hold")
	}
	return nil
}

// Store keeps objects. Writes are atomic: no reader ever sees a partial object. All methods are
// safe for concurrent use.
type Store interface {
	// Stat describes the object under key, or returns an error wrapping ErrNotExist.
	Stat(ctx context.Context, key string) (Info, error)
	// Open streams the object under key, or returns an error wrapping ErrNotExist.
	Open(ctx context.Context, key string) (Object, error)
	// Put stores r's content under key. size is the content length, or -1 if unknown; if it is
	// not negative and r yields another number of bytes, Put fails. On any error (r failing
	// included, whose error the returned one wraps) nothing is stored and any object already
	// under key is unchanged. The Info returned carries the ETag Stat will report.
	Put(ctx context.Context, key string, r io.Reader, size int64, o PutOptions) (Info, error)
}

// Walker is implemented by stores that can enumerate their keys (the generator's manifest and
// verify need it; the proxy does not).
type Walker interface {
	// Walk calls fn for every object whose key starts with prefix, in lexical key order
	// (byte-wise, as strings.Compare: "a-b/x" before "a/x"). It returns fn's first error.
	Walk(ctx context.Context, prefix string, fn func(Info) error) error
}

// Stager is implemented by stores that can hold a new object in a file of their own while the
// caller checks it, and then put it in place without copying it: a large zip is written once,
// where spooling it to a temporary file and then storing it writes it twice.
type Stager interface {
	// Stage returns an empty object to write key's content into.
	Stage(ctx context.Context, key string) (Staged, error)
}

// Staged is an object being written for a Stager: written once, then read (it is a spool), then
// committed or discarded.
type Staged interface {
	io.ReadWriteSeeker
	io.ReaderAt
	// Commit puts what was written in place under the key, as Put with o would.
	Commit(ctx context.Context, o PutOptions) (Info, error)
	// Close discards what was written, unless Commit put it in place.
	io.Closer
}

// StreamStager is implemented by stores that can write a new object as it comes, holding
// neither the whole of it in memory nor any of it where a reader could see it, until it is
// committed (an R2 or S3 multipart upload): a large zip is stored while it is verified, in
// bounded memory, by a host with no file system.
type StreamStager interface {
	// StageStream starts key's object, to be stored as Put with o would store it once
	// committed.
	StageStream(ctx context.Context, key string, o PutOptions) (Pending, error)
}

// Pending is an object being written for a StreamStager.
type Pending interface {
	// Write appends to the object. Nothing written is visible before Commit.
	io.Writer
	// Commit puts what was written in place under the key. With IfAbsent, an object already
	// there makes it fail with ErrExist and store nothing.
	Commit(ctx context.Context) (Info, error)
	// Close discards what was written, unless Commit put it in place; it leaves nothing behind.
	io.Closer
}

// PutOrCommit stores what r holds (size bytes) under key as Put with o does, but an r that is
// an object st staged for key (a Staged) is committed in place instead of copied.
func PutOrCommit(ctx context.Context, st Store, key string, r io.Reader, size int64, o PutOptions) (Info, error) {
	if staged, ok := r.(Staged); ok {
		return staged.Commit(ctx, o)
	}
	return st.Put(ctx, key, r, size, o)
}

// URLer is implemented by stores that can hand out a URL for a key (a CDN base or a presigned
// URL), so that a host may redirect a hit instead of streaming it.
type URLer interface {
	URL(ctx context.Context, key string) (string, error)
}

// CheckKey reports whether key is a well-formed object key: non-empty slash-separated elements,
// none of them "." or "..", no leading or trailing slash, no backslash, no NUL or other control
// character, at most 1024 bytes. Every Store calls it before touching anything. A Store may
// refuse more keys (dirstore refuses elements starting with a dot, which no module path,
// version or checksum-database path has), never fewer.
func CheckKey(key string) error {
	if key == "" || len(key) > 1024 {
		return fmt.Errorf("%w: length %d", ErrInvalidKey, len(key))
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return fmt.Errorf("%w: %q has a control character or backslash", ErrInvalidKey, key)
		}
	}
	for _, elem := range strings.Split(key, "/") {
		if elem == "" || elem == "." || elem == ".." {
			return fmt.Errorf("%w: %q has an empty, . or .. element", ErrInvalidKey, key)
		}
	}
	return nil
}

// ReadAll returns the whole content of a small object (a list, an .info, a checksum-database
// record). It refuses objects larger than limit bytes.
func ReadAll(ctx context.Context, s Store, key string, limit int64) ([]byte, Info, error) {
	obj, err := s.Open(ctx, key)
	if err != nil {
		return nil, Info{}, err
	}
	defer obj.Close()
	info := obj.Info()
	if info.Size > limit {
		return nil, info, fmt.Errorf("read %s: %d bytes is over the %d-byte limit", key, info.Size, limit)
	}
	data, err := io.ReadAll(io.LimitReader(obj, limit+1))
	if err != nil {
		return nil, info, fmt.Errorf("read %s: %w", key, err)
	}
	if int64(len(data)) > limit {
		return nil, info, fmt.Errorf("read %s: over the %d-byte limit", key, limit)
	}
	return data, info, nil
}

// ContextReader returns a reader of r that stops reading once ctx is done, so that a Put whose
// caller gave up stores nothing.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
