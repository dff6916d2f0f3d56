package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"

	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/goproxy"
	"github.com/modmirror/modmirror/shared/spool"
	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/upstream"
)

// Size limits for what an upstream may send.
const (
	maxInfo = 64 << 10          // an .info or @latest answer
	maxMod  = modzip.MaxGoMod   // a go.mod file
	maxZip  = modzip.MaxZipFile // a module zip
	maxList = 4 << 20           // a version list
)

// serveImmutable answers .info, .mod and .zip: from the store, or filled from the upstream.
func (h *Handler) serveImmutable(x *exchange) {
	ctx := x.r.Context()
	// An object in memory was served inline when it was cached: Redirect gave no URL for it.
	if o, ok := h.small.get(x.req.Key); ok {
		x.cache = cacheHit
		h.serveCached(x, o)
		return
	}
	obj, redirected, err := h.openOrRedirect(x)
	if redirected {
		x.cache = cacheHit
		return
	}
	if err == nil {
		x.cache = cacheHit
		if h.cfg.Prefetch && x.up != nil {
			h.prefetch(x) // a prefetched .info still leads to its zip
		}
		h.serveImmutableObject(x, obj)
		return
	}
	if !errors.Is(err, store.ErrNotExist) {
		h.storeFailed(x, err)
		return
	}
	x.cache = cacheMiss
	if x.up == nil {
		h.fail(x, http.StatusNotFound, goproxy.CacheNotFound,
			fmt.Sprintf("%s: not in this mirror, and %s", x.req.ModuleVersion(), h.noUpstreamReason(x)))
		return
	}
	if h.notFound.has(x.req.Key) {
		h.fail(x, http.StatusNotFound, goproxy.CacheNotFound,
			fmt.Sprintf("%s: not found upstream (remembered for %s)", x.req.ModuleVersion(), h.cfg.NotFoundFor))
		return
	}
	if err, ok := h.failed.get(x.req.Key); ok {
		h.fillFailed(x, fmt.Errorf("%w (failed %s ago or less; not tried again yet)", err, h.cfg.RetryFailedAfter))
		return
	}
	start := time.Now()
	err = h.fill(ctx, x)
	x.upstream = time.Since(start)
	if err != nil {
		h.fillFailed(x, err)
		return
	}
	if h.cfg.Prefetch {
		h.prefetch(x)
	}
	obj, redirected, err = h.openOrRedirect(x)
	switch {
	case redirected:
	case err != nil:
		h.storeFailed(x, err)
	default:
		h.serveImmutableObject(x, obj)
	}
}

// openOrRedirect opens x's stored object, or answers with a redirect where Config.Redirect gives
// a URL for it (then redirected is true and obj nil). A zip, which may be large, is asked about
// by its Stat before it is opened; an .info or .mod is opened at once and asked about by the
// Info that comes with it: on a bucket, one round trip instead of two.
func (h *Handler) openOrRedirect(x *exchange) (obj store.Object, redirected bool, err error) {
	ctx := x.r.Context()
	if x.req.Kind == goproxy.Zip && h.cfg.Redirect != nil && !x.private {
		// A failed Stat is a miss, or a store failure that the Open after it reports.
		if info, err := h.cfg.Store.Stat(ctx, x.req.Key); err == nil && h.redirect(x, info) {
			return nil, true, nil
		}
	}
	obj, err = h.cfg.Store.Open(ctx, x.req.Key)
	if err != nil {
		return nil, false, err
	}
	if x.req.Kind != goproxy.Zip && h.redirect(x, obj.Info()) {
		obj.Close()
		return nil, true, nil
	}
	return obj, false, nil
}

// prefetch starts filling what a client asks for next, as the go command asks: after a version's
// .info (go mod download, go get) its .mod and .zip; after its .mod, its .info, which is small
// (a build that needs only the go.mod of a dependency never fetches its zip, so a .mod does not
// prefetch one). The fills run in the background, bounded like any other.
func (h *Handler) prefetch(x *exchange) {
	var next []string
	switch x.req.Kind {
	case goproxy.Info:
		next = []string{".mod", ".zip"}
	case goproxy.Mod:
		next = []string{".info"}
	}
	if len(next) == 0 || h.prefetched.has(x.req.Key) {
		return
	}
	h.prefetched.add(x.req.Key, time.Hour)
	mv := module.Version{Path: x.req.Path, Version: x.req.Version}
	ctx := context.WithoutCancel(x.r.Context())
	for _, ext := range next {
		job, err := h.fillJob(mv, ext, x.private)
		if err != nil {
			continue
		}
		h.inFlight.Add(1)
		go func() {
			defer h.inFlight.Done()
			h.prefetchSlots <- struct{}{}
			defer func() { <-h.prefetchSlots }()
			if _, err := h.cfg.Store.Stat(ctx, job.req.Key); err == nil {
				return
			}
			if err := h.fill(ctx, job); err != nil {
				h.log.Debug("prefetch", "key", job.req.Key, "err", err)
			}
		}()
	}
}

