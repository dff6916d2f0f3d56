package checksum

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/modmirror/modmirror/shared/store"
)

// Fetch serves the database's own endpoints for the proxy's /sumdb/<name>/<path>: "supported"
// answers empty; "lookup/..." and "tile/..." come from the store, else from Remote and are then
// stored; "latest" comes from Remote, with the stored copy as a fallback (stale-on-error).
// The returned bool says whether the answer came from the store (a hit).
//
// Only verified objects are stored, as they share their keys with the DB's own verified state: a
// lookup is fetched and verified through Lookup; a tile is stored once it is authenticated against
// the DB's signed tree head, and served without being stored when that tree is too small to
// authenticate it. A path that is not a checksum database path is an error wrapping ErrBadPath; a
// lookup of a module matching NoSumDB wraps ErrNotInDB; without Remote, a store miss wraps
// ErrOffline and fs.ErrNotExist.
func (d *DB) Fetch(ctx context.Context, path string) (data []byte, hit bool, err error) {
	switch {
	case path == "supported":
		return []byte{}, true, nil
	case path == "latest":
		return d.fetchLatest(ctx)
	case strings.HasPrefix(path, "lookup/"):
		return d.fetchLookup(ctx, path)
	case strings.HasPrefix(path, "tile/"):
		return d.fetchTile(ctx, path)
	}
	return nil, false, fmt.Errorf("fetch sumdb/%s/%s: %w", d.name, path, ErrBadPath)
}

// fetchLookup serves "lookup/<escaped path>@<escaped version>".
func (d *DB) fetchLookup(ctx context.Context, p string) ([]byte, bool, error) {
	epath, evers, ok := strings.Cut(strings.TrimPrefix(p, "lookup/"), "@")
	if !ok {
		return nil, false, fmt.Errorf("fetch sumdb/%s/%s: %w: want lookup/<module>@<version>", d.name, p, ErrBadPath)
	}
	path, err := module.UnescapePath(epath)
	if err != nil {
		return nil, false, fmt.Errorf("fetch sumdb/%s/%s: %w: %v", d.name, p, ErrBadPath, err)
	}
	version, err := module.UnescapeVersion(evers)
	if err != nil {
		return nil, false, fmt.Errorf("fetch sumdb/%s/%s: %w: %v", d.name, p, ErrBadPath, err)
	}
	if err := checkModVer(path, version); err != nil {
		return nil, false, fmt.Errorf("fetch sumdb/%s/%s: %w: %v", d.name, p, ErrBadPath, err)
	}
	if d.skip(path) {
		return nil, false, fmt.Errorf("fetch sumdb/%s/%s: %w (the path matches NoSumDB %q)", d.name, p, ErrNotInDB, d.nosumdb)
	}
	key := d.prefix + p
	data, err := d.readHit(ctx, key)
	if data != nil || err != nil {
		return data, err == nil, err
	}
	if _, err := d.Lookup(ctx, path, version); err != nil {
		return nil, false, fmt.Errorf("fetch sumdb/%s/%s: %w", d.name, p, err)
	}
	// The client stored the verified lookup under key.
	data, _, err = d.readObject(ctx, key)
	if err != nil {
		return nil, false, fmt.Errorf("fetch sumdb/%s/%s: verified, but reading it back from the store: %w", d.name, p, err)
	}
	return data, false, nil
}

// readHit reads key from the store: the data on a hit, (nil, nil) on a miss with Remote set, an
// error wrapping ErrOffline on a miss without Remote.
func (d *DB) readHit(ctx context.Context, key string) ([]byte, error) {
	data, _, err := d.readObject(ctx, key)
	switch {
	case err == nil:
		return data, nil
	case !errors.Is(err, store.ErrNotExist):
		return nil, fmt.Errorf("fetch %s: %w", key, err)
	case d.remote == nil:
		return nil, fmt.Errorf("fetch %s: %w: %w", key, ErrOffline, err)
	}
	return nil, nil
}

