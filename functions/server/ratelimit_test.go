package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestRateLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	l := newRateLimiter(2, 3, func() time.Time { return now })
	h := l.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	get := func(addr string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/x", nil)
		r.RemoteAddr = addr
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	steps := []struct {
		advance time.Duration
		addr    string
		status  int
	}{
		{0, "10.0.0.1:1000", 200}, {0, "10.0.0.1:1001", 200}, {0, "10.0.0.1:1002", 200}, // the burst
		{0, "10.0.0.1:1003", 429},                      // over it, whatever the port
		{0, "10.0.0.2:1000", 200},                      // another client is unaffected
		{500 * time.Millisecond, "10.0.0.1:1004", 200}, // 2/s: one token after 0.5 s
		{0, "10.0.0.1:1005", 429},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		w := get(s.addr)
		if w.Code != s.status {
			t.Fatalf("step %d (%s): %d; want %d", i, s.addr, w.Code, s.status)
		}
		if w.Code == 429 && (w.Header().Get("Retry-After") == "" || w.Body.Len() == 0) {
			t.Fatalf("step %d: 429 without Retry-After or a reason", i)
		}
	}
	now = now.Add(time.Hour)
	get("10.0.0.3:1")
	if len(l.buckets) != 1 {
		t.Fatalf("%d buckets after an hour of quiet; want only the new client's", len(l.buckets))
	}
}
