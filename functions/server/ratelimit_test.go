package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/modmirror/modmirror/shared/proxy"
)

func TestRateLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	l := newRateLimiter(2, 3, func() time.Time { return now })
	get := func(addr string) *proxy.Refusal {
		r := httptest.NewRequest(http.MethodGet, "/x", nil)
		r.RemoteAddr = addr
		return l.admit(r)
	}
	steps := []struct {
		advance time.Duration
		addr    string
		refused bool
	}{
		{0, "10.0.0.1:1000", false}, {0, "10.0.0.1:1001", false}, {0, "10.0.0.1:1002", false}, // the burst
		{0, "10.0.0.1:1003", true},                       // over it, whatever the port
		{0, "10.0.0.2:1000", false},                      // another client is unaffected
		{500 * time.Millisecond, "10.0.0.1:1004", false}, // 2/s: one token after 0.5 s
		{0, "10.0.0.1:1005", true},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		refusal := get(s.addr)
		if (refusal != nil) != s.refused {
			t.Fatalf("step %d (%s): refused %v; want %v", i, s.addr, refusal, s.refused)
		}
		if refusal != nil && (refusal.RetryAfter < time.Second || refusal.Reason == "") {
			t.Fatalf("step %d: a refusal without a Retry-After or a reason: %+v", i, refusal)
		}
	}
	now = now.Add(time.Hour)
	get("10.0.0.3:1")
	if len(l.buckets) != 1 {
		t.Fatalf("%d buckets after an hour of quiet; want only the new client's", len(l.buckets))
	}
}