// fetchTile serves "tile/<H>/<L>/<K>[.p/<W>]" and "tile/<H>/data/<K>[.p/<W>]".
func (d *DB) fetchTile(ctx context.Context, p string) ([]byte, bool, error) {
	t, err := tlog.ParseTilePath(p)
	if err != nil {
		return nil, false, fmt.Errorf("fetch sumdb/%s/%s: %w: %v", d.name, p, ErrBadPath, err)
	}
	key := d.prefix + p
	data, err := d.readHit(ctx, key)
	if data != nil || err != nil {
		return data, err == nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, d.timeout)
	data, err = d.remote(rctx, p)
	cancel()
	if err != nil {
		return nil, false, fmt.Errorf("fetch sumdb/%s/%s: %w", d.name, p, d.notExist(err))
	}
	if t.L >= 0 && len(data) != t.W*tlog.HashSize || len(data) == 0 {
		return nil, false, fmt.Errorf("fetch sumdb/%s/%s: malformed tile of %d bytes", d.name, p, len(data))
	}
	ok, err := d.authenticateTile(ctx, t, data)
	if err != nil {
		return nil, false, fmt.Errorf("fetch sumdb/%s/%s: %w", d.name, p, err)
	}
	if ok {
		d.writeCache(ctx, key, data)
	} else {
		d.log.Debug("checksum database: serving a tile the mirror cannot authenticate yet, without storing it",
			"database", d.name, "tile", p)
	}
	return data, false, nil
}

// fetchLatest serves "latest": from Remote when it answers with a tree head signed by the
// database's key (a copy is stored), else the newest stored signed tree head.
func (d *DB) fetchLatest(ctx context.Context) ([]byte, bool, error) {
	var remoteErr error
	if d.remote != nil {
		rctx, cancel := context.WithTimeout(ctx, d.timeout)
		data, err := d.remote(rctx, "latest")
		cancel()
		if err == nil {
			_, err = d.openTree(data)
		}
		if err == nil {
			_, perr := d.st.Put(ctx, d.remoteLatestKey, bytes.NewReader(data), int64(len(data)),
				store.PutOptions{ContentType: "text/plain; charset=utf-8"})
			if perr != nil {
				d.log.Warn("checksum database: storing latest failed", "database", d.name, "err", perr)
			}
			return data, false, nil
		}
		remoteErr = d.notExist(err)
		d.log.Warn("checksum database: reading latest failed; serving the stored copy", "database", d.name, "err", err)
	}
	var (
		best     []byte
		bestTree tlog.Tree
		lastErr  error
	)
	for _, key := range []string{d.remoteLatestKey, d.latestKey} {
		data, _, err := d.readObject(ctx, key)
		if err == nil {
			var tree tlog.Tree
			if tree, err = d.openTree(data); err == nil && (best == nil || tree.N > bestTree.N) {
				best, bestTree = data, tree
			}
		}
		if err != nil {
			lastErr = fmt.Errorf("%s: %w", key, err)
		}
	}
	switch {
	case best != nil:
		return best, true, nil
	case remoteErr != nil:
		return nil, false, fmt.Errorf("fetch sumdb/%s/latest: %w (no stored copy: %v)", d.name, remoteErr, lastErr)
	}
	return nil, false, fmt.Errorf("fetch sumdb/%s/latest: %w: %w", d.name, ErrOffline, lastErr)
}

// notExist makes an error from Remote that NotFound recognises match fs.ErrNotExist too, so the
// HTTP layer answers 404 as the database did.
func (d *DB) notExist(err error) error {
	if d.notFound(err) && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w (%w)", err, fs.ErrNotExist)
	}
	return err
}

// openHead is openTree for the store's own head, remembering the last one it verified: the
// same bytes need no second signature check.
func (d *DB) openHead(msg []byte) (tlog.Tree, error) {
	if h := d.head.Load(); h != nil && bytes.Equal(h.msg, msg) {
		return h.tree, nil
	}
	tree, err := d.openTree(msg)
	if err == nil {
		d.head.Store(&verifiedHead{msg: bytes.Clone(msg), tree: tree})
	}
	return tree, err
}

// openTree verifies a signed tree head with the database's key and parses it.
func (d *DB) openTree(msg []byte) (tlog.Tree, error) {
	n, err := note.Open(msg, note.VerifierList(d.verifier))
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("tree head from checksum database %s: %w", d.name, err)
	}
	tree, err := tlog.ParseTree([]byte(n.Text))
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("tree head from checksum database %s: %w", d.name, err)
	}
	return tree, nil
}