// serveImmutableObject serves a stored immutable object, keeping a copy in memory if it is small.
func (h *Handler) serveImmutableObject(x *exchange, obj store.Object) {
	info := obj.Info()
	if h.small == nil || info.Size < 0 || info.Size > maxCachedObject {
		h.serveObject(x, obj, goproxy.CacheImmutable)
		return
	}
	data, err := io.ReadAll(io.LimitReader(obj, maxCachedObject+1))
	obj.Close()
	if err != nil || int64(len(data)) != info.Size {
		h.storeFailed(x, fmt.Errorf("read %s: %d of %d bytes: %v", info.Key, len(data), info.Size, err))
		return
	}
	o := newCachedObject(x.req, data, info, h.cacheControl(x, goproxy.CacheImmutable))
	h.small.put(x.req.Key, o)
	h.serveCached(x, o)
}

// redirect answers with a redirect to the URL Config.Redirect gives for the stored object
// info describes, if it gives one, and reports whether it did.
func (h *Handler) redirect(x *exchange, info store.Info) bool {
	if h.cfg.Redirect == nil || x.private {
		return false // a CDN or presigned URL would hand a private module to anyone
	}
	url, err := h.cfg.Redirect(x.r.Context(), info)
	if err != nil {
		h.log.Warn("redirect", "key", x.req.Key, "err", err)
		return false
	}
	if url == "" {
		return false
	}
	hdr := x.w.Header()
	hdr.Set("Location", url)
	hdr.Set("Cache-Control", goproxy.CacheNoStore)
	x.w.WriteHeader(http.StatusFound)
	return true
}

