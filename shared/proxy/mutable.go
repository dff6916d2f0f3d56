package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"

	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/goproxy"
	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/upstream"
)

// upstreamCopyPrefix holds the last answers of the upstream's mutable endpoints, served when the
// upstream fails (stale-on-error). They live apart from <module>/@v/list, which lists only the
// versions the store holds, so that the store stays a valid static GOPROXY.
const upstreamCopyPrefix = "_mirror/upstream/"

// serveList answers <module>/@v/list: the union of the upstream's versions (fresh for FreshFor)
// and those the store holds.
func (h *Handler) serveList(x *exchange) {
	ctx := x.r.Context()
	held, err := h.readVersions(ctx, x.req.Key)
	if err != nil {
		h.storeFailed(x, err)
		return
	}
	if x.up == nil {
		x.cache = cacheHit
		h.serveVersions(x, held, nil, false)
		return
	}
	copyKey := upstreamCopyPrefix + x.req.Key
	if h.fresh.has(x.req.Key) {
		x.cache = cacheHit
		remote, err := h.readVersions(ctx, copyKey)
		if err != nil {
			h.storeFailed(x, err)
			return
		}
		h.serveVersions(x, held, remote, true)
		return
	}
	start := time.Now()
	data, err := h.refresh(ctx, x.up, x.req.Key, copyKey, maxList, checkList)
	x.upstream = time.Since(start)
	switch {
	case err == nil:
		x.cache = cacheMiss
		h.serveVersions(x, held, parseVersions(data), true)
	case upstream.IsNotFound(err):
		// The upstream knows no versions; what the store holds is still true.
		x.cache = cacheMiss
		h.serveVersions(x, held, nil, false)
	default:
		stale, rerr := h.readVersions(ctx, copyKey)
		if rerr != nil || (len(held) == 0 && len(stale) == 0) {
			h.fail(x, http.StatusBadGateway, goproxy.CacheNoStore, fmt.Sprintf("list %s: %v", x.req.Path, err))
			return
		}
		x.cache = cacheStale
		h.serveVersions(x, held, stale, true)
	}
}

// serveVersions answers a list: the sorted union of a and b. An empty list is a valid answer
// only when the upstream knows the module; otherwise it answers 404 so that the go command
// falls through to its next proxy.
func (h *Handler) serveVersions(x *exchange, a, b []string, known bool) {
	versions := mergeVersions(a, b)
	if len(versions) == 0 && !known {
		h.fail(x, http.StatusNotFound, goproxy.CacheNotFound, fmt.Sprintf("%s: no versions known", x.req.Path))
		return
	}
	var buf bytes.Buffer
	for _, v := range versions {
		buf.WriteString(v)
		buf.WriteByte('\n')
	}
	h.serveBytes(x, buf.Bytes(), goproxy.CacheShort)
}

// serveLatest answers <module>/@latest from the upstream (fresh for FreshFor), else from the
// last upstream answer, else from what the store holds (heldLatest).
func (h *Handler) serveLatest(x *exchange) {
	ctx := x.r.Context()
	copyKey := upstreamCopyPrefix + x.req.Key
	if x.up != nil {
		if h.fresh.has(x.req.Key) {
			if data, _, err := store.ReadAll(ctx, h.cfg.Store, copyKey, maxInfo); err == nil {
				x.cache = cacheHit
				h.serveBytes(x, data, goproxy.CacheShort)
				return
			}
		}
		start := time.Now()
		data, err := h.refresh(ctx, x.up, x.req.Key, copyKey, maxInfo, checkLatest)
		x.upstream = time.Since(start)
		if err == nil {
			x.cache = cacheMiss
			h.keepLatestIfWhole(ctx, x.req.Key, data)
			h.serveBytes(x, data, goproxy.CacheShort)
			return
		}
		if upstream.IsNotFound(err) {
			x.cache = cacheMiss
			h.fail(x, http.StatusNotFound, goproxy.CacheNotFound, err.Error())
			return
		}
		if data, _, rerr := store.ReadAll(ctx, h.cfg.Store, copyKey, maxInfo); rerr == nil {
			x.cache = cacheStale
			h.serveBytes(x, data, goproxy.CacheShort)
			return
		}
		defer func() { x.cache = cacheStale }()
	}
	// Offline, or the upstream failed with nothing to fall back on: what the store holds.
	x.cache = cacheHit
	data, err := h.heldLatest(ctx, x.req)
	switch {
	case errors.Is(err, store.ErrNotExist):
		h.fail(x, http.StatusNotFound, goproxy.CacheNotFound, fmt.Sprintf("%s: no version in this mirror", x.req.Path))
	case err != nil:
		h.storeFailed(x, err)
	default:
		h.serveBytes(x, data, goproxy.CacheShort)
	}
}

// keepLatestIfWhole stores an upstream @latest answer under the module's own @latest key (see
// recordWhole) when the store already holds the version it names whole.
func (h *Handler) keepLatestIfWhole(ctx context.Context, latestKey string, data []byte) {
	var info infoJSON
	if json.Unmarshal(data, &info) != nil {
		return
	}
	ev, err := module.EscapeVersion(info.Version)
	if err != nil {
		return
	}
	if h.holdsWhole(ctx, strings.TrimSuffix(latestKey, "@latest")+"@v/"+ev, "") {
		h.putLatest(ctx, latestKey, data)
	}
}

