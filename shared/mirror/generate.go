package mirror

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/sync/errgroup"

	"github.com/modmirror/modmirror/shared/goproxy"
	"github.com/modmirror/modmirror/shared/mirror/buildlist"
	"github.com/modmirror/modmirror/shared/mirror/hybridsig"
	"github.com/modmirror/modmirror/shared/mirror/manifest"
	"github.com/modmirror/modmirror/shared/mirror/sumdbrender"
	"github.com/modmirror/modmirror/shared/store"
)

// want is what the mirror must hold of one module version.
type want struct {
	zip bool
	sum hashes // from go.sum input; empty when none
}

// results collects the outcome of a run, safe for concurrent use.
type results struct {
	mu  sync.Mutex
	res Result
}

func (r *results) fail(what string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Failures = append(r.res.Failures, Failure{Module: what, Err: err})
}

// Generate mirrors in into the store and renders the store's lists, checksum-database objects,
// _mirror/go.sum, manifest and signature. Module versions that fail are listed in the Result,
// which is returned with them; the error is for what stops the whole run (a store that cannot be
// read, a canceled context).
func (g *Generator) Generate(ctx context.Context, in Input) (*Result, error) {
	start := time.Now()
	r := &results{}
	var err error
	if g.held, err = readHeld(ctx, g.st); err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}

	wants := map[module.Version]*want{}
	conflict := map[module.Version]error{}
	for _, l := range in.GoSum {
		m := module.Version{Path: l.Path, Version: l.Version}
		w := wants[m]
		if w == nil {
			w = &want{}
			wants[m] = w
		}
		cur := &w.sum.Zip
		if l.GoMod {
			cur = &w.sum.Mod
		} else {
			w.zip = true
		}
		if *cur != "" && *cur != l.Hash {
			conflict[m] = fmt.Errorf("the inputs give two hashes for %s: %s and %s",
				strings.TrimSuffix(l.String(), " "+l.Hash), *cur, l.Hash)
		}
		*cur = l.Hash
	}
	for m, err := range conflict {
		delete(wants, m)
		r.fail(mv(m), err)
	}

	// Build lists, one root at a time, each walked in parallel.
	for _, root := range in.Modules {
		load := func(ctx context.Context, m module.Version) (buildlist.Summary, error) {
			var sum string
			if w := wants[m]; w != nil {
				sum = w.sum.Mod
			}
			e := g.loadMod(ctx, m, sum)
			if e.err != nil {
				return buildlist.Summary{}, e.err
			}
			return buildlist.ParseGoMod(m, e.data)
		}
		bl, err := buildlist.Walk(ctx, root, load, g.jobs)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			r.fail(mv(root), fmt.Errorf("build list: %w", err))
			continue
		}
		g.log.Debug("build list", "module", mv(root), "graph", len(bl.Graph), "selected", len(bl.Selected()))
		for _, m := range bl.Graph {
			if _, bad := conflict[m]; bad {
				continue
			}
			if wants[m] == nil {
				wants[m] = &want{}
			}
		}
		for _, m := range bl.Selected() {
			if w := wants[m]; w != nil {
				w.zip = true
			}
		}
	}

	list := make([]module.Version, 0, len(wants))
	for m := range wants {
		list = append(list, m)
	}
	module.Sort(list)
	g.progress.Planned(len(list))
	r.res.Modules = len(list)

	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(g.jobs)
	for _, m := range list {
		w := wants[m]
		eg.Go(func() error {
			wrote, unverified, err := g.fillModule(ectx, m, w)
			if ectx.Err() != nil {
				return ectx.Err()
			}
			r.mu.Lock()
			o := Held
			switch {
			case err != nil:
				o = Failed
				r.res.Failures = append(r.res.Failures, Failure{Module: mv(m), Err: err})
			case wrote:
				o = Written
				r.res.Written++
			default:
				r.res.Held++
			}
			if err == nil && unverified {
				r.res.Unverified = append(r.res.Unverified, m)
			}
			r.mu.Unlock()
			g.progress.Finished(m, o, err)
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	g.log.Debug("filled", "modules", len(list), "elapsed", time.Since(start))

	// What the mirror holds, then everything derived from it.
	if _, err := putIfChanged(ctx, g.st, GoSumKey, g.held.marshal(), 1<<30); err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	if err := g.writeLists(ctx); err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	g.log.Debug("wrote lists", "elapsed", time.Since(start))
	if err := g.renderSumDB(ctx, r); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		r.fail("checksum database "+g.cfg.SumDB.Name, err)
	}
	g.log.Debug("rendered the checksum database", "elapsed", time.Since(start))
	signed, err := g.writeManifest(ctx)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}

	res := &r.res
	res.Signed = signed
	res.Files, res.Bytes = g.st.totals()
	res.Fetched = g.fetched.Load()
	module.Sort(res.Unverified)
	sort.SliceStable(res.Failures, func(i, j int) bool { return res.Failures[i].Module < res.Failures[j].Module })
	res.Duration = time.Since(start)
	return res, nil
}

