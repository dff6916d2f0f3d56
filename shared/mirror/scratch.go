package mirror

import (
	"context"
	"io"
	"os"
	"sync"

	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/store/dirstore"
	"github.com/modmirror/modmirror/shared/store/memstore"
)

// scratchBudget is how many bytes of checksum-database state (lookups, tiles) a run keeps in
// memory before it spills to disk: enough for thousands of modules.
const scratchBudget = 32 << 20

// scratchStore keeps the checksum database client's state for one run: in memory up to a budget,
// then in a directory. Each key lives where its first write put it.
type scratchStore struct {
	mem    *memstore.Store
	dir    string
	budget int64

	mu    sync.Mutex
	used  int64
	disk  *dirstore.Store // made on the first spill
	spilt map[string]bool
}

func newScratchStore(dir string, budget int64) *scratchStore {
	return &scratchStore{mem: memstore.New(), dir: dir, budget: budget, spilt: map[string]bool{}}
}

// where returns the store holding key, or for a new key of size bytes the one to create it in.
func (s *scratchStore) where(key string, size int64) (store.Store, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.spilt[key] {
		return s.disk, nil
	}
	if size < 0 || s.used+size <= s.budget {
		if size > 0 {
			s.used += size
		}
		return s.mem, nil
	}
	if _, err := s.mem.Stat(context.Background(), key); err == nil {
		return s.mem, nil
	}
	if s.disk == nil {
		if err := os.MkdirAll(s.dir, 0o755); err != nil {
			return nil, err
		}
		d, err := dirstore.New(s.dir)
		if err != nil {
			return nil, err
		}
		s.disk = d
	}
	s.spilt[key] = true
	return s.disk, nil
}

func (s *scratchStore) reader(key string) store.Store {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.spilt[key] {
		return s.disk
	}
	return s.mem
}

func (s *scratchStore) Stat(ctx context.Context, key string) (store.Info, error) {
	return s.reader(key).Stat(ctx, key)
}

func (s *scratchStore) Open(ctx context.Context, key string) (store.Object, error) {
	return s.reader(key).Open(ctx, key)
}

func (s *scratchStore) Put(ctx context.Context, key string, r io.Reader, size int64, o store.PutOptions) (store.Info, error) {
	st, err := s.where(key, size)
	if err != nil {
		return store.Info{}, err
	}
	return st.Put(ctx, key, r, size, o)
}

// Close releases the directory, if one was made.
func (s *scratchStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.disk != nil {
		return s.disk.Close()
	}
	return nil
}