// authenticateTile checks tile t's data against the DB's own signed tree head (the one its
// sumdb client keeps, itself checked for consistency). It reports false, without error, when that
// tree does not cover the tile yet or the tiles it needs cannot be read now; an error means the
// tile contradicts the tree.
func (d *DB) authenticateTile(ctx context.Context, t tlog.Tile, data []byte) (bool, error) {
	msg, _, err := d.readObject(ctx, d.latestKey)
	if err != nil {
		return false, nil
	}
	tree, err := d.openHead(msg)
	if err != nil {
		return false, nil
	}

	// The stored hashes (or, for a data tile, the record hashes) that the tile must match.
	level, first, records := 0, t.N<<uint(t.H), [][]byte(nil)
	if t.L >= 0 {
		level = t.L * t.H
	} else {
		if records = splitRecords(data); len(records) != t.W {
			return false, fmt.Errorf("data tile holds %d records, want %d", len(records), t.W)
		}
	}
	if level >= 63 || t.N > (1<<62)>>uint(t.H) || first+int64(t.W) > tree.N>>uint(level) {
		return false, nil // the tree does not cover the tile
	}
	indexes := make([]int64, t.W)
	for i := range indexes {
		indexes[i] = tlog.StoredHashIndex(level, first+int64(i))
	}

	r := &tileReader{d: d, ctx: ctx, h: t.H, stored: make(map[tlog.Tile]bool)}
	if t.L >= 0 {
		r.cand, r.candData = t, data
	}
	hashes, err := tlog.TileHashReader(tree, r).ReadHashes(indexes)
	if err != nil && r.cand != (tlog.Tile{}) {
		// Perhaps the candidate was wrong: authenticate without it, then compare.
		r.cand, r.candData = tlog.Tile{}, nil
		hashes, err = tlog.TileHashReader(tree, r).ReadHashes(indexes)
	}
	if err != nil {
		d.log.Debug("checksum database: cannot authenticate tile", "database", d.name, "tile", t.Path(), "err", err)
		return false, nil
	}
	for i, h := range hashes {
		var got tlog.Hash
		if t.L >= 0 {
			copy(got[:], data[i*tlog.HashSize:])
		} else {
			got = tlog.RecordHash(records[i])
		}
		if got != h {
			return false, fmt.Errorf("tile %s contradicts checksum database %s's tree of size %d", t.Path(), d.name, tree.N)
		}
	}
	return true, nil
}

// splitRecords splits a data tile into its records' texts: each record is its text (lines that end
// in newlines) followed by an empty line.
func splitRecords(data []byte) [][]byte {
	var recs [][]byte
	for len(data) > 0 {
		i := bytes.Index(data, []byte("\n\n"))
		if i < 0 {
			return nil
		}
		recs = append(recs, data[:i+1])
		data = data[i+2:]
	}
	return recs
}

// tileReader is a tlog.TileReader over the store and Remote, for authenticating tiles that Fetch
// serves. When asked for tile cand it answers candData, the tile being authenticated.
type tileReader struct {
	d        *DB
	ctx      context.Context
	h        int
	cand     tlog.Tile
	candData []byte

	stored map[tlog.Tile]bool // tiles read from the store: no need to save them
}

func (r *tileReader) Height() int { return r.h }

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	data := make([][]byte, len(tiles))
	for i, t := range tiles {
		var err error
		if data[i], err = r.readTile(t); err != nil {
			return nil, err
		}
	}
	return data, nil
}

// readTile reads t as the sumdb client does: from the store, or the full tile from the store, or
// from Remote, or the full tile from Remote.
func (r *tileReader) readTile(t tlog.Tile) ([]byte, error) {
	if t == r.cand {
		return r.candData, nil
	}
	d := r.d
	full := t
	full.W = 1 << uint(t.H)
	cut := func(data []byte) ([]byte, error) {
		if len(data) < t.W*tlog.HashSize {
			return nil, fmt.Errorf("tile %s: short data", full.Path())
		}
		return data[:t.W*tlog.HashSize], nil
	}
	if data, _, err := d.readObject(r.ctx, d.prefix+t.Path()); err == nil {
		r.stored[t] = true
		return data, nil
	}
	if t != full {
		if data, _, err := d.readObject(r.ctx, d.prefix+full.Path()); err == nil {
			r.stored[t] = true
			return cut(data)
		}
	}
	if d.remote == nil {
		return nil, fmt.Errorf("checksum database %s is offline and the mirror lacks %s: %w", d.name, t.Path(), ErrOffline)
	}
	ctx, cancel := context.WithTimeout(r.ctx, d.timeout)
	defer cancel()
	data, err := d.remote(ctx, t.Path())
	if err == nil {
		return data, nil
	}
	if t != full {
		if fdata, ferr := d.remote(ctx, full.Path()); ferr == nil {
			return cut(fdata)
		}
	}
	return nil, fmt.Errorf("checksum database %s: read %s: %w", d.name, t.Path(), err)
}

// SaveTiles stores the tiles ReadHashes authenticated.
func (r *tileReader) SaveTiles(tiles []tlog.Tile, data [][]byte) {
	for i, t := range tiles {
		if r.stored[t] {
			continue
		}
		r.d.writeCache(r.ctx, r.d.prefix+t.Path(), data[i])
	}
}
