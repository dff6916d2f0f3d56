package proxy

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Refusal is a host's answer that a request may not be served now (a rate limit): 429 with the
// Retry-After and the reason.
type Refusal struct {
	RetryAfter time.Duration
	Reason     string
}

// authThrottle limits failed authentications per client address, so that guessing tokens costs
// time: after max failures within a window the client is answered 429 until the window ends.
// Each window in which a client is throttled gives one security event, with its count, however
// many requests it makes (the access log still has a line for each).
type authThrottle struct {
	max    int
	window time.Duration
	now    func() time.Time
	log    *slog.Logger

	mu      sync.Mutex
	clients map[string]*authFailures
}

// authFailures are one client's failed authentications in the current window.
type authFailures struct {
	start   time.Time
	count   int
	refused int // requests refused while throttled
}

// maxThrottledClients bounds the clients an authThrottle remembers.
const maxThrottledClients = 10000

func newAuthThrottle(max int, window time.Duration, now func() time.Time, log *slog.Logger) *authThrottle {
	return &authThrottle{max: max, window: window, now: now, log: log, clients: make(map[string]*authFailures)}
}

// clientOf returns the client address of r, without its port.
func clientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// retryAfter says how long client is still throttled; 0 if it is not.
func (t *authThrottle) retryAfter(client string) time.Duration {
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.clients[client]
	if f == nil || f.count < t.max {
		return 0
	}
	wait := f.start.Add(t.window).Sub(t.now())
	if wait <= 0 {
		t.end(client, f)
		return 0
	}
	f.refused++
	return wait
}

// failed records a failed authentication of client.
func (t *authThrottle) failed(client string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	f := t.clients[client]
	if f != nil && !now.Before(f.start.Add(t.window)) {
		t.end(client, f)
		f = nil
	}
	if f == nil {
		if len(t.clients) >= maxThrottledClients {
			t.sweep(now)
		}
		f = &authFailures{start: now}
		t.clients[client] = f
	}
	f.count++
	if f.count == t.max {
		t.log.Warn("failed authentications: throttling the client", "event", "security", "reason", "credential-guessing",
			"client", client, "failures", f.count, "window", t.window.String())
	}
}

// end closes client's window, logging what a throttled window refused.
func (t *authThrottle) end(client string, f *authFailures) {
	if f.count >= t.max {
		t.log.Warn("failed authentications: window over", "event", "security", "reason", "credential-guessing",
			"client", client, "failures", f.count, "refused", f.refused, "window", t.window.String())
	}
	delete(t.clients, client)
}

// sweep forgets the clients whose window is over, or every client if none is.
func (t *authThrottle) sweep(now time.Time) {
	for c, f := range t.clients {
		if !now.Before(f.start.Add(t.window)) {
			t.end(c, f)
		}
	}
	if len(t.clients) >= maxThrottledClients {
		clear(t.clients)
	}
}
