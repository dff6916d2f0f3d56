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
// `failures` consecutive failed requests (each already retried) about at least minModules
// different modules, it opens: requests to that proxy fail at once, or fall through to the next
// entry after '|'. After the cooldown it lets one request through (half-open); its success closes
// the breaker, its failure opens it again.
//
// Failures about one module say nothing about the proxy: a module whose every version answers
// 500 must not stop the fills of all the others, however often it is asked for.
type breaker struct {
	failures int
	cooldown time.Duration
	now      func() time.Time

	mu        sync.Mutex
	failed    int             // consecutive failures
	modules   map[string]bool // the modules they were about, up to minModules of them
	openUntil time.Time       // zero while closed
	probing   bool            // a half-open probe is in flight
}

// minModules is how many different modules a breaker's consecutive failures must be about before
// it opens (fewer if failures is smaller).
const minModules = 3

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

// record notes the outcome of an allowed request about module.
func (b *breaker) record(ok bool, module string) {
	if b == nil || b.failures <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	if ok {
		b.failed, b.openUntil = 0, time.Time{}
		clear(b.modules)
		return
	}
	b.failed++
	need := min(minModules, b.failures)
	if b.modules == nil {
		b.modules = make(map[string]bool, need)
	}
	if len(b.modules) < need {
		b.modules[module] = true
	}
	if b.failed >= b.failures && len(b.modules) >= need || !b.openUntil.IsZero() {
		b.openUntil = b.now().Add(b.cooldown) // a failed probe opens it again at once
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