// writeLists writes every module's list: the releases the mirror held before (its old list) and
// those it holds now, sorted.
func (g *Generator) writeLists(ctx context.Context) error {
	byPath := map[string][]string{}
	for _, m := range g.held.versions() {
		if goproxy.IsRelease(m.Version) {
			byPath[m.Path] = append(byPath[m.Path], m.Version)
		}
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(g.jobs)
	for _, p := range paths {
		eg.Go(func() error { return g.writeList(ectx, p, byPath[p]) })
	}
	return eg.Wait()
}

// writeList writes one module's list: versions and those its old list holds.
func (g *Generator) writeList(ctx context.Context, path string, versions []string) error {
	key, err := listKey(path)
	if err != nil {
		return err
	}
	data, _, err := store.ReadAll(ctx, g.st, key, 4<<20)
	if err != nil && !errors.Is(err, store.ErrNotExist) {
		return fmt.Errorf("read %s: %w", key, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 0 && goproxy.IsRelease(f[0]) {
			versions = append(versions, f[0])
		}
	}
	semver.Sort(versions)
	var b strings.Builder
	for i, v := range versions {
		if i > 0 && versions[i-1] == v {
			continue
		}
		b.WriteString(v + "\n")
	}
	_, err = putIfChanged(ctx, g.st, key, []byte(b.String()), 4<<20)
	return err
}

// renderSumDB looks every module version the mirror holds up in the checksum database (the
// records are in the scratch store or the mirror already, after the fill), then renders the
// lookups and tiles under the database client's latest tree head.
func (g *Generator) renderSumDB(ctx context.Context, r *results) error {
	if g.db == nil {
		return nil
	}
	name := g.cfg.SumDB.Name
	var (
		mu      sync.Mutex
		records []sumdbrender.Record
	)
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(g.jobs)
	for _, m := range g.held.versions() {
		if g.private(m.Path) {
			continue
		}
		eg.Go(func() error {
			rec, err := g.record(ectx, m)
			if err != nil {
				if ectx.Err() != nil {
					return ectx.Err()
				}
				r.fail(mv(m), fmt.Errorf("checksum database record: %w", err))
				return nil
			}
			mu.Lock()
			records = append(records, rec)
			mu.Unlock()
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return err
	}
	if len(records) == 0 {
		return nil
	}
	sort.Slice(records, func(i, j int) bool {
		a, b := records[i], records[j]
		return a.Path < b.Path || a.Path == b.Path && semver.Compare(a.Version, b.Version) < 0
	})

	view := g.stateView()
	latest, _, err := store.ReadAll(ctx, view, sumdbrender.LatestKey(name), 1<<20)
	if err != nil {
		return fmt.Errorf("read the checksum database's tree head: %w", err)
	}
	prev, _, err := store.ReadAll(ctx, g.st, sumdbrender.LatestKey(name), 1<<20)
	if err != nil && !errors.Is(err, store.ErrNotExist) {
		return fmt.Errorf("read the mirror's tree head: %w", err)
	}
	sources := []sumdbrender.TileSource{func(ctx context.Context, path string) ([]byte, error) {
		data, _, err := store.ReadAll(ctx, g.scratch, "sumdb/"+name+"/"+path, 1<<20)
		return data, err
	}}
	if g.cfg.SumDBRemote != nil {
		sources = append(sources, sumdbrender.TileSource(g.cfg.SumDBRemote))
	}
	n, err := sumdbrender.Render(ctx, sumdbrender.Config{
		Name:     name,
		Verifier: g.verifier,
		Mirror:   g.st,
		Sources:  sources,
		Jobs:     g.jobs,
	}, latest, prev, records)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.res.Lookups, r.res.TreeSize = len(records), n
	r.mu.Unlock()
	return nil
}

// record verifies m's record in the checksum database against the hashes the mirror holds and
// returns its lookup answer as the database client keeps it.
func (g *Generator) record(ctx context.Context, m module.Version) (sumdbrender.Record, error) {
	lines, err := g.db.Lookup(ctx, m.Path, m.Version)
	if err != nil {
		return sumdbrender.Record{}, err
	}
	h, _ := g.held.get(m)
	for _, l := range lines {
		held := h.Zip
		if l.GoMod {
			held = h.Mod
		}
		if held != "" && held != l.Hash {
			file := "zip"
			if l.GoMod {
				file = "go.mod"
			}
			return sumdbrender.Record{}, fmt.Errorf("SECURITY ERROR: %s@%s %s: the mirror holds %s, checksum database %s says %s",
				m.Path, m.Version, file, held, g.cfg.SumDB.Name, l.Hash)
		}
	}
	key, err := sumdbrender.LookupKey(g.cfg.SumDB.Name, m.Path, m.Version)
	if err != nil {
		return sumdbrender.Record{}, err
	}
	data, _, err := store.ReadAll(ctx, g.stateView(), key, 1<<20)
	if err != nil {
		return sumdbrender.Record{}, fmt.Errorf("read the verified lookup: %w", err)
	}
	return sumdbrender.Record{Path: m.Path, Version: m.Version, Data: data}, nil
}

// stateView reads the checksum database client's state: the scratch store over the mirror.
func (g *Generator) stateView() store.Store { return g.state }

// writeManifest writes the manifest (hashing only what changed since the last one) and, with a
// signer, its signature. It returns the signing key's ID.
func (g *Generator) writeManifest(ctx context.Context) (string, error) {
	var prev *manifest.Manifest
	if data, _, err := store.ReadAll(ctx, g.st, manifest.Key, 1<<30); err == nil {
		if prev, err = manifest.Parse(data); err != nil {
			g.log.Warn("the mirror's manifest is unreadable; hashing every object again", "err", err)
			prev = nil
		}
	} else if !errors.Is(err, store.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", manifest.Key, err)
	}
	// Objects written in this run were hashed as they were written; the others are as the last
	// manifest says, if it lists them with their size.
	m, err := manifest.Build(ctx, g.st, func(key string) (manifest.Entry, bool) {
		if e, ok := g.st.writtenEntry(key); ok {
			return e, true
		}
		if prev != nil {
			return prev.Lookup(key)
		}
		return manifest.Entry{}, false
	})
	if err != nil {
		return "", err
	}
	data := m.Marshal()
	changed, err := putIfChanged(ctx, g.st, manifest.Key, data, 1<<30)
	if err != nil {
		return "", err
	}
	if g.cfg.Signer == nil {
		if old, _, err := store.ReadAll(ctx, g.st, manifest.SigKey, 1<<20); err == nil && changed {
			id, _ := hybridsig.SignatureKeyID(old)
			g.log.Warn("the mirror changed and its old signature no longer matches its manifest; sign it again with -sign",
				"signature", manifest.SigKey, "key", id)
		}
		return "", nil
	}
	sig, err := g.cfg.Signer.Sign(data, manifest.SignatureContext)
	if err != nil {
		return "", err
	}
	if _, err := putIfChanged(ctx, g.st, manifest.SigKey, sig, 1<<20); err != nil {
		return "", err
	}
	return g.cfg.Signer.Public().ID(), nil
}
