// Package buildlist finds what `go install module/cmd/x@version` needs: it walks the requirement
// graph of go.mod files from one module version and selects versions by minimal version selection
// (MVS), both over the whole graph and over the graph pruned as the go command prunes modules at
// go 1.17 or later, so that the union covers whatever the go command selects.
package buildlist

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/sync/errgroup"
)

// Summary is what the walk needs from a go.mod file.
type Summary struct {
	Go      string // the go directive's version; "" without one
	Require []module.Version
}

// Pruned reports whether the go command prunes the module's dependencies out of the graphs of the
// modules that require it (go 1.17 or later).
func (s Summary) Pruned() bool {
	major, minor, ok := goVersion(s.Go)
	return ok && (major > 1 || major == 1 && minor >= 17)
}

// goVersion parses the major and minor numbers of a go directive ("1.21", "1.21.0", "1.22rc1").
func goVersion(v string) (major, minor int, ok bool) {
	f := strings.SplitN(v, ".", 3)
	if len(f) < 2 {
		return 0, 0, false
	}
	digits := func(s string) (int, bool) {
		end := 0
		for end < len(s) && s[end] >= '0' && s[end] <= '9' {
			end++
		}
		n, err := strconv.Atoi(s[:end])
		return n, err == nil
	}
	major, ok1 := digits(f[0])
	minor, ok2 := digits(f[1])
	return major, minor, ok1 && ok2
}

// ParseGoMod reads a dependency's go.mod file as the go command does: laxly, ignoring its
// replace and exclude directives, which apply only in the main module.
func ParseGoMod(m module.Version, data []byte) (Summary, error) {
	f, err := modfile.ParseLax("go.mod", data, nil)
	if err != nil {
		return Summary{}, fmt.Errorf("parse go.mod of %s@%s: %w", m.Path, m.Version, err)
	}
	var s Summary
	if f.Go != nil {
		s.Go = f.Go.Version
	}
	for _, r := range f.Require {
		if err := module.Check(r.Mod.Path, r.Mod.Version); err != nil {
			return Summary{}, fmt.Errorf("go.mod of %s@%s: requirement: %w", m.Path, m.Version, err)
		}
		s.Require = append(s.Require, r.Mod)
	}
	return s, nil
}

// Loader returns the summary of a module version's go.mod file.
type Loader func(ctx context.Context, m module.Version) (Summary, error)

// Result is what one module version needs.
type Result struct {
	Root module.Version
	// Graph is every module version of the requirement graph (whose go.mod files the go command
	// may read), sorted.
	Graph []module.Version
	// BuildList is MVS over the whole graph; Pruned is MVS over the pruned graph. Both are
	// sorted and hold Root.
	BuildList []module.Version
	Pruned    []module.Version
}

// Selected returns the union of BuildList and Pruned: the module versions whose zips a build or
// install may download.
func (r *Result) Selected() []module.Version {
	seen := make(map[module.Version]bool)
	var out []module.Version
	for _, m := range append(append([]module.Version{}, r.BuildList...), r.Pruned...) {
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	module.Sort(out)
	return out
}

// Walk loads the go.mod file of root and of every module version it requires, directly or not,
// up to jobs at a time, and selects the build lists. An error names the module version whose
// go.mod could not be loaded and what required it.
func Walk(ctx context.Context, root module.Version, load Loader, jobs int) (*Result, error) {
	if jobs < 1 {
		jobs = 1
	}
	var (
		mu        sync.Mutex
		summaries = map[module.Version]Summary{}
		parent    = map[module.Version]module.Version{root: {}}
	)
	frontier := []module.Version{root}
	for len(frontier) > 0 {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(jobs)
		for _, m := range frontier {
			g.Go(func() error {
				s, err := load(gctx, m)
				if err != nil {
					return fmt.Errorf("load go.mod of %s@%s%s: %w", m.Path, m.Version, chain(parent, m), err)
				}
				mu.Lock()
				summaries[m] = s
				mu.Unlock()
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		var next []module.Version
		for _, m := range frontier {
			for _, r := range summaries[m].Require {
				if _, ok := parent[r]; !ok {
					parent[r] = m
					next = append(next, r)
				}
			}
		}
		module.Sort(next)
		frontier = next
	}

	res := &Result{Root: root}
	for m := range summaries {
		res.Graph = append(res.Graph, m)
	}
	module.Sort(res.Graph)
	res.BuildList = selectMax(res.Graph)
	res.Pruned = selectMax(prunedNodes(root, summaries))
	return res, nil
}

// chain describes how m was reached: " (required by a@v, required by b@w)".
func chain(parent map[module.Version]module.Version, m module.Version) string {
	var b strings.Builder
	for p := parent[m]; p.Path != ""; p = parent[p] {
		b.WriteString(", required by ")
		b.WriteString(p.Path + "@" + p.Version)
		if b.Len() > 1000 {
			break
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return " (" + strings.TrimPrefix(b.String(), ", ") + ")"
}

// prunedNodes returns the module versions of the graph the go command loads for a main module
// that requires root alone: root's go.mod is read; a module at go 1.17 or later contributes its
// requirements but not theirs, while the go.mod files of older (unpruned) modules are followed
// all the way down.
func prunedNodes(root module.Version, summaries map[module.Version]Summary) []module.Version {
	nodes := map[module.Version]bool{root: true}
	loaded := map[module.Version]bool{}
	loadedUnpruned := map[module.Version]bool{}
	var visit func(m module.Version, unpruned bool)
	visit = func(m module.Version, unpruned bool) {
		if unpruned {
			if loadedUnpruned[m] {
				return
			}
			loadedUnpruned[m] = true
		} else {
			if loaded[m] {
				return
			}
			loaded[m] = true
		}
		s := summaries[m]
		next := unpruned || !s.Pruned()
		for _, r := range s.Require {
			nodes[r] = true
			if unpruned || !s.Pruned() {
				visit(r, next)
			}
		}
	}
	visit(root, false)
	out := make([]module.Version, 0, len(nodes))
	for m := range nodes {
		out = append(out, m)
	}
	return out
}

// selectMax keeps the highest version of each module path.
func selectMax(ms []module.Version) []module.Version {
	best := map[string]string{}
	for _, m := range ms {
		if v, ok := best[m.Path]; !ok || semver.Compare(m.Version, v) > 0 {
			best[m.Path] = m.Version
		}
	}
	out := make([]module.Version, 0, len(best))
	for p, v := range best {
		out = append(out, module.Version{Path: p, Version: v})
	}
	module.Sort(out)
	return out
}
