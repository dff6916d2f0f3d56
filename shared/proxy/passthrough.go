package proxy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"syscall"

	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/goproxy"
	"github.com/modmirror/modmirror/shared/store"
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

// tooLargeToHold is a zip the store refused that is too large to hold in memory: each request
// for it streams it from the upstream through to its client, verifying it on the way
// (streamThrough).
type tooLargeToHold struct{ err error }

func (e *tooLargeToHold) Error() string { return e.err.Error() }
func (e *tooLargeToHold) Unwrap() error { return e.err }

// passThrough returns the error of a Put that failed for verified content r of size bytes:
// carrying the content when it is small enough to hold, else saying it is not.
func passThrough(storeErr error, r io.ReaderAt, size int64) error {
	if size < 0 || size > maxPassThrough {
		return &tooLargeToHold{storeErr}
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

// streamThrough answers a request for a zip the store cannot keep and that is too large to hold:
// it streams the upstream's zip to the client while hashing it, holding back the last bytes
// until the hash is verified. A zip that fails verification is cut off before its end, so the
// client (which knows the length to expect) never accepts it; one that fails before a byte was
// sent is answered 502 as any failed fill.
func (h *Handler) streamThrough(x *exchange, storeErr error) {
	h.log.Warn("the store cannot keep a zip too large to hold: streaming it through", "event", "store",
		"module", x.req.Path, "version", x.req.Version, "key", x.req.Key, "err", storeErr)
	x.cache = cacheBypass
	ctx := x.r.Context()
	resp, err := x.up.Get(ctx, x.req.Key)
	if err != nil {
		h.fillFailed(x, fmt.Errorf("fill %s: %w", x.req.ModuleVersion(), err))
		return
	}
	defer resp.Body.Close()
	out := &holdBack{x: x, size: resp.Size}
	hash, err := checksum.HashZipStream(io.TeeReader(store.ContextReader(ctx, resp.Body), out), resp.Size, x.req.Path, x.req.Version)
	if err == nil {
		err = h.verify(ctx, x.req, x.private, false, hash)
	}
	switch {
	case err == nil:
		out.release()
	case !out.started:
		h.fillFailed(x, fmt.Errorf("fill %s: %w", x.req.ModuleVersion(), err))
	default:
		h.log.Error("a zip streamed through failed verification: cut off before its end", "event", "security",
			"module", x.req.Path, "version", x.req.Version, "err", err)
		panic(http.ErrAbortHandler) // the client gets fewer bytes than announced
	}
}

// holdBack passes a zip on to the client but for its last holdBackBytes, which release sends once
// the zip is verified. The header goes out with the first bytes.
type holdBack struct {
	x       *exchange
	size    int64
	held    []byte
	started bool // the header and some bytes went out
}

// holdBackBytes is what a streamed-through zip keeps back until it is verified: more than one
// write, so that a client never has the whole zip before the verdict.
const holdBackBytes = 256 << 10

func (b *holdBack) Write(p []byte) (int, error) {
	b.held = append(b.held, p...)
	if over := len(b.held) - holdBackBytes; over > 0 {
		b.start()
		if b.x.r.Method != http.MethodHead {
			if _, err := b.x.w.Write(b.held[:over]); err != nil {
				return 0, err
			}
		}
		b.held = append(b.held[:0], b.held[over:]...)
	}
	return len(p), nil
}

func (b *holdBack) start() {
	if b.started {
		return
	}
	b.started = true
	hdr := b.x.w.Header()
	hdr.Set("Content-Type", b.x.req.ContentType())
	hdr.Set("Cache-Control", goproxy.CacheNoStore)
	if b.size >= 0 {
		hdr.Set("Content-Length", strconv.FormatInt(b.size, 10))
	}
	b.x.w.WriteHeader(http.StatusOK)
}

// release sends what was held back.
func (b *holdBack) release() {
	b.start()
	if b.x.r.Method != http.MethodHead {
		b.x.w.Write(b.held)
	}
}

// serveRefused answers a request with the verified content the store refused, logging it as a
// store event.
func (h *Handler) serveRefused(x *exchange, r *refusedByStore) {
	h.log.Warn("the store refused a verified object: passing it through", "event", "store",
		"module", x.req.Path, "version", x.req.Version, "key", x.req.Key, "err", r.err)
	x.cache = cacheBypass
	h.serveBytes(x, r.data, goproxy.CacheImmutable)
}
