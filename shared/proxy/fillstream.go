package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/goproxy"
	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/upstream"
)

// streamsZip reports whether a zip of size bytes (-1: unknown) is verified as it streams into
// the store rather than spooled: on a host with no file system, when the zip is too large for
// the spool's memory (or of unknown size) and the store can keep an object unseen until it is
// committed.
func (h *Handler) streamsZip(size int64) (store.StreamStager, bool) {
	ss, ok := h.cfg.Store.(store.StreamStager)
	if !ok || h.cfg.Spool.Dir != "" || (size >= 0 && size <= h.cfg.Spool.MemoryMax) {
		return nil, false
	}
	return ss, true
}

// streamZip stores the upstream's zip as it reads it, hashing it front to back on the way
// (checksum.HashZipStream), and commits it only once its hash is verified: a zip that is
// invalid, cut short, or not the checksum database's is aborted and leaves nothing behind. It
// holds a part of the upload and the hasher's state, never the zip.
func (h *Handler) streamZip(ctx context.Context, req goproxy.Request, resp *upstream.Response, ss store.StreamStager, private bool, putOpts store.PutOptions) error {
	pending, err := ss.StageStream(ctx, req.Key, putOpts)
	if err != nil {
		return fmt.Errorf("store %s: %w", req.Key, err)
	}
	defer func() {
		if err := pending.Close(); err != nil {
			h.log.Warn("abort a staged zip", "key", req.Key, "err", err)
		}
	}()
	w := &recordingWriter{w: pending}
	start := time.Now()
	hash, err := checksum.HashZipStream(io.TeeReader(store.ContextReader(ctx, resp.Body), w), resp.Size, req.Path, req.Version)
	// What a streamed fill cost, memory included: the figure to watch on a small host.
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h.log.Info("zip streamed", "key", req.Key, "bytes", w.n, "ms", time.Since(start).Milliseconds(),
		"store_write_ms", w.took.Milliseconds(), "sys_mib", ms.Sys>>20, "heap_inuse_mib", ms.HeapInuse>>20, "err", err)
	switch {
	case w.err != nil:
		// The store cannot take it: each request streams it through instead.
		return &tooLargeToHold{fmt.Errorf("store %s: %w", req.Key, w.err)}
	case err != nil:
		return fmt.Errorf("invalid zip from %s: %w", resp.URL, err)
	}
	if err := h.verify(ctx, req, private, false, hash); err != nil {
		return err
	}
	if _, err := pending.Commit(ctx); err != nil && !errors.Is(err, store.ErrExist) {
		return &tooLargeToHold{fmt.Errorf("store %s: %w", req.Key, err)}
	}
	return nil
}

// recordingWriter keeps its writer's first error, so that a store failing is told apart from
// the zip failing (io.TeeReader reports both as read errors).
type recordingWriter struct {
	w    io.Writer
	err  error
	n    int64         // bytes written
	took time.Duration // in the writer's Write
}

func (r *recordingWriter) Write(p []byte) (int, error) {
	start := time.Now()
	n, err := r.w.Write(p)
	r.took += time.Since(start)
	r.n += int64(n)
	if err != nil && r.err == nil {
		r.err = err
	}
	return n, err
}
