package buildlist

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/module"
)

// graph is a requirement graph: "path@version" -> go version and requirements.
type graph map[string]struct {
	goVersion string
	require   []string
}

func (g graph) load(ctx context.Context, m module.Version) (Summary, error) {
	n, ok := g[m.Path+"@"+m.Version]
	if !ok {
		return Summary{}, errors.New("not found")
	}
	s := Summary{Go: n.goVersion}
	for _, r := range n.require {
		p, v, _ := strings.Cut(r, "@")
		s.Require = append(s.Require, module.Version{Path: p, Version: v})
	}
	return s, nil
}

func versions(ms []module.Version) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Path+"@"+m.Version)
	}
	return out
}

func TestWalk(t *testing.T) {
	for _, tc := range []struct {
		name   string
		g      graph
		graph  []string
		build  []string
		pruned []string
		err    string
	}{
		{
			name: "diamond picks the highest",
			g: graph{
				"a@v1.0.0": {"1.21", []string{"b@v1.0.0", "c@v1.0.0"}},
				"b@v1.0.0": {"1.21", []string{"d@v1.1.0"}},
				"c@v1.0.0": {"1.21", []string{"d@v1.2.0"}},
				"d@v1.1.0": {"1.21", nil},
				"d@v1.2.0": {"1.21", nil},
			},
			graph:  []string{"a@v1.0.0", "b@v1.0.0", "c@v1.0.0", "d@v1.1.0", "d@v1.2.0"},
			build:  []string{"a@v1.0.0", "b@v1.0.0", "c@v1.0.0", "d@v1.2.0"},
			pruned: []string{"a@v1.0.0", "b@v1.0.0", "c@v1.0.0"},
		},
		{
			name: "pruned root keeps its direct requirements only",
			g: graph{
				"a@v1.0.0": {"1.17", []string{"b@v1.0.0", "e@v1.0.0"}},
				"b@v1.0.0": {"1.21", []string{"e@v1.1.0"}},
				"e@v1.0.0": {"1.21", nil},
				"e@v1.1.0": {"1.21", nil},
			},
			graph:  []string{"a@v1.0.0", "b@v1.0.0", "e@v1.0.0", "e@v1.1.0"},
			build:  []string{"a@v1.0.0", "b@v1.0.0", "e@v1.1.0"},
			pruned: []string{"a@v1.0.0", "b@v1.0.0", "e@v1.0.0"},
		},
		{
			name: "unpruned modules are followed all the way",
			g: graph{
				"a@v1.0.0": {"1.16", []string{"b@v1.0.0"}},
				"b@v1.0.0": {"", []string{"c@v1.0.0"}},
				"c@v1.0.0": {"1.21", []string{"d@v1.0.0"}},
				"d@v1.0.0": {"1.21", nil},
			},
			graph:  []string{"a@v1.0.0", "b@v1.0.0", "c@v1.0.0", "d@v1.0.0"},
			build:  []string{"a@v1.0.0", "b@v1.0.0", "c@v1.0.0", "d@v1.0.0"},
			pruned: []string{"a@v1.0.0", "b@v1.0.0", "c@v1.0.0", "d@v1.0.0"},
		},
		{
			name: "a cycle ends",
			g: graph{
				"a@v1.0.0": {"1.21", []string{"b@v1.0.0"}},
				"b@v1.0.0": {"1.21", []string{"a@v1.0.0"}},
			},
			graph:  []string{"a@v1.0.0", "b@v1.0.0"},
			build:  []string{"a@v1.0.0", "b@v1.0.0"},
			pruned: []string{"a@v1.0.0", "b@v1.0.0"},
		},
		{
			name: "a missing go.mod names the chain",
			g: graph{
				"a@v1.0.0": {"1.21", []string{"b@v1.0.0"}},
				"b@v1.0.0": {"1.21", []string{"c@v1.0.0"}},
			},
			err: "load go.mod of c@v1.0.0 (required by b@v1.0.0, required by a@v1.0.0): not found",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Walk(t.Context(), module.Version{Path: "a", Version: "v1.0.0"}, tc.g.load, 3)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				what      string
				got, want []string
			}{{"graph", versions(r.Graph), tc.graph}, {"build list", versions(r.BuildList), tc.build}, {"pruned", versions(r.Pruned), tc.pruned}} {
				if !slices.Equal(c.got, c.want) {
					t.Errorf("%s: %q, want %q", c.what, c.got, c.want)
				}
			}
			sel := versions(r.Selected())
			for _, m := range append(slices.Clone(tc.build), tc.pruned...) {
				if !slices.Contains(sel, m) {
					t.Errorf("Selected lacks %s: %q", m, sel)
				}
			}
		})
	}
}

func TestParseGoMod(t *testing.T) {
	m := module.Version{Path: "x", Version: "v1.0.0"}
	s, err := ParseGoMod(m, []byte("module x\n\ngo 1.22.1\n\nrequire (\n\tex.com/y v1.2.3\n\tex.com/z v0.1.0 // indirect\n)\n\nreplace ex.com/y => ../y\nexclude ex.com/z v0.0.1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Go != "1.22.1" || !s.Pruned() || fmt.Sprint(s.Require) != "[ex.com/y@v1.2.3 ex.com/z@v0.1.0]" {
		t.Errorf("summary %+v", s)
	}
	for v, pruned := range map[string]bool{"": false, "1.16": false, "1.17": true, "1.21rc1": true, "2.0": true, "junk": false} {
		if got := (Summary{Go: v}).Pruned(); got != pruned {
			t.Errorf("go %q: pruned %v, want %v", v, got, pruned)
		}
	}
	if _, err := ParseGoMod(m, []byte("module x\nrequire (\n")); err == nil {
		t.Errorf("a broken go.mod parsed")
	}
}
