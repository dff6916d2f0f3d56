package upstream

import (
	"sync"
	"time"
)

// Circuit breaker defaults.
const (
	DefaultBreakerFailures = 5
	DefaultBreakerCooldown = 30 * time.Second
)

// breaker stops a client from queueing requests behind a proxy that keeps failing. After
// `failures` consecutive failed requests (each already retried) it opens: requests to that proxy
// fail at once, or fall through to the next entry after '|'. After the cooldown it lets one
// request through (half-open); its success closes the breaker, its failure opens it again.
type breaker struct {
	failures int
	cooldown time.Duration
	now      func() time.Time

	mu        sync.Mutex
	failed    int       // consecutive failures
	openUntil time.Time // zero while closed
	probing   bool      // a half-open probe is in flight
}

func newBreaker(failures int, cooldown time.Duration, now func() time.Time) *breaker {
	return &breaker{failures: failures, cooldown: cooldown, now: now}
}

// allow reports whether a request may go to the proxy now.
func (b *breaker) allow() bool {
	if b == nil || b.failures <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.openUntil.IsZero() {
		return true
	}
	if b.now().Before(b.openUntil) || b.probing {
		return false
	}
	b.probing = true // half-open: this request is the probe
	return true
}

// record notes the outcome of an allowed request.
func (b *breaker) record(ok bool) {
	if b == nil || b.failures <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	if ok {
		b.failed, b.openUntil = 0, time.Time{}
		return
	}
	b.failed++
	if b.failed >= b.failures {
		b.openUntil = b.now().Add(b.cooldown)
	}
}

// release gives up a probe whose outcome says nothing about the proxy (the caller went away).
func (b *breaker) release() {
	if b == nil || b.failures <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
}
