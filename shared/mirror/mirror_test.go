package mirror_test

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/module"

	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/config"
	"github.com/modmirror/modmirror/shared/mirror"
	"github.com/modmirror/modmirror/shared/mirror/hybridsig"
	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/store/dirstore"
	"github.com/modmirror/modmirror/shared/store/memstore"
	"github.com/modmirror/modmirror/shared/testkit"
	"github.com/modmirror/modmirror/shared/upstream"
)

// fixtureUpstream starts a fake upstream serving the fixture modules and returns them, a client
// of it and its checksum database.
func fixtureUpstream(t *testing.T) ([]*testkit.Module, *upstream.Client, *config.SumDB) {
	t.Helper()
	mods := testkit.MustLoadFixtures(t)
	up := testkit.NewUpstream(t, testkit.Options{Modules: mods})
	client, err := upstream.New(up.URL, upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return mods, client, &config.SumDB{Name: up.SumDBName, Key: up.SumDBKey}
}

// TestMemoryStore generates into a store that is not a directory, and verifies the result.
func TestMemoryStore(t *testing.T) {
	ctx := t.Context()
	mods, client, db := fixtureUpstream(t)
	key, err := hybridsig.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	st := memstore.New()
	gen, err := mirror.New(ctx, mirror.Config{
		Store: st, Upstream: client, SumDB: db, SumDBRemote: config.SumDBRemote(client, db, upstream.Options{}),
		Signer: key, TempDir: t.TempDir(), Jobs: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()

	lines, err := checksum.ParseGoSum(testkit.GoSumFile(testkit.Find(mods, "example.com/Upper/Mod", "v1.0.0"), testkit.Find(mods, "example.com/incompat", "v2.0.0+incompatible")))
	if err != nil {
		t.Fatal(err)
	}
	var roots []module.Version
	for _, arg := range []string{"example.com/tool/cmd/hello@v1.0.0", "example.com/lib@latest"} {
		m, err := gen.Resolve(ctx, arg)
		if err != nil {
			t.Fatal(err)
		}
		roots = append(roots, m)
	}
	if got := roots[0].String() + " " + roots[1].String(); got != "example.com/tool@v1.0.0 example.com/lib@v1.2.0" {
		t.Errorf("resolved %s", got)
	}
	res, err := gen.Generate(ctx, mirror.Input{GoSum: lines, Modules: roots})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failures) > 0 || res.Modules != 5 || res.Written != 5 || res.Lookups != 5 || res.Signed != key.Public().ID() {
		t.Fatalf("result %+v", res)
	}
	for _, k := range []string{"example.com/!upper/!mod/@v/v1.0.0.zip", "example.com/incompat/@v/v2.0.0+incompatible.zip", "example.com/major/v2/@v/list", "_mirror/manifest.sig"} {
		if _, err := st.Stat(ctx, k); err != nil {
			t.Errorf("missing %s", k)
		}
	}

	rep, err := mirror.Verify(ctx, mirror.VerifyConfig{Store: st, PublicKey: key.Public(), SumDB: db})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 || rep.SignedBy == "" || rep.Lookups != 5 || rep.Modules != 10 {
		t.Fatalf("verify: %+v", rep)
	}
	// A changed list is caught by the manifest.
	st.Put(ctx, "example.com/lib/@v/list", strings.NewReader("v1.2.0\nv9.0.0\n"), -1, store.PutOptions{})
	rep, err = mirror.Verify(ctx, mirror.VerifyConfig{Store: st, PublicKey: key.Public(), SumDB: db})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Key != "example.com/lib/@v/list" {
		t.Errorf("verify of a changed list: %v", rep.Problems)
	}
}

// TestStagedZips generates with no spool memory, so that every zip is written straight into the
// directory store and committed once verified: a zip whose go.sum hash is wrong must leave
// nothing behind (not even the staged file), and the others must verify.
func TestStagedZips(t *testing.T) {
	ctx := t.Context()
	mods, client, db := fixtureUpstream(t)
	dir := t.TempDir()
	st, err := dirstore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	gen, err := mirror.New(ctx, mirror.Config{
		Store: st, Upstream: client, SumDB: db, SumDBRemote: config.SumDBRemote(client, db, upstream.Options{}),
		TempDir: t.TempDir(), SpoolMemory: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()

	good, bad := testkit.Find(mods, "example.com/lib", "v1.2.0"), testkit.Find(mods, "example.com/Upper/Mod", "v1.0.0")
	// The bad module's zip line has a well-formed hash of nothing.
	badZip := fmt.Sprintf("%s %s h1:%s=\n", bad.Path, bad.Version, strings.Repeat("A", 43))
	lines, err := checksum.ParseGoSum(append(testkit.GoSumFile(good), badZip...))
	if err != nil {
		t.Fatal(err)
	}
	res, err := gen.Generate(ctx, mirror.Input{GoSum: lines})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failures) != 1 || !strings.Contains(res.Failures[0].Module, "example.com/Upper/Mod@v1.0.0") || res.Written != 1 {
		t.Fatalf("result %+v; want the upper-case module to fail alone", res)
	}
	var files []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, filepath.Base(p))
		}
		if d != nil && d.IsDir() && strings.Contains(p, "!upper") {
			t.Errorf("the failed module left %s", p)
		}
		return nil
	})
	for _, f := range files {
		if strings.HasPrefix(f, ".") && f != ".dirstore-lock" && !strings.HasSuffix(f, ".owner") {
			t.Errorf("a temporary file is left: %s", f)
		}
	}
	if _, err := st.Stat(ctx, "example.com/lib/@v/v1.2.0.zip"); err != nil {
		t.Errorf("the good module's zip: %v", err)
	}
	rep, err := mirror.Verify(ctx, mirror.VerifyConfig{Store: st, SumDB: db})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 || rep.Modules == 0 {
		t.Fatalf("verify: %+v", rep)
	}
}
