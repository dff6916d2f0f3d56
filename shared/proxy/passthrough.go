package proxy

import (
	"errors"
	"fmt"
	"io"
	"syscall"

	"github.com/modmirror/modmirror/shared/goproxy"
)

// maxPassThrough bounds the verified zip a fill holds in memory to answer its requests with when
// the store refused to keep it.
const maxPassThrough = 64 << 20

// refusedByStore is a fill whose object was verified but that the store could not keep (full,
// over quota, read-only, failing): the requests waiting on the fill are answered with the
// verified content all the same, and nothing partial is left in the store. A build never fails
// because the proxy's own store does.
type refusedByStore struct {
	data []byte
	err  error
}

func (e *refusedByStore) Error() string { return e.err.Error() }
func (e *refusedByStore) Unwrap() error { return e.err }

// passThrough returns the error of a Put that failed for verified content r of size bytes:
// carrying the content when it is small enough to hold, else the store's error alone.
func passThrough(storeErr error, r io.ReaderAt, size int64) error {
	if size < 0 || size > maxPassThrough {
		return storeErr
	}
	data := make([]byte, size)
	if _, err := r.ReadAt(data, 0); err != nil && !(errors.Is(err, io.EOF) && size == 0) {
		return fmt.Errorf("%w (and reading the verified content back: %v)", storeErr, err)
	}
	return &refusedByStore{data: data, err: storeErr}
}

// storeIsFull reports whether err says the store's file system cannot take more: no space, over
// quota, or read-only.
func storeIsFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EROFS)
}

// serveRefused answers a request with the verified content the store refused, logging it as a
// store event.
func (h *Handler) serveRefused(x *exchange, r *refusedByStore) {
	h.log.Warn("the store refused a verified object: passing it through", "event", "store",
		"module", x.req.Path, "version", x.req.Version, "key", x.req.Key, "err", r.err)
	x.cache = cacheBypass
	h.serveBytes(x, r.data, goproxy.CacheImmutable)
}
