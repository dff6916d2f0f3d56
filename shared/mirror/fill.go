package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"

	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/spool"
	"github.com/modmirror/modmirror/shared/store"
)

const (
	maxInfo = 64 << 10
	maxMod  = modzip.MaxGoMod
	maxZip  = modzip.MaxZipFile
	// defaultSpoolMemory is Config.SpoolMemory's default.
	defaultSpoolMemory = 32 << 20
)

// modEntry is one module version's go.mod, loaded and verified once per run.
type modEntry struct {
	done    chan struct{}
	data    []byte
	hash    string
	present bool // the mirror held it already
	err     error
}

// loadMod returns m's verified go.mod file, from the mirror or the upstream, once per run however
// many build lists and go.sum lines ask for it. sum is the go.sum hash to check, if any.
func (g *Generator) loadMod(ctx context.Context, m module.Version, sum string) *modEntry {
	g.mu.Lock()
	e := g.mods[m]
	if e != nil {
		g.mu.Unlock()
		select {
		case <-e.done:
			return e
		case <-ctx.Done():
			return &modEntry{err: ctx.Err()}
		}
	}
	e = &modEntry{done: make(chan struct{})}
	g.mods[m] = e
	g.mu.Unlock()
	e.data, e.hash, e.present, e.err = g.fetchMod(ctx, m, sum)
	close(e.done)
	return e
}

func (g *Generator) fetchMod(ctx context.Context, m module.Version, sum string) (data []byte, hash string, present bool, err error) {
	key, err := objectKey(m, "mod")
	if err != nil {
		return nil, "", false, err
	}
	data, _, err = store.ReadAll(ctx, g.st, key, maxMod)
	switch {
	case err == nil:
		present = true
	case errors.Is(err, store.ErrNotExist):
		if data, err = g.fetchSmall(ctx, key, maxMod); err != nil {
			return nil, "", false, err
		}
	default:
		return nil, "", false, fmt.Errorf("read the mirror's %s: %w", key, err)
	}
	hash = checksum.HashMod(data)
	if err := g.check(m, "go.mod", hash, sum, present); err != nil {
		return nil, "", false, err
	}
	if g.db != nil {
		if err := g.db.VerifyMod(ctx, m.Path, m.Version, data); err != nil {
			return nil, "", false, inMirror(err, present)
		}
	}
	return data, hash, present, nil
}

// check compares the hash of m's file ("go.mod" or "zip") with the go.sum hash it came with (sum)
// and with the one the mirror recorded for it; present says the file came from the mirror.
func (g *Generator) check(m module.Version, file, got, sum string, present bool) error {
	if sum != "" && got != sum {
		return inMirror(&checksum.MismatchError{Path: m.Path, Version: m.Version, File: file, Got: got, Want: sum, Source: "go.sum"}, present)
	}
	h, _ := g.held.get(m)
	rec := h.Mod
	if file == "zip" {
		rec = h.Zip
	}
	if rec != "" && got != rec {
		return inMirror(&checksum.MismatchError{Path: m.Path, Version: m.Version, File: file, Got: got, Want: rec, Source: GoSumKey}, present)
	}
	return nil
}

// inMirror says that a failed check was of the copy the mirror held, not of a download.
func inMirror(err error, present bool) error {
	if present && err != nil {
		return fmt.Errorf("the copy the mirror holds: %w", err)
	}
	return err
}

// fillModule makes the mirror hold what w asks of m: checks everything first, then writes what
// was missing, so that a failure writes nothing. It reports whether it wrote anything, and
// whether m could be checked against nothing (no go.sum hash, no checksum database).
func (g *Generator) fillModule(ctx context.Context, m module.Version, w *want) (wrote, unverified bool, err error) {
	mod := g.loadMod(ctx, m, w.sum.Mod)
	if mod.err != nil {
		return false, false, mod.err
	}
	h, _ := g.held.get(m)
	next := hashes{Mod: mod.hash, Zip: h.Zip}

	var zip *spooled
	if w.zip {
		var hash string
		hash, zip, err = g.zip(ctx, m, w.sum.Zip)
		if err != nil {
			return false, false, err
		}
		if zip != nil {
			defer zip.Close()
		}
		next.Zip = hash
	}
	infoKey, err := objectKey(m, "info")
	if err != nil {
		return false, false, err
	}
	var info []byte
	if _, err := g.st.Stat(ctx, infoKey); errors.Is(err, store.ErrNotExist) {
		if info, err = g.fetchSmall(ctx, infoKey, maxInfo); err != nil {
			return false, false, err
		}
		if err := checkInfo(info, m.Version); err != nil {
			return false, false, err
		}
	} else if err != nil {
		return false, false, fmt.Errorf("stat the mirror's %s: %w", infoKey, err)
	}

	// Everything checked: write the missing objects, the .info last.
	if !mod.present {
		key, _ := objectKey(m, "mod")
		if err := g.put(ctx, key, bytes.NewReader(mod.data), int64(len(mod.data))); err != nil {
			return false, false, err
		}
		wrote = true
	}
	if zip != nil {
		// Hashing read the zip at offsets: it is still at its start.
		key, _ := objectKey(m, "zip")
		if err := g.put(ctx, key, zip.File, zip.size); err != nil {
			return wrote, false, err
		}
		wrote = true
	}
	if info != nil {
		if err := g.put(ctx, infoKey, bytes.NewReader(info), int64(len(info))); err != nil {
			return wrote, false, err
		}
		wrote = true
	}
	g.held.set(m, next)
	g.mu.Lock()
	mod.data = nil // written; keep memory bounded on large sets
	g.mu.Unlock()
	unverified = w.sum == (hashes{}) && (g.db == nil || g.private(m.Path))
	return wrote, unverified, nil
}

