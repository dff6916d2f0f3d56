package checksum

import (
	"context"
	"slices"

	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/store/memstore"
)

// memStore is the in-memory store with two helpers for these tests.
type memStore struct{ *memstore.Store }

func newMemStore() *memStore { return &memStore{memstore.New()} }

// keys lists the keys under prefix, sorted.
func (s *memStore) keys(prefix string) []string {
	var keys []string
	s.Walk(context.Background(), prefix, func(i store.Info) error {
		keys = append(keys, i.Key)
		return nil
	})
	slices.Sort(keys)
	return keys
}

// get returns the content under key, if any.
func (s *memStore) get(key string) ([]byte, bool) {
	data, _, err := store.ReadAll(context.Background(), s, key, 1<<30)
	return data, err == nil
}
