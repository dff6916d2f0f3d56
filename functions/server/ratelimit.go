package main

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/modmirror/modmirror/shared/proxy"
)

// rateLimiter gives each client address a token bucket: rate requests a second, burst at once.
// A client over its budget gets 429 with Retry-After; others are unaffected.
type rateLimiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rate float64, burst int, now func() time.Time) *rateLimiter {
	return &rateLimiter{rate: rate, burst: float64(max(burst, 1)), now: now, buckets: map[string]*bucket{}}
}

// allow takes a token from client's bucket, or says how long until one is there.
func (l *rateLimiter) allow(client string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.sweep(now)
	b, ok := l.buckets[client]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[client] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// sweep drops the buckets of clients that have been quiet long enough to be full again, so
// memory follows the number of active clients.
func (l *rateLimiter) sweep(now time.Time) {
	if now.Sub(l.swept) < time.Minute {
		return
	}
	l.swept = now
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.last) > full {
			delete(l.buckets, k)
		}
	}
}

// admit is proxy.Config.Admit: it refuses a client over its budget, saying when to come back.
func (l *rateLimiter) admit(r *http.Request) *proxy.Refusal {
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		client = r.RemoteAddr
	}
	ok, wait := l.allow(client)
	if ok {
		return nil
	}
	secs := max(int(math.Ceil(wait.Seconds())), 1)
	return &proxy.Refusal{RetryAfter: time.Duration(secs) * time.Second,
		Reason: fmt.Sprintf("rate limit: %s may make %g requests a second; retry in %ds", client, l.rate, secs)}
}
