package mirror_test

import (
	"testing"

	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/config"
	"github.com/modmirror/modmirror/shared/mirror"
	"github.com/modmirror/modmirror/shared/store/dirstore"
	"github.com/modmirror/modmirror/shared/testkit"
	"github.com/modmirror/modmirror/shared/upstream"
)

// BenchmarkGenerate generates a mirror of 30 modules of real shapes (testdata/bench/shapes.txt)
// into an empty directory from a local upstream, as bench/generator's cold run does with 114.
func BenchmarkGenerate(b *testing.B) {
	mods := testkit.MustShaped(b, 30)
	up := testkit.NewUpstream(b, testkit.Options{Modules: mods})
	lines, err := checksum.ParseGoSum(testkit.GoSumFile(mods...))
	if err != nil {
		b.Fatal(err)
	}
	client, err := upstream.New(up.URL, upstream.Options{})
	if err != nil {
		b.Fatal(err)
	}
	db := &config.SumDB{Name: up.SumDBName, Key: up.SumDBKey}
	_, zipBytes := testkit.Weigh(mods)
	b.SetBytes(zipBytes)
	b.ReportAllocs()
	for b.Loop() {
		st, err := dirstore.New(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		gen, err := mirror.New(b.Context(), mirror.Config{
			Store: st, Upstream: client, SumDB: db, SumDBRemote: config.SumDBRemote(client, db, upstream.Options{}),
			TempDir: b.TempDir(),
		})
		if err != nil {
			b.Fatal(err)
		}
		res, err := gen.Generate(b.Context(), mirror.Input{GoSum: lines})
		if err != nil || len(res.Failures) > 0 || res.Written != len(mods) {
			b.Fatalf("generate: %v, %+v", err, res)
		}
		gen.Close()
		st.Close()
	}
}
