package proxy

import (
	"sync"
	"time"
)

// expiringSet remembers keys for a while: upstream 404s (the negative cache) and the time a
// mutable answer was last fetched. It holds at most max keys; when full it drops expired keys,
// and if none have expired, all of them (a cache, never a source of truth).
type expiringSet struct {
	mu      sync.Mutex
	max     int
	now     func() time.Time
	expires map[string]time.Time
}

func newExpiringSet(max int, now func() time.Time) *expiringSet {
	return &expiringSet{max: max, now: now, expires: make(map[string]time.Time)}
}

// add remembers key for ttl.
func (s *expiringSet) add(key string, ttl time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.expires) >= s.max {
		for k, exp := range s.expires {
			if !exp.After(now) {
				delete(s.expires, k)
			}
		}
		if len(s.expires) >= s.max {
			clear(s.expires)
		}
	}
	s.expires[key] = now.Add(ttl)
}

// has reports whether key is remembered and not yet expired.
func (s *expiringSet) has(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.expires[key]
	if ok && !exp.After(s.now()) {
		delete(s.expires, key)
		return false
	}
	return ok
}
