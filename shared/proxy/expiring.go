package proxy

import (
	"sync"
	"time"
)

// expiring remembers values by key for a while: upstream 404s (the negative cache), a module
// version's recent failure, the time a mutable answer was last fetched. It holds at most max
// keys; when full it drops expired keys, and if none have expired, all of them (a cache, never a
// source of truth).
type expiring[V any] struct {
	mu      sync.Mutex
	max     int
	now     func() time.Time
	entries map[string]expiringEntry[V]
}

type expiringEntry[V any] struct {
	value   V
	expires time.Time
}

func newExpiring[V any](max int, now func() time.Time) *expiring[V] {
	return &expiring[V]{max: max, now: now, entries: make(map[string]expiringEntry[V])}
}

// put remembers value under key for ttl.
func (s *expiring[V]) put(key string, value V, ttl time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.entries) >= s.max {
		for k, e := range s.entries {
			if !e.expires.After(now) {
				delete(s.entries, k)
			}
		}
		if len(s.entries) >= s.max {
			clear(s.entries)
		}
	}
	s.entries[key] = expiringEntry[V]{value, now.Add(ttl)}
}

// get returns the value remembered under key, if it has not expired.
func (s *expiring[V]) get(key string) (V, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	if ok && !e.expires.After(s.now()) {
		delete(s.entries, key)
		var zero V
		return zero, false
	}
	return e.value, ok
}

// expiringSet is an expiring set of keys.
type expiringSet struct{ *expiring[struct{}] }

func newExpiringSet(max int, now func() time.Time) *expiringSet {
	return &expiringSet{newExpiring[struct{}](max, now)}
}

// add remembers key for ttl.
func (s *expiringSet) add(key string, ttl time.Duration) { s.put(key, struct{}{}, ttl) }

// has reports whether key is remembered and not yet expired.
func (s *expiringSet) has(key string) bool {
	_, ok := s.get(key)
	return ok
}