// put stores an object create-only, committing it if it was staged; an object already there is
// one an identical verified write put first.
func (g *Generator) put(ctx context.Context, key string, r io.Reader, size int64) error {
	_, err := store.PutOrCommit(ctx, g.st, key, r, size, store.PutOptions{IfAbsent: true})
	if err != nil && !errors.Is(err, store.ErrExist) {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

// zip returns the h1 hash of m's zip, checked against sum (the go.sum hash, if any), the hash the
// mirror recorded, and the checksum database; and the zip itself when the mirror lacks it. A zip
// the mirror holds and recorded is trusted without reading it (generator verify reads it).
func (g *Generator) zip(ctx context.Context, m module.Version, sum string) (string, *spooled, error) {
	key, err := objectKey(m, "zip")
	if err != nil {
		return "", nil, err
	}
	var (
		hash    string
		sp      *spooled
		present bool
	)
	info, err := g.st.Stat(ctx, key)
	switch {
	case err == nil:
		present = true
		if h, _ := g.held.get(m); h.Zip != "" {
			hash = h.Zip
		} else if hash, err = g.hashStored(ctx, m, key, info.Size); err != nil {
			return "", nil, err
		}
	case errors.Is(err, store.ErrNotExist):
		if sp, err = g.fetchZip(ctx, key); err != nil {
			return "", nil, err
		}
		if hash, err = g.hasher.HashZip(sp, sp.size, m.Path, m.Version); err != nil {
			sp.Close()
			return "", nil, fmt.Errorf("invalid zip from the upstream: %w", err)
		}
	default:
		return "", nil, fmt.Errorf("stat the mirror's %s: %w", key, err)
	}
	fail := func(err error) (string, *spooled, error) {
		if sp != nil {
			sp.Close()
		}
		return "", nil, err
	}
	if err := g.check(m, "zip", hash, sum, present); err != nil {
		return fail(err)
	}
	if g.db != nil {
		if err := g.db.VerifyZipHash(ctx, m.Path, m.Version, hash); err != nil {
			return fail(inMirror(err, present))
		}
	}
	return hash, sp, nil
}

// hashStored hashes a zip the mirror holds.
func (g *Generator) hashStored(ctx context.Context, m module.Version, key string, size int64) (string, error) {
	obj, err := g.st.Open(ctx, key)
	if err != nil {
		return "", fmt.Errorf("open the mirror's %s: %w", key, err)
	}
	defer obj.Close()
	if ra, ok := obj.(io.ReaderAt); ok {
		return g.hasher.HashZip(ra, size, m.Path, m.Version)
	}
	sp, err := g.spool(obj, size)
	if err != nil {
		return "", fmt.Errorf("read the mirror's %s: %w", key, err)
	}
	defer sp.Close()
	return g.hasher.HashZip(sp, sp.size, m.Path, m.Version)
}

// spooled is a zip held while it is verified, with its size.
type spooled struct {
	spool.File
	size int64
}

// fetchZip downloads a zip into a spool.
func (g *Generator) fetchZip(ctx context.Context, key string) (*spooled, error) {
	if g.cfg.Upstream == nil {
		return nil, fmt.Errorf("%s: not in the mirror, and no upstream to fetch it from", key)
	}
	resp, err := g.cfg.Upstream.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.Size > maxZip {
		return nil, fmt.Errorf("%s: zip of %d bytes is over the %d-byte limit", resp.URL, resp.Size, int64(maxZip))
	}
	// A zip too large for memory is written where the mirror will hold it, if the store can
	// stage, and committed once verified.
	var newFile func() (spool.File, error)
	if st := g.st.stager(); st != nil {
		newFile = func() (spool.File, error) { return st.Stage(ctx, key) }
	}
	f, n, err := g.spoolOptions.CopyTo(newFile, &counter{r: resp.Body, g: g}, resp.Size, maxZip)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", resp.URL, err)
	}
	return &spooled{File: f, size: n}, nil
}

// spool copies r (size bytes, or -1 if unknown) into memory, if it fits in what is left of the
// run's spool memory, or else into a temporary file.
func (g *Generator) spool(r io.Reader, size int64) (*spooled, error) {
	f, n, err := g.spoolOptions.Copy(r, size, maxZip)
	if err != nil {
		return nil, err
	}
	return &spooled{File: f, size: n}, nil
}

// fetchSmall downloads a small object whole.
func (g *Generator) fetchSmall(ctx context.Context, key string, limit int64) ([]byte, error) {
	if g.cfg.Upstream == nil {
		return nil, fmt.Errorf("%s: not in the mirror, and no upstream to fetch it from", key)
	}
	resp, err := g.cfg.Upstream.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	resp.Body = readCloser{&counter{r: resp.Body, g: g}, resp.Body}
	return resp.ReadAll(limit)
}

// readCloser reads through one reader and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}

// counter counts the bytes read from the upstream.
type counter struct {
	r io.Reader
	g *Generator
}

func (c *counter) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 {
		c.g.fetched.Add(int64(n))
		c.g.progress.Fetched(int64(n))
	}
	return n, err
}

// checkInfo checks an .info file: JSON naming the version.
func checkInfo(data []byte, version string) error {
	var info struct{ Version string }
	if err := json.Unmarshal(data, &info); err != nil {
		return fmt.Errorf("invalid .info from the upstream: %w", err)
	}
	if info.Version != version {
		return fmt.Errorf("the upstream's .info names version %q, not %q", info.Version, version)
	}
	return nil
}