// fill fetches, verifies and stores req's object, once per key however many requests wait for
// it. The fill runs on its own context: a client that gives up does not fail the others.
func (h *Handler) fill(ctx context.Context, x *exchange) error {
	req, up, private := x.req, x.up, x.private
	ch := h.fills.DoChan(req.Key, func() (any, error) {
		h.inFlight.Add(1)
		defer h.inFlight.Done()
		fctx, cancel := h.fillContext(ctx)
		defer cancel()
		select {
		case h.fillSlots <- struct{}{}:
			defer func() { <-h.fillSlots }()
		case <-fctx.Done():
			return nil, fmt.Errorf("fill %s: waiting for one of %d fill slots: %w", req.ModuleVersion(), h.cfg.MaxFills, fctx.Err())
		}
		// A fill that finished between our miss and now has stored the object already.
		if _, err := h.cfg.Store.Stat(fctx, req.Key); err == nil {
			return nil, nil
		}
		err := h.fillObject(fctx, req, up, private)
		switch {
		case upstream.IsNotFound(err):
			h.notFound.add(req.Key, h.cfg.NotFoundFor)
		case err != nil && h.cfg.RetryFailedAfter > 0 && isModulesOwn(fctx, err):
			h.failed.put(req.Key, fmt.Errorf("fill %s: %w", req.ModuleVersion(), err), h.cfg.RetryFailedAfter)
		}
		if err != nil {
			return nil, fmt.Errorf("fill %s: %w", req.ModuleVersion(), err)
		}
		return nil, nil
	})
	select {
	case res := <-ch:
		return res.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Handler) fillObject(ctx context.Context, req goproxy.Request, up Upstream, private bool) error {
	cacheControl := goproxy.CacheImmutable
	if private {
		cacheControl = strings.Replace(cacheControl, "public", "private", 1)
	}
	putOpts := store.PutOptions{IfAbsent: true, ContentType: req.ContentType(), CacheControl: cacheControl}
	if !private {
		h.lookUpAhead(ctx, req)
	}
	var err error
	switch req.Kind {
	case goproxy.Info:
		var data []byte
		if data, err = fetchSmall(ctx, up, req.Key, maxInfo); err != nil {
			return err
		}
		if err = checkInfo(data, req.Version); err != nil {
			return err
		}
		if err = h.put(ctx, req.Key, bytes.NewReader(data), int64(len(data)), putOpts); err != nil {
			err = passThrough(err, bytes.NewReader(data), int64(len(data)))
		}
	case goproxy.Mod:
		var data []byte
		if data, err = fetchSmall(ctx, up, req.Key, maxMod); err != nil {
			return err
		}
		if err = checkGoMod(data, req.Path, req.Version); err != nil {
			return err
		}
		if err = h.verify(ctx, req, private, true, checksum.HashMod(data)); err != nil {
			return err
		}
		if err = h.put(ctx, req.Key, bytes.NewReader(data), int64(len(data)), putOpts); err != nil {
			err = passThrough(err, bytes.NewReader(data), int64(len(data)))
		}
	case goproxy.Zip:
		err = h.fillZip(ctx, req, up, private, putOpts)
	default:
		return fmt.Errorf("cannot fill a %s request", req.Kind)
	}
	if err != nil {
		return err
	}
	h.recordWhole(ctx, req)
	return nil
}

// fillZip spools the zip, checks its structure, hashes it, verifies the hash and only then
// stores it, streaming from the spool.
func (h *Handler) fillZip(ctx context.Context, req goproxy.Request, up Upstream, private bool, putOpts store.PutOptions) error {
	resp, err := up.Get(ctx, req.Key)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.Size > maxZip {
		return fmt.Errorf("upstream zip of %d bytes is over the %d-byte limit", resp.Size, int64(maxZip))
	}
	if ss, ok := h.streamsZip(resp.Size); ok {
		return h.streamZip(ctx, req, resp, ss, private, putOpts)
	}
	// A zip too large for memory is written where the store will keep it, if it can stage, and
	// committed once verified: written once, not spooled and copied.
	var newFile func() (spool.File, error)
	if st, ok := h.cfg.Store.(store.Stager); ok {
		newFile = func() (spool.File, error) { return st.Stage(ctx, req.Key) }
	}
	zip, size, err := h.cfg.Spool.CopyTo(newFile, resp.Body, resp.Size, maxZip)
	if err != nil && newFile != nil && storeIsFull(err) && (resp.Size < 0 || resp.Size > maxPassThrough) {
		return &tooLargeToHold{fmt.Errorf("stage %s: %w", req.Key, err)}
	}
	if err != nil && newFile != nil && storeIsFull(err) {
		// The store's disk cannot take it: fetch it again into memory, to verify it there and
		// pass it through (the Put that follows fails as well, and says so).
		h.log.Warn("the store cannot stage a zip: holding it in memory to pass it through", "event", "store",
			"module", req.Path, "version", req.Version, "err", err)
		resp.Body.Close()
		if resp, err = up.Get(ctx, req.Key); err != nil {
			return err
		}
		defer resp.Body.Close()
		zip, size, err = spool.Options{MemoryMax: maxPassThrough}.CopyTo(nil, resp.Body, resp.Size, maxPassThrough)
	}
	if err != nil {
		return fmt.Errorf("read zip from %s: %w", resp.URL, err)
	}
	defer zip.Close()
	hash, err := h.hasher.HashZip(zip, size, req.Path, req.Version)
	if err != nil {
		return fmt.Errorf("invalid zip from %s: %w", resp.URL, err)
	}
	if err := h.verify(ctx, req, private, false, hash); err != nil {
		return err
	}
	// Hashing read it at offsets: it is still at its start.
	if err := h.put(ctx, req.Key, zip, size, putOpts); err != nil {
		return passThrough(err, zip, size)
	}
	return nil
}

// put stores an object create-only, committing it if it was staged; losing the race to an
// identical write is success.
func (h *Handler) put(ctx context.Context, key string, r io.Reader, size int64, o store.PutOptions) error {
	_, err := store.PutOrCommit(ctx, h.cfg.Store, key, r, size, o)
	if err != nil && !errors.Is(err, store.ErrExist) {
		return fmt.Errorf("store %s: %w", key, err)
	}
	return nil
}

// verify checks a hash: a public module's against the checksum database (unless it is off), a
// private module's against the private go.sum where it has a line (a private module is never
// shown to the public database).
func (h *Handler) verify(ctx context.Context, req goproxy.Request, private, gomod bool, hash string) error {
	if private {
		want, ok := h.privateSums[sumKey(req.Path, req.Version, gomod)]
		if ok && want != hash {
			file := "zip"
			if gomod {
				file = "go.mod"
			}
			return &checksum.MismatchError{Path: req.Path, Version: req.Version, File: file, Got: hash, Want: want, Source: "private go.sum"}
		}
		return nil
	}
	if h.cfg.Checksums == nil {
		return nil
	}
	if gomod {
		return h.cfg.Checksums.VerifyModHash(ctx, req.Path, req.Version, hash)
	}
	return h.cfg.Checksums.VerifyZipHash(ctx, req.Path, req.Version, hash)
}

// noUpstreamReason says why a module has no upstream.
func (h *Handler) noUpstreamReason(x *exchange) string {
	if x.private {
		return errNoPrivateUpstream.Error()
	}
	return "this mirror is offline"
}

// fetchSmall reads a small upstream answer whole, refusing more than limit bytes.
func fetchSmall(ctx context.Context, up Upstream, path string, limit int64) ([]byte, error) {
	resp, err := up.Get(ctx, path)
	if err != nil {
		return nil, err
	}
	return resp.ReadAll(limit)
}

// infoJSON is the .info and @latest answer.
type infoJSON struct {
	Version string
	Time    time.Time
}

// checkInfo checks an .info answer for a canonical version: JSON naming that very version.
func checkInfo(data []byte, version string) error {
	var info infoJSON
	if err := json.Unmarshal(data, &info); err != nil {
		return fmt.Errorf("invalid .info from upstream: %w", err)
	}
	if info.Version != version {
		return fmt.Errorf("upstream .info names version %q, not %q", info.Version, version)
	}
	return nil
}

// checkGoMod checks a .mod answer as the go command will read it: a go.mod file that parses, whose
// module line names the requested path. With the checksum database on, a wrong file fails its
// hash anyway; with it off (or for a private module without a go.sum line) this is what keeps a
// file that is no go.mod out of the store, where it would be served as immutable.
func checkGoMod(data []byte, path, version string) error {
	f, err := modfile.ParseLax(path+"@"+version+".mod", data, nil)
	if err != nil {
		return fmt.Errorf("invalid .mod from upstream: %w", err)
	}
	if f.Module == nil {
		return errors.New("invalid .mod from upstream: no module line")
	}
	if f.Module.Mod.Path != path {
		return fmt.Errorf("invalid .mod from upstream: its module line names %q, not %q", f.Module.Mod.Path, path)
	}
	return nil
}

// isModulesOwn reports whether a fill's error is about the module itself (the upstream's 5xx
// for it, bad bytes, a verification failure), which is worth remembering briefly for that module
// alone; not a timeout, a pause the upstream asked for, a store that refused the object, or a
// fill that was ended, after which the next request tries again.
func isModulesOwn(fctx context.Context, err error) bool {
	var (
		refused  *refusedByStore
		tooLarge *tooLargeToHold
	)
	return fctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) && !isRetryAfter(err) &&
		!errors.As(err, &refused) && !errors.As(err, &tooLarge)
}

