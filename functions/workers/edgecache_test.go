package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// mapCache is an edgeCache in memory that ignores TTLs.
type mapCache map[string]*http.Response

func (m mapCache) match(_ context.Context, key string) (*http.Response, error) {
	r, ok := m[key]
	if !ok {
		return nil, nil
	}
	data, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(data))
	return &http.Response{StatusCode: r.StatusCode, Header: r.Header.Clone(), Body: io.NopCloser(bytes.NewReader(data))}, nil
}

func (m mapCache) put(_ context.Context, key string, resp *http.Response) error {
	m[key] = resp
	return nil
}

func TestEdgeCache(t *testing.T) {
	tests := []struct {
		name   string
		method string
		path   string
		header http.Header
		status int    // what the core answers
		cc     string // with this Cache-Control
		cached bool   // the second request is answered from the cache
	}{
		{"list", "GET", "/example.com/m/@v/list", nil, 200, "public, max-age=60", true},
		{"latest", "GET", "/example.com/m/@latest", nil, 200, "public, max-age=60", true},
		{"query", "GET", "/example.com/m/@v/main.info", nil, 200, "public, max-age=60", true},
		{"sumdb latest", "GET", "/sumdb/sum.example/latest", nil, 200, "public, max-age=60", true},
		{"lookup", "GET", "/sumdb/sum.example/lookup/example.com/m@v1.0.0", nil, 200, "public, max-age=31536000, immutable", true},
		{"not found", "GET", "/example.com/m/@v/list", nil, 404, "public, max-age=60", true},
		{"zip is R2's", "GET", "/example.com/m/@v/v1.0.0.zip", nil, 200, "public, max-age=31536000, immutable", false},
		{"tile is R2's", "GET", "/sumdb/sum.example/tile/8/0/000", nil, 200, "public, max-age=31536000, immutable", false},
		{"token", "GET", "/example.com/m/@v/list", http.Header{"Authorization": {"Bearer x"}}, 200, "public, max-age=60", false},
		{"conditional", "GET", "/example.com/m/@v/list", http.Header{"If-None-Match": {`"x"`}}, 200, "public, max-age=60", false},
		{"private", "GET", "/example.com/m/@v/list", nil, 200, "private, max-age=60", false},
		{"no-store", "GET", "/example.com/m/@v/list", nil, 502, "no-store", false},
		{"error", "GET", "/example.com/m/@v/list", nil, 502, "public, max-age=60", false},
		{"HEAD alone fills nothing", "HEAD", "/example.com/m/@v/list", nil, 200, "public, max-age=60", false},
		{"POST", "POST", "/example.com/m/@v/list", nil, 200, "public, max-age=60", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			core := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls++
				w.Header().Set("Cache-Control", tt.cc)
				w.Header().Set("ETag", `"e"`)
				w.WriteHeader(tt.status)
				if r.Method != http.MethodHead {
					io.WriteString(w, "answer\n")
				}
			})
			h := withEdgeCache(core, mapCache{}, slog.New(slog.DiscardHandler))
			for i := range 2 {
				req := httptest.NewRequest(tt.method, "https://proxy.example"+tt.path+"?q=1", nil)
				for k, v := range tt.header {
					req.Header[k] = v
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != tt.status || rec.Header().Get("Cache-Control") != tt.cc || rec.Header().Get("ETag") != `"e"` {
					t.Errorf("answer #%d: %d, Cache-Control %q, ETag %q; want %d, %q", i+1, rec.Code, rec.Header().Get("Cache-Control"), rec.Header().Get("ETag"), tt.status, tt.cc)
				}
				if rec.Header().Get(originalCacheControl) != "" {
					t.Errorf("answer #%d leaks %s", i+1, originalCacheControl)
				}
				if want := "answer\n"; tt.method == http.MethodGet && rec.Body.String() != want {
					t.Errorf("answer #%d: body %q; want %q", i+1, rec.Body.String(), want)
				}
			}
			if want := map[bool]int{true: 1, false: 2}[tt.cached]; calls != want {
				t.Errorf("the core answered %d of 2 requests; want %d", calls, want)
			}
		})
	}
}
