package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"

	"github.com/modmirror/modmirror/shared/goproxy"
	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/upstream"
)

// Resolve turns a command-line argument "path@version" into the module version to mirror, as
// `go install path@version` would:
//
//   - path may be a package path: the module is the longest prefix of it that has the version
//     (the mirror is asked first, then the upstream);
//   - version may be a query: "latest" (the highest release in the module's list, else what the
//     upstream's @latest names), a version prefix ("v1", "v1.2": the highest release under it),
//     or anything the upstream resolves as <query>.info (a branch, a tag, a commit). A query is
//     resolved once, against the upstream; the caller prints and pins the answer.
func (g *Generator) Resolve(ctx context.Context, arg string) (module.Version, error) {
	i := strings.LastIndexByte(arg, '@')
	if i <= 0 || i == len(arg)-1 {
		return module.Version{}, fmt.Errorf("resolve %q: want path@version", arg)
	}
	path, query := arg[:i], arg[i+1:]
	if err := module.CheckImportPath(path); err != nil {
		return module.Version{}, fmt.Errorf("resolve %s: %w", arg, err)
	}
	var candidates []string
	for p := path; ; {
		if module.CheckPath(p) == nil {
			candidates = append(candidates, p)
		}
		j := strings.LastIndexByte(p, '/')
		if j < 0 {
			break
		}
		p = p[:j]
	}
	if len(candidates) == 0 {
		return module.Version{}, fmt.Errorf("resolve %s: no prefix of %s is a valid module path", arg, path)
	}

	if semver.IsValid(query) && module.CanonicalVersion(query) == query {
		for _, p := range candidates {
			m := module.Version{Path: p, Version: query}
			if module.Check(p, query) != nil {
				continue
			}
			key, _ := objectKey(m, "mod")
			if _, err := g.st.Stat(ctx, key); err == nil {
				return m, nil
			} else if !errors.Is(err, store.ErrNotExist) {
				return module.Version{}, fmt.Errorf("resolve %s: %w", arg, err)
			}
		}
		if g.cfg.Upstream == nil {
			return module.Version{}, fmt.Errorf("resolve %s: no module providing it is in the mirror, and there is no upstream", arg)
		}
		for _, p := range candidates {
			m := module.Version{Path: p, Version: query}
			if module.Check(p, query) != nil {
				continue
			}
			key, _ := objectKey(m, "info")
			_, err := g.fetchSmall(ctx, key, maxInfo)
			if err == nil {
				return m, nil
			}
			if !upstream.IsNotFound(err) {
				return module.Version{}, fmt.Errorf("resolve %s: %w", arg, err)
			}
		}
		return module.Version{}, fmt.Errorf("resolve %s: the upstream has no module at %s providing %s", arg, query, path)
	}

	if g.cfg.Upstream == nil {
		return module.Version{}, fmt.Errorf("resolve %s: a query needs an upstream", arg)
	}
	for _, p := range candidates {
		v, err := g.query(ctx, p, query)
		if err == nil {
			return module.Version{Path: p, Version: v}, nil
		}
		if !upstream.IsNotFound(err) && !errors.Is(err, errNoMatch) {
			return module.Version{}, fmt.Errorf("resolve %s: %w", arg, err)
		}
	}
	return module.Version{}, fmt.Errorf("resolve %s: no module providing %s has a version matching %q", arg, path, query)
}

// errNoMatch: the module has no version matching the query.
var errNoMatch = errors.New("no matching version")

// query resolves a non-canonical version of the module path against the upstream.
func (g *Generator) query(ctx context.Context, path, query string) (string, error) {
	ep, err := module.EscapePath(path)
	if err != nil {
		return "", err
	}
	prefix := ""
	switch {
	case query == "latest":
	case semver.IsValid(query) && semver.Build(query) == "" && semver.Prerelease(query) == "":
		prefix = query + "." // v1 or v1.2: the highest release under it
	default:
		eq, err := module.EscapeVersion(query)
		if err != nil {
			return "", err
		}
		data, err := g.fetchSmall(ctx, ep+"/@v/"+eq+".info", maxInfo)
		if err != nil {
			return "", err
		}
		return canonicalInfo(data)
	}
	list, err := g.fetchSmall(ctx, ep+"/@v/list", 4<<20)
	if err != nil {
		return "", err
	}
	best, bestPre := "", ""
	for _, line := range strings.Split(string(list), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !goproxy.IsRelease(f[0]) || module.Check(path, f[0]) != nil || !strings.HasPrefix(f[0], prefix) {
			continue
		}
		v := f[0]
		if semver.Prerelease(v) == "" {
			if best == "" || semver.Compare(v, best) > 0 {
				best = v
			}
		} else if bestPre == "" || semver.Compare(v, bestPre) > 0 {
			bestPre = v
		}
	}
	switch {
	case best != "":
		return best, nil
	case bestPre != "":
		return bestPre, nil
	case prefix != "":
		return "", errNoMatch
	}
	data, err := g.fetchSmall(ctx, ep+"/@latest", maxInfo)
	if err != nil {
		return "", err
	}
	return canonicalInfo(data)
}

// canonicalInfo returns the canonical version an .info or @latest answer names.
func canonicalInfo(data []byte) (string, error) {
	var info struct{ Version string }
	if err := json.Unmarshal(data, &info); err != nil {
		return "", fmt.Errorf("invalid answer from the upstream: %w", err)
	}
	if info.Version == "" || module.CanonicalVersion(info.Version) != info.Version {
		return "", fmt.Errorf("the upstream answered the non-canonical version %q", info.Version)
	}
	return info.Version, nil
}