// heldLatest answers @latest from the store alone, as the go command would choose from the stored
// list: the highest release, else the highest pre-release, skipping the versions that the
// go.mod of the highest one retracts (unless that leaves none); with no listed version, the
// stored @latest answer (a module with pseudo-versions only). Nothing to answer with is
// store.ErrNotExist.
func (h *Handler) heldLatest(ctx context.Context, req goproxy.Request) ([]byte, error) {
	moduleKey := strings.TrimSuffix(req.Key, "@latest")
	held, err := h.readVersions(ctx, moduleKey+"@v/list")
	if err != nil {
		return nil, err
	}
	if len(held) == 0 {
		data, _, err := store.ReadAll(ctx, h.cfg.Store, req.Key, maxInfo)
		return data, err
	}
	var retractions []*modfile.Retract
	if top := preferredVersion(held, nil); top != "" {
		retractions = h.retractions(ctx, req.Path, top)
	}
	latest := preferredVersion(held, retractions)
	if latest == "" {
		latest = preferredVersion(held, nil)
	}
	data, _, err := store.ReadAll(ctx, h.cfg.Store, infoKey(req.Path, latest), maxInfo)
	if err != nil {
		data, _ = json.Marshal(infoJSON{Version: latest})
	}
	return data, nil
}

// retractions reads the retract directives of path@version's stored go.mod; none if it cannot.
func (h *Handler) retractions(ctx context.Context, path, version string) []*modfile.Retract {
	key := strings.TrimSuffix(infoKey(path, version), ".info") + ".mod"
	data, _, err := store.ReadAll(ctx, h.cfg.Store, key, maxMod)
	if err != nil {
		return nil
	}
	f, err := modfile.ParseLax(key, data, nil)
	if err != nil {
		return nil
	}
	return f.Retract
}

// preferredVersion returns the version the go command's @latest picks from versions (sorted): the
// highest release, else the highest pre-release, leaving out those retracted; "" if none is left.
func preferredVersion(versions []string, retracted []*modfile.Retract) string {
	best := ""
	for _, v := range slices.Backward(versions) {
		if isRetracted(v, retracted) {
			continue
		}
		if semver.Prerelease(v) == "" {
			return v
		}
		if best == "" {
			best = v
		}
	}
	return best
}

// isRetracted reports whether a retract directive covers v.
func isRetracted(v string, retracted []*modfile.Retract) bool {
	for _, r := range retracted {
		if semver.Compare(r.Low, v) <= 0 && semver.Compare(v, r.High) <= 0 {
			return true
		}
	}
	return false
}

// serveQuery passes a non-canonical .info query (a branch, a tag prefix) to the upstream. The
// answer is never stored as the version's .info: it changes as the branch moves. Like list and
// @latest, the last answer is kept apart for stale-on-error.
func (h *Handler) serveQuery(x *exchange) {
	x.cache = cacheBypass
	if x.up == nil {
		h.fail(x, http.StatusNotFound, goproxy.CacheNotFound,
			fmt.Sprintf("%s: no query is resolved here, since %s; ask for a canonical version", x.req.ModuleVersion(), h.noUpstreamReason(x)))
		return
	}
	ctx := x.r.Context()
	copyKey := upstreamCopyPrefix + x.req.Key
	start := time.Now()
	data, err := h.refresh(ctx, x.up, x.req.Key, copyKey, maxInfo, checkLatest)
	x.upstream = time.Since(start)
	if err != nil && !upstream.IsNotFound(err) {
		if stale, _, rerr := store.ReadAll(ctx, h.cfg.Store, copyKey, maxInfo); rerr == nil {
			x.cache = cacheStale
			h.serveBytes(x, stale, goproxy.CacheShort)
			return
		}
	}
	if err != nil {
		h.fillFailed(x, fmt.Errorf("query %s: %w", x.req.ModuleVersion(), err))
		return
	}
	h.serveBytes(x, data, goproxy.CacheShort)
}

// serveSumDB proxies the checksum database, caching what never changes in the store.
func (h *Handler) serveSumDB(x *exchange) {
	db := h.cfg.Checksums
	if db == nil {
		h.fail(x, http.StatusNotFound, goproxy.CacheNotFound, "this proxy does not serve a checksum database (-sumdb off)")
		return
	}
	if x.req.SumDBName != db.Name() {
		h.fail(x, http.StatusNotFound, goproxy.CacheNotFound,
			fmt.Sprintf("unknown checksum database %q: this proxy serves %q", x.req.SumDBName, db.Name()))
		return
	}
	start := time.Now()
	data, hit, err := db.Fetch(x.r.Context(), x.req.SumDBPath)
	if hit {
		x.cache = cacheHit
	} else {
		x.cache = cacheMiss
		x.upstream = time.Since(start)
	}
	switch {
	case err == nil:
		h.serveBytes(x, data, x.req.CacheControl())
	case errors.Is(err, checksum.ErrBadPath), errors.Is(err, store.ErrNotExist), upstream.IsNotFound(err):
		h.fail(x, http.StatusNotFound, goproxy.CacheNotFound, err.Error())
	default:
		h.fail(x, http.StatusBadGateway, goproxy.CacheNoStore, err.Error())
	}
}

