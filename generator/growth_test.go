package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/modmirror/modmirror/shared/testkit"
)

// TestGrowingTree: a mirror grows from 100 to 300 modules while the checksum database grows past
// a full tile. Every lookup is then under the new tree head, the tiles prove it (full and partial,
// two levels), and a go command that remembers the old tree head verifies through the new one.
func TestGrowingTree(t *testing.T) {
	requireUnshare(t)
	mods := testkit.Synthetic(300)
	up := testkit.NewUpstream(t, testkit.Options{Modules: mods})
	f := &fixture{up: up, mods: mods}
	sums := t.TempDir()
	first, all := filepath.Join(sums, "first.sum"), filepath.Join(sums, "all.sum")
	os.WriteFile(first, testkit.GoSumFile(mods[:100]...), 0o644)
	os.WriteFile(all, testkit.GoSumFile(mods...), 0o644)
	dir := filepath.Join(t.TempDir(), "mirror")

	f.mustGenerate(t, dir, first)
	g := offlineEnv(t, up, dir)
	download := func(g *testkit.GoEnv, which ...int) {
		t.Helper()
		var args []string
		for _, i := range which {
			args = append(args, mods[i].Path+"@"+mods[i].Version)
		}
		inNamespace(t, g, t.TempDir(), "go mod download "+strings.Join(args, " "))
	}
	download(g, 0, 99)
	if _, err := os.Stat(filepath.Join(g.GOPATH, "pkg", "sumdb", "sumdb.test", "latest")); err != nil {
		t.Fatalf("the go command keeps no tree head: %v", err)
	}

	o := f.mustGenerate(t, dir, all)
	if !strings.Contains(o.stdout, "300 lookups under one signed tree head of size 300") {
		t.Errorf("summary:\n%v", o)
	}
	latest, err := os.ReadFile(filepath.Join(dir, "_mirror", "sumdb", "sumdb.test", "latest"))
	if err != nil {
		t.Fatal(err)
	}
	lookups, _ := filepath.Glob(filepath.Join(dir, "sumdb", "sumdb.test", "lookup", "example.com", "gen", "*"))
	if len(lookups) != 300 {
		t.Fatalf("%d lookups, want 300", len(lookups))
	}
	for _, l := range lookups {
		data, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, tree, err := tlog.ParseRecord(data); err != nil || !bytes.Equal(tree, latest) {
			t.Errorf("%s is not under the mirror's tree head (%v)", l, err)
		}
	}
	for _, tile := range []string{"tile/8/0/000", "tile/8/0/001.p/44", "tile/8/1/000.p/1"} {
		if _, err := os.Stat(filepath.Join(dir, "sumdb", "sumdb.test", filepath.FromSlash(tile))); err != nil {
			t.Errorf("missing %s: %v", tile, err)
		}
	}

	// The go command that remembers the tree of 100 must see that the new one extends it.
	download(g, 299, 150, 1)
	// A fresh one, across the tile boundary.
	download(offlineEnv(t, up, dir), 255, 256, 0, 299)
}
