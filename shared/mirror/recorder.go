package mirror

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/modmirror/modmirror/shared/mirror/manifest"
	"github.com/modmirror/modmirror/shared/store"
)

// mirrorStore is the mirror's store as a run sees it. It lists the store's keys once, at the
// start, and keeps the list current with its own writes, so that asking for an object the
// mirror lacks costs nothing (on a directory each miss would cost a system call per path
// element); and it notes the size and SHA-256 of every object written, for the summary and the
// manifest. A run must be the mirror's only writer.
type mirrorStore struct {
	store.Store
	walker store.Walker

	mu      sync.Mutex
	keys    map[string]bool
	written map[string]manifest.Entry
}

func newMirrorStore(st store.Store) (*mirrorStore, error) {
	w, ok := st.(store.Walker)
	if !ok {
		return nil, errors.New("the mirror's store cannot list its objects (no store.Walker)")
	}
	return &mirrorStore{Store: st, walker: w, written: map[string]manifest.Entry{}}, nil
}

// index lists the store's keys.
func (s *mirrorStore) index(ctx context.Context) error {
	keys := map[string]bool{}
	err := s.walker.Walk(ctx, "", func(info store.Info) error {
		keys[info.Key] = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("list the mirror: %w", err)
	}
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
	return nil
}

// has reports whether the store may hold key.
func (s *mirrorStore) has(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys == nil || s.keys[key]
}

func (s *mirrorStore) Stat(ctx context.Context, key string) (store.Info, error) {
	if !s.has(key) {
		return store.Info{}, fmt.Errorf("stat %q: %w", key, store.ErrNotExist)
	}
	return s.Store.Stat(ctx, key)
}

func (s *mirrorStore) Open(ctx context.Context, key string) (store.Object, error) {
	if !s.has(key) {
		return nil, fmt.Errorf("open %q: %w", key, store.ErrNotExist)
	}
	return s.Store.Open(ctx, key)
}

// Put implements store.Store, recording what it wrote for the manifest.
func (s *mirrorStore) Put(ctx context.Context, key string, r io.Reader, size int64, o store.PutOptions) (store.Info, error) {
	h := &hashingReader{r: r, digest: newDigest()}
	info, err := s.Store.Put(ctx, key, h, size, s.options(key, o))
	s.record(key, info, err, h.digest)
	return info, err
}

// options returns the options to write key with. A create-only write of a key the list says is
// absent is made a plain one: the run is the mirror's only writer, and what it writes under a key
// is fixed (a verified object, or derived from them), so there is nothing to lose a race to; and
// on a directory a plain write is one rename where a create-only one is a link and an unlink, file
// system work that dominates a run.
func (s *mirrorStore) options(key string, o store.PutOptions) store.PutOptions {
	if o.IfAbsent && !s.has(key) {
		o.IfAbsent = false
	}
	return o
}

// record notes the outcome of a write of key whose content had digest d.
func (s *mirrorStore) record(key string, info store.Info, err error, d digest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil:
		e := manifest.Entry{Key: key, Size: info.Size}
		d.h.Sum(e.SHA256[:0])
		if d.n != info.Size {
			e.Size = -1 // cannot happen; Verify will flag it
		}
		s.written[key] = e
		if s.keys != nil {
			s.keys[key] = true
		}
	case errors.Is(err, store.ErrExist) && s.keys != nil:
		s.keys[key] = true
	}
}

// stager returns a store.Stager whose commits are recorded as Puts are, or nil when the mirror's
// store cannot stage.
func (s *mirrorStore) stager() store.Stager {
	st, ok := s.Store.(store.Stager)
	if !ok {
		return nil
	}
	return &recordingStager{s: s, st: st}
}

type recordingStager struct {
	s  *mirrorStore
	st store.Stager
}

func (r *recordingStager) Stage(ctx context.Context, key string) (store.Staged, error) {
	staged, err := r.st.Stage(ctx, key)
	if err != nil {
		return nil, err
	}
	return &recordedStaged{Staged: staged, s: r.s, key: key, digest: newDigest()}, nil
}

// recordedStaged hashes what is written to a staged object and records its commit.
type recordedStaged struct {
	store.Staged
	s   *mirrorStore
	key string
	digest
}

func (r *recordedStaged) Write(p []byte) (int, error) {
	n, err := r.Staged.Write(p)
	r.add(p[:n])
	return n, err
}

func (r *recordedStaged) Commit(ctx context.Context, o store.PutOptions) (store.Info, error) {
	info, err := r.Staged.Commit(ctx, r.s.options(r.key, o))
	r.s.record(r.key, info, err, r.digest)
	return info, err
}

func (s *mirrorStore) Walk(ctx context.Context, prefix string, fn func(store.Info) error) error {
	return s.walker.Walk(ctx, prefix, fn)
}

// writtenEntry returns the manifest entry of an object written in this run.
func (s *mirrorStore) writtenEntry(key string) (manifest.Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.written[key]
	return e, ok
}

// totals returns how many objects were written and their bytes.
func (s *mirrorStore) totals() (int, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, e := range s.written {
		n += max(e.Size, 0)
	}
	return len(s.written), n
}

// digest is the SHA-256 and the length of what went through it.
type digest struct {
	h hash.Hash
	n int64
}

func newDigest() digest { return digest{h: sha256.New()} }

func (d *digest) add(p []byte) {
	d.h.Write(p)
	d.n += int64(len(p))
}

// hashingReader hashes what is read through it.
type hashingReader struct {
	r io.Reader
	digest
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.add(p[:n])
	return n, err
}