// refresh fetches a mutable answer from the upstream, once per key at a time, checks it, keeps a
// copy for stale-on-error and marks the key fresh.
func (h *Handler) refresh(ctx context.Context, up Upstream, key, copyKey string, limit int64, check func([]byte) error) ([]byte, error) {
	if h.notFound.has(key) {
		return nil, &upstream.Error{URL: key, Status: http.StatusNotFound,
			Reason: fmt.Sprintf("not found upstream (remembered for %s)", h.cfg.NotFoundFor)}
	}
	v, err, _ := h.fills.Do(key, func() (any, error) {
		fctx, cancel := h.fillContext(ctx)
		defer cancel()
		data, err := fetchSmall(fctx, up, key, limit)
		if err == nil {
			err = check(data)
		}
		if upstream.IsNotFound(err) {
			h.notFound.add(key, h.cfg.NotFoundFor)
		}
		if err != nil {
			return nil, err
		}
		// A read costs less than a write on object stores, and lists rarely change.
		if old, _, err := store.ReadAll(fctx, h.cfg.Store, copyKey, limit); err != nil || !bytes.Equal(old, data) {
			if _, err := h.cfg.Store.Put(fctx, copyKey, bytes.NewReader(data), int64(len(data)), store.PutOptions{}); err != nil {
				h.log.Warn("keep upstream copy", "key", copyKey, "err", err)
			}
		}
		h.fresh.add(key, h.cfg.FreshFor)
		return data, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

// addToList records a stored release in its module's list with compare-and-swap, so that
// concurrent fills of one module never lose a version.
func (h *Handler) addToList(ctx context.Context, path, version string) (err error) {
	// Lists only grow: a version once seen in its list needs no second look.
	if h.listed.has(path + "@" + version) {
		return nil
	}
	defer func() {
		if err == nil {
			h.listed.add(path+"@"+version, time.Hour)
		}
	}()
	esc, err := module.EscapePath(path)
	if err != nil {
		return err
	}
	key := esc + "/@v/list"
	for attempt := 0; attempt < 10; attempt++ {
		data, info, err := store.ReadAll(ctx, h.cfg.Store, key, maxList)
		opts := store.PutOptions{ContentType: "text/plain; charset=utf-8", CacheControl: goproxy.CacheShort}
		switch {
		case err == nil:
			opts.IfMatch = info.ETag
		case errors.Is(err, store.ErrNotExist):
			opts.IfAbsent = true
		default:
			return err
		}
		versions := parseVersions(data)
		for _, v := range versions {
			if v == version {
				return nil
			}
		}
		var buf bytes.Buffer
		for _, v := range mergeVersions(versions, []string{version}) {
			buf.WriteString(v)
			buf.WriteByte('\n')
		}
		_, err = h.cfg.Store.Put(ctx, key, &buf, int64(buf.Len()), opts)
		if err == nil || !(errors.Is(err, store.ErrPrecondition) || errors.Is(err, store.ErrExist)) {
			return err
		}
	}
	return fmt.Errorf("update %s: too many concurrent writers", key)
}

// readVersions reads a stored list; a missing one is empty.
func (h *Handler) readVersions(ctx context.Context, key string) ([]string, error) {
	data, _, err := store.ReadAll(ctx, h.cfg.Store, key, maxList)
	if errors.Is(err, store.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseVersions(data), nil
}

// parseVersions reads a list answer, keeping canonical releases and dropping anything else.
func parseVersions(data []byte) []string {
	var versions []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && goproxy.IsRelease(f[0]) {
			versions = append(versions, f[0])
		}
	}
	return versions
}

// mergeVersions returns the semver-sorted union of a and b.
func mergeVersions(a, b []string) []string {
	seen := make(map[string]bool, len(a)+len(b))
	var out []string
	for _, v := range append(append([]string(nil), a...), b...) {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	semver.Sort(out)
	return out
}

func checkList(data []byte) error {
	if bytes.IndexByte(data, 0) >= 0 {
		return errors.New("invalid list from upstream: binary content")
	}
	return nil
}

// checkLatest checks an @latest or query answer: JSON naming a canonical version.
func checkLatest(data []byte) error {
	var info infoJSON
	if err := json.Unmarshal(data, &info); err != nil {
		return fmt.Errorf("invalid answer from upstream: %w", err)
	}
	if module.CanonicalVersion(info.Version) != info.Version || info.Version == "" {
		return fmt.Errorf("upstream answered non-canonical version %q", info.Version)
	}
	return nil
}

func infoKey(path, version string) string {
	esc, _ := module.EscapePath(path)
	ev, _ := module.EscapeVersion(version)
	return esc + "/@v/" + ev + ".info"
}
