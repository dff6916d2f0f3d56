package upstream

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxRetryAfter caps the pause a proxy may ask for: longer, and a misconfigured proxy would stop
// every fill for hours.
const maxRetryAfter = 10 * time.Minute

// backoff is the pause a proxy asked for with Retry-After: until it ends, requests to that proxy
// fail at once (or fall through to the next entry after '|') instead of adding to its load.
type backoff struct {
	now func() time.Time

	mu  sync.Mutex
	end time.Time
}

// until extends the pause to d from now.
func (b *backoff) until(d time.Duration) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if end := b.now().Add(d); end.After(b.end) {
		b.end = end
	}
}

// remaining returns how long the pause still lasts; 0 if there is none.
func (b *backoff) remaining() time.Duration {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return max(b.end.Sub(b.now()), 0)
}

// parseRetryAfter reads a Retry-After value, delay-seconds or an HTTP date, as a duration from
// now, at least a second and at most maxRetryAfter; 0 if there is none or it does not parse.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0
		}
		d = time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	} else {
		return 0
	}
	return min(max(d, time.Second), maxRetryAfter)
}
