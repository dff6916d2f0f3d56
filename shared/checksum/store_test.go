package checksum

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modmirror/modmirror/shared/store"
)

// memStore is a minimal in-memory store.Store for these tests.
type memStore struct {
	mu   sync.Mutex
	objs map[string]memObj
	seq  int
}

type memObj struct {
	data []byte
	info store.Info
}

func newMemStore() *memStore { return &memStore{objs: make(map[string]memObj)} }

func (s *memStore) Stat(ctx context.Context, key string) (store.Info, error) {
	if err := store.CheckKey(key); err != nil {
		return store.Info{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objs[key]
	if !ok {
		return store.Info{}, fmt.Errorf("stat %s: %w", key, store.ErrNotExist)
	}
	return o.info, nil
}

type memReader struct {
	*bytes.Reader
	info store.Info
}

func (r memReader) Close() error     { return nil }
func (r memReader) Info() store.Info { return r.info }

func (s *memStore) Open(ctx context.Context, key string) (store.Object, error) {
	if err := store.CheckKey(key); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objs[key]
	if !ok {
		return nil, fmt.Errorf("open %s: %w", key, store.ErrNotExist)
	}
	return memReader{bytes.NewReader(o.data), o.info}, nil
}

func (s *memStore) Put(ctx context.Context, key string, r io.Reader, size int64, o store.PutOptions) (store.Info, error) {
	if err := store.CheckKey(key); err != nil {
		return store.Info{}, err
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return store.Info{}, err
	}
	if size >= 0 && int64(len(data)) != size {
		return store.Info{}, fmt.Errorf("put %s: size %d, want %d", key, len(data), size)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, exists := s.objs[key]
	if o.IfAbsent && exists {
		return store.Info{}, fmt.Errorf("put %s: %w", key, store.ErrExist)
	}
	if o.IfMatch != "" && (!exists || old.info.ETag != o.IfMatch) {
		return store.Info{}, fmt.Errorf("put %s: %w", key, store.ErrPrecondition)
	}
	s.seq++
	info := store.Info{Key: key, Size: int64(len(data)), ETag: fmt.Sprintf(`"%d"`, s.seq),
		ModTime: time.Now(), ContentType: o.ContentType, CacheControl: o.CacheControl}
	s.objs[key] = memObj{data: data, info: info}
	return info, nil
}

// keys lists the keys under prefix, sorted.
func (s *memStore) keys(prefix string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for k := range s.objs {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func (s *memStore) get(key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objs[key]
	return o.data, ok
}
