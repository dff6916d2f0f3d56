//go:build js && wasm

package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/modmirror/modmirror/shared/goproxy"
	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/store/r2store"
)

// withRanges answers a GET with a single-range Range header for a stored immutable object
// (.info, .mod, .zip) with a ranged R2 get, streamed to the client without passing through Go;
// everything else, misses included, goes to next (which answers a Range request with the whole
// object, as HTTP allows).
func withRanges(next http.Handler, st *r2store.Store, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rng := r.Header.Get("Range")
		if rng == "" || r.Method != http.MethodGet {
			next.ServeHTTP(w, r)
			return
		}
		req, err := goproxy.Parse(r.URL.EscapedPath())
		if err != nil || (req.Kind != goproxy.Info && req.Kind != goproxy.Mod && req.Kind != goproxy.Zip) {
			next.ServeHTTP(w, r)
			return
		}
		info, err := st.Stat(r.Context(), req.Key)
		if err != nil {
			if !errors.Is(err, store.ErrNotExist) {
				logger.Warn("range: stat", "key", req.Key, "err", err)
			}
			next.ServeHTTP(w, r)
			return
		}
		if ir := r.Header.Get("If-Range"); ir != "" && ir != info.ETag {
			next.ServeHTTP(w, r)
			return
		}
		br, ok, unsatisfiable := parseRange(rng, info.Size)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		hdr := w.Header()
		hdr.Set("ETag", info.ETag)
		hdr.Set("Cache-Control", goproxy.CacheImmutable)
		hdr.Set("Accept-Ranges", "bytes")
		if unsatisfiable {
			hdr.Set("Content-Range", fmt.Sprintf("bytes */%d", info.Size))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		obj, err := st.OpenRange(r.Context(), req.Key, br.off, br.length)
		if err != nil {
			logger.Warn("range: get", "key", req.Key, "err", err)
			next.ServeHTTP(w, r)
			return
		}
		defer obj.Close()
		hdr.Set("Content-Type", req.ContentType())
		hdr.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", br.off, br.off+br.length-1, info.Size))
		hdr.Set("Content-Length", strconv.FormatInt(br.length, 10))
		w.WriteHeader(http.StatusPartialContent)
		if _, err := io.Copy(w, obj); err != nil {
			logger.Warn("range: stream", "key", req.Key, "err", err)
		}
		logger.Info("request", "method", r.Method, "path", r.URL.EscapedPath(), "status", http.StatusPartialContent,
			"bytes", br.length, "cache", "hit", "range", rng)
	})
}
