package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/mod/module"

	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/store"
)

// hashes are the go.sum hashes of one module version; empty when unknown.
type hashes struct {
	Mod, Zip string
}

// sumSet is a set of go.sum hashes by module version, safe for concurrent use.
type sumSet struct {
	mu sync.Mutex
	m  map[module.Version]hashes
}

func newSumSet() *sumSet { return &sumSet{m: map[module.Version]hashes{}} }

func (s *sumSet) get(m module.Version) (hashes, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.m[m]
	return h, ok
}

func (s *sumSet) set(m module.Version, h hashes) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[m] = h
}

// versions returns the module versions held, sorted.
func (s *sumSet) versions() []module.Version {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]module.Version, 0, len(s.m))
	for m := range s.m {
		out = append(out, m)
	}
	module.Sort(out)
	return out
}

// marshal writes go.sum lines, sorted as the go command sorts them.
func (s *sumSet) marshal() []byte {
	var b bytes.Buffer
	for _, m := range s.versions() {
		h, _ := s.get(m)
		if h.Zip != "" {
			fmt.Fprintf(&b, "%s %s %s\n", m.Path, m.Version, h.Zip)
		}
		if h.Mod != "" {
			fmt.Fprintf(&b, "%s %s/go.mod %s\n", m.Path, m.Version, h.Mod)
		}
	}
	return b.Bytes()
}

// parseSumSet reads go.sum content; a module version given two different hashes for one file is
// an error.
func parseSumSet(data []byte) (*sumSet, error) {
	lines, err := checksum.ParseGoSum(data)
	if err != nil {
		return nil, err
	}
	s := newSumSet()
	for _, l := range lines {
		m := module.Version{Path: l.Path, Version: l.Version}
		h := s.m[m]
		cur := &h.Zip
		if l.GoMod {
			cur = &h.Mod
		}
		if *cur != "" && *cur != l.Hash {
			return nil, fmt.Errorf("%s has two hashes: %s and %s", l, *cur, l.Hash)
		}
		*cur = l.Hash
		s.m[m] = h
	}
	return s, nil
}

// readHeld reads the mirror's record of what it holds; a mirror without one holds nothing yet.
func readHeld(ctx context.Context, st store.Store) (*sumSet, error) {
	data, _, err := store.ReadAll(ctx, st, GoSumKey, 1<<30)
	if errors.Is(err, store.ErrNotExist) {
		return newSumSet(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", GoSumKey, err)
	}
	s, err := parseSumSet(data)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", GoSumKey, err)
	}
	return s, nil
}

// putIfChanged stores data under key unless it already holds exactly data, and reports whether
// it wrote.
func putIfChanged(ctx context.Context, st store.Store, key string, data []byte, limit int64) (bool, error) {
	cur, _, err := store.ReadAll(ctx, st, key, limit)
	switch {
	case err == nil && bytes.Equal(cur, data):
		return false, nil
	case err != nil && !errors.Is(err, store.ErrNotExist):
		return false, fmt.Errorf("read %s: %w", key, err)
	}
	opts := store.PutOptions{IfAbsent: err != nil}
	if _, err := st.Put(ctx, key, bytes.NewReader(data), int64(len(data)), opts); err != nil {
		return false, fmt.Errorf("write %s: %w", key, err)
	}
	return true, nil
}
