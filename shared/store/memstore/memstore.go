// Package memstore keeps a store.Store in memory: for tests, and for hosts that need a small
// scratch store. It honours every PutOption and keeps ContentType and CacheControl.
package memstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modmirror/modmirror/shared/store"
)

// Store is an in-memory store.Store and store.Walker, safe for concurrent use. The zero value is
// not usable; call New.
//
// The ETag of an object is the quoted hex of the first 16 bytes of its content's SHA-256, so
// putting the same content again keeps the ETag. Open returns Objects that implement
// io.ReadSeeker and io.ReaderAt.
type Store struct {
	mu      sync.RWMutex
	objects map[string]*object // never modified once stored: a Put stores a new one
}

var (
	_ store.Store  = (*Store)(nil)
	_ store.Walker = (*Store)(nil)
)

type object struct {
	data []byte
	info store.Info
}

// New returns an empty Store.
func New() *Store {
	return &Store{objects: make(map[string]*object)}
}

func (s *Store) get(key string) *object {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.objects[key]
}

// Stat implements store.Store.
func (s *Store) Stat(ctx context.Context, key string) (store.Info, error) {
	if err := store.CheckKey(key); err != nil {
		return store.Info{}, fmt.Errorf("stat %q: %w", key, err)
	}
	obj := s.get(key)
	if obj == nil {
		return store.Info{}, fmt.Errorf("stat %q: %w", key, store.ErrNotExist)
	}
	return obj.info, nil
}

// Open implements store.Store.
func (s *Store) Open(ctx context.Context, key string) (store.Object, error) {
	if err := store.CheckKey(key); err != nil {
		return nil, fmt.Errorf("open %q: %w", key, err)
	}
	obj := s.get(key)
	if obj == nil {
		return nil, fmt.Errorf("open %q: %w", key, store.ErrNotExist)
	}
	return &reader{Reader: bytes.NewReader(obj.data), info: obj.info}, nil
}

// reader is an open object: an io.ReadSeeker and io.ReaderAt over content no one modifies.
type reader struct {
	*bytes.Reader
	info store.Info
}

func (r *reader) Info() store.Info { return r.info }
func (r *reader) Close() error     { return nil }

// Put implements store.Store. It reads all of r before taking the Store's lock.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, o store.PutOptions) (store.Info, error) {
	info, err := s.put(ctx, key, r, size, o)
	if err != nil {
		return store.Info{}, fmt.Errorf("put %q: %w", key, err)
	}
	return info, nil
}

func (s *Store) put(ctx context.Context, key string, r io.Reader, size int64, o store.PutOptions) (store.Info, error) {
	if err := store.CheckKey(key); err != nil {
		return store.Info{}, err
	}
	if err := o.Check(); err != nil {
		return store.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return store.Info{}, err
	}
	// Fail early, before reading r; checked again under the lock.
	if err := s.check(key, o); err != nil {
		return store.Info{}, err
	}

	data, err := readAll(ctx, r, size)
	if err != nil {
		return store.Info{}, err
	}
	sum := sha256.Sum256(data)
	obj := &object{data: data, info: store.Info{
		Key:          key,
		Size:         int64(len(data)),
		ETag:         `"` + hex.EncodeToString(sum[:16]) + `"`,
		ContentType:  o.ContentType,
		CacheControl: o.CacheControl,
	}}

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(key, o); err != nil {
		return store.Info{}, err
	}
	obj.info.ModTime = time.Now()
	s.objects[key] = obj
	return obj.info, nil
}

func (s *Store) check(key string, o store.PutOptions) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.checkLocked(key, o)
}

// checkLocked tests o's preconditions against key; s.mu is held.
func (s *Store) checkLocked(key string, o store.PutOptions) error {
	cur := s.objects[key]
	switch {
	case o.IfAbsent && cur != nil:
		return store.ErrExist
	case o.IfMatch != "" && cur == nil:
		return fmt.Errorf("%w: no object to match %s", store.ErrPrecondition, o.IfMatch)
	case o.IfMatch != "" && cur.info.ETag != o.IfMatch:
		return fmt.Errorf("%w: ETag is %s, not %s", store.ErrPrecondition, cur.info.ETag, o.IfMatch)
	}
	return nil
}

// readAll reads r to its end, checking ctx between reads and that r yields exactly size bytes
// if size is not negative.
func readAll(ctx context.Context, r io.Reader, size int64) ([]byte, error) {
	var buf bytes.Buffer
	src := io.Reader(store.ContextReader(ctx, r))
	if size >= 0 {
		buf.Grow(int(min(size, 64<<20)) + 1)
		src = io.LimitReader(src, size+1) // one byte more, to notice a reader that has more
	}
	n, err := buf.ReadFrom(src)
	if err != nil {
		return nil, fmt.Errorf("read content: %w", err)
	}
	if size >= 0 && n != size {
		if n > size {
			return nil, fmt.Errorf("content is longer than the %d bytes announced", size)
		}
		return nil, fmt.Errorf("content is %d bytes, not the %d announced", n, size)
	}
	data := buf.Bytes()
	if cap(data)-len(data) > len(data)/8 {
		data = bytes.Clone(data) // drop much spare capacity
	}
	return data, nil
}

// Walk implements store.Walker: it calls fn, in lexical key order, for every object whose key
// starts with prefix when Walk is called, and returns fn's first error unchanged. fn may use the
// Store.
func (s *Store) Walk(ctx context.Context, prefix string, fn func(store.Info) error) error {
	s.mu.RLock()
	var infos []store.Info
	for key, obj := range s.objects {
		if strings.HasPrefix(key, prefix) {
			infos = append(infos, obj.info)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(infos, func(a, b store.Info) int { return strings.Compare(a.Key, b.Key) })
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("walk %q: %w", prefix, err)
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}
