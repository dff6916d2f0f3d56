package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/modmirror/modmirror/shared/goproxy"
)

// edgeTTL is how long the edge keeps a mutable answer: the server's freshness (a Worker's Go
// instance lives for one request, so the proxy core's own memory of what is fresh never helps).
const edgeTTL = goproxy.ShortTTL

// edgeMaxBody is the largest answer kept at the edge; the core bounds a list at 4 MiB.
const edgeMaxBody = 8 << 20

// originalCacheControl holds, in a cached copy, the Cache-Control the core answered with: the
// copy's own Cache-Control sets the edge's TTL.
const originalCacheControl = "X-Modmirror-Cache-Control"

// edgeCache is a shared cache of responses by URL: the Workers Cache API (caches.default) in
// the Worker.
type edgeCache interface {
	// match returns the cached response for key, or nil.
	match(ctx context.Context, key string) (*http.Response, error)
	// put caches resp under key for as long as its Cache-Control says.
	put(ctx context.Context, key string, resp *http.Response) error
}

// withEdgeCache answers the mutable GOPROXY answers (lists, @latest, queries, the checksum
// database's latest and lookups) from c for edgeTTL after the core made them, so that repeated
// requests within that time reach neither the upstream nor the store. Only anonymous plain
// requests (GET or HEAD without Authorization, Range or conditional headers) use it, and only
// public answers (200 or 404 with Cache-Control public, to an anonymous GET) are kept: what a
// token may read never leaves the core.
func withEdgeCache(next http.Handler, c edgeCache, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := edgeKey(r)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		ctx := r.Context()
		resp, err := c.match(ctx, key)
		if err != nil {
			logger.Warn("edge cache: match", "key", key, "err", err)
		}
		if resp != nil {
			defer resp.Body.Close()
			hdr := w.Header()
			for k, v := range resp.Header {
				hdr[k] = v
			}
			if cc := hdr.Get(originalCacheControl); cc != "" {
				hdr.Set("Cache-Control", cc)
				hdr.Del(originalCacheControl)
			}
			w.WriteHeader(resp.StatusCode)
			if r.Method == http.MethodGet {
				// The Worker's ResponseWriter takes the cached body's stream as it is.
				if _, err := io.Copy(w, resp.Body); err != nil {
					logger.Warn("edge cache: body", "key", key, "err", err)
				}
			}
			logger.Info("request", "method", r.Method, "path", r.URL.EscapedPath(), "status", resp.StatusCode,
				"bytes", resp.Header.Get("Content-Length"), "cache", "edge", "ms", time.Since(start).Milliseconds())
			return
		}
		if r.Method != http.MethodGet {
			next.ServeHTTP(w, r)
			return
		}
		rec := &recorder{header: http.Header{}, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		if edgeStorable(rec) {
			if err := c.put(ctx, key, edgeCopy(rec)); err != nil {
				logger.Warn("edge cache: put", "key", key, "err", err)
			}
		}
		if w.Header().Get("Content-Length") == "" {
			// As net/http does for a small answer; the Worker would otherwise send it chunked.
			w.Header().Set("Content-Length", strconv.Itoa(rec.body.Len()))
		}
		w.WriteHeader(rec.status)
		w.Write(rec.body.Bytes())
	})
}

// edgeKey returns the cache key for r, the URL without its query, if r may use the edge cache.
func edgeKey(r *http.Request) (string, bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return "", false
	}
	for _, h := range [...]string{"Authorization", "Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"} {
		if _, ok := r.Header[h]; ok {
			return "", false
		}
	}
	req, err := goproxy.Parse(r.URL.EscapedPath())
	if err != nil || !edgeKind(req) {
		return "", false
	}
	u := *r.URL
	u.RawQuery, u.ForceQuery, u.Fragment, u.User = "", false, "", nil
	if u.Host == "" || u.Scheme == "" {
		return "", false // the Worker always has the full URL; anything else is not worth keying
	}
	return u.String(), true
}

// edgeKind reports whether the answer to req changes over time and is cached at the edge.
func edgeKind(req goproxy.Request) bool {
	switch req.Kind {
	case goproxy.List, goproxy.Latest, goproxy.Query:
		return true
	case goproxy.SumDB:
		return req.SumDBPath == "latest" || strings.HasPrefix(req.SumDBPath, "lookup/")
	}
	return false
}

// edgeStorable reports whether a recorded answer is public and may be kept.
func edgeStorable(rec *recorder) bool {
	if rec.status != http.StatusOK && rec.status != http.StatusNotFound {
		return false
	}
	if rec.body.Len() > edgeMaxBody || rec.header.Get("Set-Cookie") != "" {
		return false
	}
	cc := strings.ToLower(rec.header.Get("Cache-Control"))
	return strings.Contains(cc, "public") && !strings.Contains(cc, "private") && !strings.Contains(cc, "no-store")
}

// edgeCopy is the response put in the edge cache for rec: its headers with a Cache-Control of
// edgeTTL (the original kept aside) and an explicit Content-Length.
func edgeCopy(rec *recorder) *http.Response {
	hdr := rec.header.Clone()
	hdr.Set(originalCacheControl, hdr.Get("Cache-Control"))
	hdr.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(edgeTTL/time.Second)))
	hdr.Set("Content-Length", strconv.Itoa(rec.body.Len()))
	return &http.Response{
		StatusCode:    rec.status,
		Header:        hdr,
		Body:          io.NopCloser(bytes.NewReader(rec.body.Bytes())),
		ContentLength: int64(rec.body.Len()),
	}
}

// recorder is an http.ResponseWriter that keeps the answer in memory.
type recorder struct {
	header      http.Header
	status      int
	wroteHeader bool
	body        bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = status, true
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wroteHeader = true
	return r.body.Write(p)
}
