package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/modmirror/modmirror/shared/goproxy"
	"github.com/modmirror/modmirror/shared/store"
)

// versionFiles are the objects the go command needs of a version to build with it.
var versionFiles = [...]string{".info", ".mod", ".zip"}

// recordWhole runs after one of a version's objects was stored. Once the store holds all three of
// its .info, .mod and .zip, the version is whole, and only then does the store say so where a
// static or offline client looks: a release joins <module>/@v/list, and a version that the
// upstream's last @latest answer named is stored as <module>/@latest (what a client reads for a
// module with no release, which the list cannot name). A store served as plain files so never
// leads the go command to a version whose zip it lacks.
func (h *Handler) recordWhole(ctx context.Context, req goproxy.Request) {
	if h.listed.has(req.ModuleVersion()) {
		return
	}
	dot := strings.LastIndexByte(req.Key, '.')
	at := strings.Index(req.Key, "/@v/")
	if dot < 0 || at < 0 {
		return
	}
	base, module := req.Key[:dot], req.Key[:at]
	if !h.holdsWhole(ctx, base, req.Key) {
		return // not yet: the fill that completes it records it
	}
	if goproxy.IsRelease(req.Version) {
		if err := h.addToList(ctx, req.Path, req.Version); err != nil {
			h.log.Warn("update list", "module", req.Path, "version", req.Version, "err", err)
			return
		}
	} else {
		// The go command reads a module's list before its @latest: a module with
		// pseudo-versions only needs an empty list for a static client to go on to @latest.
		h.ensureList(ctx, module+"/@v/list")
		h.listed.add(req.ModuleVersion(), time.Hour)
	}
	h.storeLatestIfNamed(ctx, module+"/@latest", req.Version)
}

// holdsWhole reports whether the store holds all of base's versionFiles (base is
// "<module>/@v/<version>"), not asking again about known, a key just stored.
func (h *Handler) holdsWhole(ctx context.Context, base, known string) bool {
	for _, ext := range versionFiles {
		if key := base + ext; key != known {
			if _, err := h.cfg.Store.Stat(ctx, key); err != nil {
				return false
			}
		}
	}
	return true
}

// ensureList stores an empty list under key unless there is a list already.
func (h *Handler) ensureList(ctx context.Context, key string) {
	opts := store.PutOptions{IfAbsent: true, ContentType: "text/plain; charset=utf-8", CacheControl: goproxy.CacheShort}
	if _, err := h.cfg.Store.Put(ctx, key, bytes.NewReader(nil), 0, opts); err != nil && !errors.Is(err, store.ErrExist) {
		h.log.Warn("store an empty list", "key", key, "err", err)
	}
}

// storeLatestIfNamed stores the upstream's last @latest answer under the module's own @latest key
// when it names version, which the store now holds whole.
func (h *Handler) storeLatestIfNamed(ctx context.Context, latestKey, version string) {
	data, _, err := store.ReadAll(ctx, h.cfg.Store, upstreamCopyPrefix+latestKey, maxInfo)
	if err != nil {
		return
	}
	var info infoJSON
	if json.Unmarshal(data, &info) != nil || info.Version != version {
		return
	}
	h.putLatest(ctx, latestKey, data)
}

// putLatest stores an @latest answer naming a version the store holds whole, unless it is there
// already.
func (h *Handler) putLatest(ctx context.Context, latestKey string, data []byte) {
	if old, _, err := store.ReadAll(ctx, h.cfg.Store, latestKey, maxInfo); err == nil && bytes.Equal(old, data) {
		return
	}
	opts := store.PutOptions{ContentType: "application/json", CacheControl: goproxy.CacheShort}
	if _, err := h.cfg.Store.Put(ctx, latestKey, bytes.NewReader(data), int64(len(data)), opts); err != nil {
		h.log.Warn("store @latest", "key", latestKey, "err", err)
	}
}
