// Package sumdbrender writes the checksum-database objects a static mirror needs for the go
// command to verify its modules with no network: sumdb/<name>/supported, a lookup answer for
// every module version, and the tiles that prove them.
//
// The go command, with no tree head of its own yet, reads a lookup answer (the record and a
// signed tree head), takes that tree head as its latest, and proves the record from the tiles of
// that tree; a second lookup under a different tree head would need the tiles of that tree too,
// and proof that one tree extends the other. So every lookup is issued again under one signed tree
// head (records never change once logged; a tree head signed by the database is valid with any of
// its records), and the mirror holds exactly the tiles that prove every record under that tree:
// the objects depend only on the set of records and the tree head, whatever order or tree sizes
// they were first fetched in.
package sumdbrender

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sync/errgroup"

	"github.com/modmirror/modmirror/shared/store"
)

// TileHeight is the tile height the go command uses with every checksum database.
const TileHeight = 8

// maxObject bounds a lookup or tile read back from a store.
const maxObject = 4 << 20

// TileSource reads a tile ("tile/8/0/001", "tile/8/1/000.p/5") from somewhere other than the
// mirror: a scratch store, the database itself. Any error means the source lacks it.
type TileSource func(ctx context.Context, path string) ([]byte, error)

// Config says where to write and where tiles come from.
type Config struct {
	Name     string // the database's name, as in sumdb/<name>/
	Verifier note.Verifier
	// Mirror receives the objects; tiles it already holds are read from it first.
	Mirror store.Store
	// Sources are consulted in order for tiles the mirror lacks.
	Sources []TileSource
	// Jobs bounds concurrent tile reads. Default 8.
	Jobs int
}

// Record is one module version's lookup answer, as the database served it.
type Record struct {
	Path, Version string
	Data          []byte
}

// LatestKey is where a mirror keeps the signed tree head its lookups are issued under (the
// checksum.DB's state key, so that an offline DB on the mirror starts from it).
func LatestKey(name string) string { return "_mirror/sumdb/" + name + "/latest" }

// LookupKey is the key of path@version's lookup answer.
func LookupKey(name, path, version string) (string, error) {
	ep, err := module.EscapePath(path)
	if err != nil {
		return "", err
	}
	ev, err := module.EscapeVersion(version)
	if err != nil {
		return "", err
	}
	return "sumdb/" + name + "/lookup/" + ep + "@" + ev, nil
}

// OpenTree verifies a signed tree head and parses it.
func OpenTree(v note.Verifier, signed []byte) (tlog.Tree, error) {
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("open tree head: %w", err)
	}
	tree, err := tlog.ParseTree([]byte(n.Text))
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("parse tree head: %w", err)
	}
	return tree, nil
}

