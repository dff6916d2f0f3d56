package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/modmirror/modmirror/shared/store"
)

// serveObject answers with a stored object: ETag, Last-Modified, Range and conditional requests
// come from http.ServeContent where the object can seek, and are done by hand where it cannot.
func (h *Handler) serveObject(x *exchange, obj store.Object, cacheControl string) {
	defer obj.Close()
	info := obj.Info()
	hdr := x.w.Header()
	hdr.Set("Content-Type", x.req.ContentType())
	hdr.Set("Cache-Control", h.cacheControl(x, cacheControl))
	if info.ETag != "" {
		hdr.Set("ETag", info.ETag)
	}
	if rs, ok := obj.(io.ReadSeeker); ok {
		http.ServeContent(x.w, x.r, "", info.ModTime, rs)
		return
	}
	if !info.ModTime.IsZero() {
		hdr.Set("Last-Modified", info.ModTime.UTC().Format(http.TimeFormat))
	}
	if inm := x.r.Header.Get("If-None-Match"); inm != "" && etagListMatches(inm, info.ETag) {
		x.w.WriteHeader(http.StatusNotModified)
		return
	}
	if info.Size >= 0 {
		hdr.Set("Content-Length", strconv.FormatInt(info.Size, 10))
	}
	x.w.WriteHeader(http.StatusOK)
	if x.r.Method == http.MethodHead {
		return
	}
	n, err := io.Copy(x.w, obj)
	// Counted here too: an object may hand its stream to the response without writing through
	// x.w (an R2 object's body, on a Worker).
	x.w.bytes = n
	if err != nil {
		h.log.Warn("stream stored object", "key", info.Key, "err", err)
	}
}

// serveCached answers with a stored object's copy in memory, with the stored object's ETag and
// modification time.
func (h *Handler) serveCached(x *exchange, o cachedObject) {
	// The header values were made when the object was cached; the keys are canonical already.
	hdr := x.w.Header()
	hdr["Content-Type"] = o.contentType
	hdr["Cache-Control"] = o.cacheControl
	if o.etag != nil {
		hdr["Etag"] = o.etag
	}
	if plainGET(x.r) {
		// The commonest request of a build: answered without http.ServeContent's checks.
		hdr["Content-Length"] = o.contentLength
		if o.lastModified != nil {
			hdr["Last-Modified"] = o.lastModified
		}
		x.w.WriteHeader(http.StatusOK)
		x.w.Write(o.data)
		return
	}
	http.ServeContent(x.w, x.r, "", o.info.ModTime, bytes.NewReader(o.data))
}

// plainGET reports whether r is a GET with no conditional or range header.
func plainGET(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	for _, name := range [...]string{"Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"} {
		if _, ok := r.Header[name]; ok {
			return false
		}
	}
	return true
}

// serveBytes answers with small content built in memory (a merged list, a checksum-database
// record), with an ETag over its content so conditional requests work.
func (h *Handler) serveBytes(x *exchange, data []byte, cacheControl string) {
	sum := sha256.Sum256(data)
	hdr := x.w.Header()
	hdr.Set("Content-Type", x.req.ContentType())
	hdr.Set("Cache-Control", h.cacheControl(x, cacheControl))
	hdr.Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
	http.ServeContent(x.w, x.r, "", time.Time{}, bytes.NewReader(data))
}

// etagListMatches implements the weak comparison of If-None-Match.
func etagListMatches(list, etag string) bool {
	if etag == "" {
		return false
	}
	for _, candidate := range strings.Split(list, ",") {
		candidate = strings.TrimSpace(candidate)
		if candidate == "*" || strings.TrimPrefix(candidate, "W/") == strings.TrimPrefix(etag, "W/") {
			return true
		}
	}
	return false
}