func isRetryAfter(err error) bool {
	_, ok := upstream.RetryAfter(err)
	return ok
}

// fillContext returns the context a fill runs on: not the request's, so that a client that gives
// up does not fail the others waiting, but bounded by FillTimeout and ended by Abort.
func (h *Handler) fillContext(ctx context.Context) (context.Context, context.CancelFunc) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.cfg.FillTimeout)
	stop := context.AfterFunc(h.aborted, cancel)
	return fctx, func() { stop(); cancel() }
}

// fillFailed answers a failed fill: 404 when the upstream has no such module or version, 502
// for anything the upstream or the checksum database did wrong, never cached; 503 with a
// Retry-After when the host is shutting down (Abort).
func (h *Handler) fillFailed(x *exchange, err error) {
	var (
		refused  *refusedByStore
		tooLarge *tooLargeToHold
	)
	switch {
	case errors.As(err, &refused):
		h.serveRefused(x, refused)
	case errors.As(err, &tooLarge) && x.up != nil:
		h.streamThrough(x, tooLarge.err)
	case h.aborted.Err() != nil:
		x.w.Header().Set("Retry-After", retryAfterShutdown)
		h.fail(x, http.StatusServiceUnavailable, goproxy.CacheNoStore,
			fmt.Sprintf("%s: this proxy is shutting down; try again, or the next proxy", x.req.ModuleVersion()))
	case isRetryAfter(err):
		wait, _ := upstream.RetryAfter(err)
		x.w.Header().Set("Retry-After", strconv.Itoa(int(max(wait.Round(time.Second), time.Second)/time.Second)))
		h.fail(x, http.StatusServiceUnavailable, goproxy.CacheNoStore, err.Error())
	case upstream.IsNotFound(err):
		h.fail(x, http.StatusNotFound, goproxy.CacheNotFound, err.Error())
	case errors.Is(err, checksum.ErrMismatch):
		h.log.Error("refused a fill that failed verification", "event", "security",
			"module", x.req.Path, "version", x.req.Version, "err", err)
		h.fail(x, http.StatusBadGateway, goproxy.CacheNoStore, "SECURITY ERROR: "+err.Error())
	case errors.Is(err, checksum.ErrNotInDB):
		h.fail(x, http.StatusNotFound, goproxy.CacheNotFound, err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		h.fail(x, http.StatusGatewayTimeout, goproxy.CacheNoStore, err.Error())
	default:
		h.log.Warn("fill failed", "module", x.req.Path, "version", x.req.Version, "err", err)
		h.fail(x, http.StatusBadGateway, goproxy.CacheNoStore, err.Error())
	}
}

// storeFailed answers a store that could not be read.
func (h *Handler) storeFailed(x *exchange, err error) {
	h.log.Error("store failed", "key", x.req.Key, "err", err)
	h.fail(x, http.StatusServiceUnavailable, goproxy.CacheNoStore, "store unavailable: "+err.Error())
}