// Render writes supported, every record's lookup under the tree head signed in latest, the tiles
// that prove every record under it, and latest itself at LatestKey. If prev, a tree head signed
// earlier (the one the mirror's lookups were under before), is smaller, it also writes the tiles
// proving that latest extends prev, for go commands that remember prev; a latest that does not
// extend prev is an error. Objects that already hold the right bytes are not written again. It
// returns the tree head's size.
func Render(ctx context.Context, c Config, latest, prev []byte, records []Record) (int64, error) {
	tree, err := OpenTree(c.Verifier, latest)
	if err != nil {
		return 0, fmt.Errorf("render checksum database %s: %w", c.Name, err)
	}
	prefix := "sumdb/" + c.Name + "/"
	if _, err := putIfChanged(ctx, c.Mirror, prefix+"supported", nil); err != nil {
		return 0, fmt.Errorf("render checksum database %s: %w", c.Name, err)
	}

	type parsed struct {
		key  string
		id   int64
		text []byte
	}
	recs := make([]parsed, 0, len(records))
	indexes := make([]int64, 0, len(records))
	for _, r := range records {
		key, err := LookupKey(c.Name, r.Path, r.Version)
		if err != nil {
			return 0, fmt.Errorf("render checksum database %s: %s@%s: %w", c.Name, r.Path, r.Version, err)
		}
		id, text, _, err := tlog.ParseRecord(r.Data)
		if err != nil {
			return 0, fmt.Errorf("render checksum database %s: lookup of %s@%s: %w", c.Name, r.Path, r.Version, err)
		}
		if id < 0 || id >= tree.N {
			return 0, fmt.Errorf("render checksum database %s: record %d (%s@%s) is not in the tree of size %d", c.Name, id, r.Path, r.Version, tree.N)
		}
		recs = append(recs, parsed{key, id, text})
		indexes = append(indexes, tlog.StoredHashIndex(0, id))
	}

	tr := &tileReader{ctx: ctx, c: c, prefix: prefix, inMirror: map[tlog.Tile]bool{}}
	if len(indexes) > 0 {
		hashes, err := tlog.TileHashReader(tree, tr).ReadHashes(indexes)
		if err == nil {
			err = tr.saveErr()
		}
		if err != nil {
			return 0, fmt.Errorf("render checksum database %s: prove the records under the tree of size %d: %w", c.Name, tree.N, err)
		}
		for i, h := range hashes {
			if h != tlog.RecordHash(recs[i].text) {
				return 0, fmt.Errorf("render checksum database %s: %s: the record does not match the tree of size %d", c.Name, recs[i].key, tree.N)
			}
		}
	}
	if len(prev) > 0 {
		old, err := OpenTree(c.Verifier, prev)
		if err != nil {
			return 0, fmt.Errorf("render checksum database %s: the mirror's earlier %w", c.Name, err)
		}
		if old.N > tree.N {
			return 0, fmt.Errorf("render checksum database %s: the tree of size %d is older than the mirror's (%d)", c.Name, tree.N, old.N)
		}
		if old.N > 0 {
			h, err := tlog.TreeHash(old.N, tlog.TileHashReader(tree, tr))
			if err == nil {
				err = tr.saveErr()
			}
			if err != nil {
				return 0, fmt.Errorf("render checksum database %s: prove the tree of size %d extends the mirror's of size %d: %w", c.Name, tree.N, old.N, err)
			}
			if h != old.Hash {
				return 0, fmt.Errorf("render checksum database %s: SECURITY ERROR: the tree of size %d does not extend the mirror's of size %d", c.Name, tree.N, old.N)
			}
		}
	}

	// Lookups last: a lookup under the new tree head is useful only once its tiles are there.
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(jobs(c))
	for _, r := range recs {
		eg.Go(func() error {
			msg, err := tlog.FormatRecord(r.id, r.text)
			if err != nil {
				return fmt.Errorf("render checksum database %s: %s: %w", c.Name, r.key, err)
			}
			if _, err := putIfChanged(ectx, c.Mirror, r.key, append(msg, latest...)); err != nil {
				return fmt.Errorf("render checksum database %s: %w", c.Name, err)
			}
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return 0, err
	}
	if _, err := putIfChanged(ctx, c.Mirror, LatestKey(c.Name), latest); err != nil {
		return 0, fmt.Errorf("render checksum database %s: %w", c.Name, err)
	}
	return tree.N, nil
}

// jobs returns the concurrency to use.
func jobs(c Config) int {
	if c.Jobs <= 0 {
		return 8
	}
	return c.Jobs
}

// putIfChanged stores data under key unless the key already holds exactly data. It reports
// whether it wrote.
func putIfChanged(ctx context.Context, st store.Store, key string, data []byte) (bool, error) {
	cur, _, err := store.ReadAll(ctx, st, key, maxObject)
	switch {
	case err == nil && bytes.Equal(cur, data):
		return false, nil
	case err != nil && !errors.Is(err, store.ErrNotExist):
		return false, err
	}
	opts := store.PutOptions{IfAbsent: err != nil}
	if _, err := st.Put(ctx, key, bytes.NewReader(data), int64(len(data)), opts); err != nil {
		return false, err
	}
	return true, nil
}

// tileReader is a tlog.TileReader over the mirror and the sources. It remembers which tiles the
// mirror holds under their exact paths, and SaveTiles writes the others there once the hash
// reader has authenticated them.
type tileReader struct {
	ctx    context.Context
	c      Config
	prefix string

	mu       sync.Mutex
	inMirror map[tlog.Tile]bool
	err      error // the first failed save
}

func (r *tileReader) Height() int { return TileHeight }

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	data := make([][]byte, len(tiles))
	g, ctx := errgroup.WithContext(r.ctx)
	g.SetLimit(jobs(r.c))
	for i, t := range tiles {
		g.Go(func() error {
			d, err := r.readTile(ctx, t)
			data[i] = d
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return data, nil
}

// readTile reads t as the go command would: the exact tile, else the full tile cut to t's width;
// from the mirror, then from each source.
func (r *tileReader) readTile(ctx context.Context, t tlog.Tile) ([]byte, error) {
	full := t
	full.W = 1 << uint(t.H)
	// cut returns the first t.W hashes of data, if data is a tile of width w.
	cut := func(data []byte, w int) ([]byte, bool) {
		if len(data) != w*tlog.HashSize {
			return nil, false
		}
		return data[:t.W*tlog.HashSize], true
	}
	if data, _, err := store.ReadAll(ctx, r.c.Mirror, r.prefix+t.Path(), maxObject); err == nil {
		if d, ok := cut(data, t.W); ok {
			r.mu.Lock()
			r.inMirror[t] = true
			r.mu.Unlock()
			return d, nil
		}
	}
	if t != full {
		if data, _, err := store.ReadAll(ctx, r.c.Mirror, r.prefix+full.Path(), maxObject); err == nil {
			if d, ok := cut(data, full.W); ok {
				return d, nil
			}
		}
	}
	var lastErr error
	for _, src := range r.c.Sources {
		data, err := src(ctx, t.Path())
		if err == nil {
			if d, ok := cut(data, t.W); ok {
				return d, nil
			}
			err = fmt.Errorf("malformed tile of %d bytes", len(data))
		}
		lastErr = err
		if t != full {
			if data, err := src(ctx, full.Path()); err == nil {
				if d, ok := cut(data, full.W); ok {
					return d, nil
				}
			}
		}
	}
	if lastErr == nil {
		lastErr = errors.New("no source has it")
	}
	return nil, fmt.Errorf("read tile %s: %w", t.Path(), lastErr)
}

// SaveTiles writes the authenticated tiles the mirror lacks.
func (r *tileReader) SaveTiles(tiles []tlog.Tile, data [][]byte) {
	for i, t := range tiles {
		r.mu.Lock()
		have := r.inMirror[t]
		r.mu.Unlock()
		if have {
			continue
		}
		_, err := r.c.Mirror.Put(r.ctx, r.prefix+t.Path(), bytes.NewReader(data[i]), int64(len(data[i])), store.PutOptions{IfAbsent: true})
		if err != nil && !errors.Is(err, store.ErrExist) {
			r.mu.Lock()
			if r.err == nil {
				r.err = fmt.Errorf("save tile %s: %w", t.Path(), err)
			}
			r.mu.Unlock()
			continue
		}
		r.mu.Lock()
		r.inMirror[t] = true
		r.mu.Unlock()
	}
}

func (r *tileReader) saveErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}
