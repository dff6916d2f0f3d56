package checksum

import (
	"bytes"
	"testing"

	"github.com/modmirror/modmirror/shared/testkit"
)

// BenchmarkHashZip hashes zips shaped like 30 real modules (testdata/bench/shapes.txt), as a fill
// or the generator does for each zip it verifies.
func BenchmarkHashZip(b *testing.B) {
	mods := testkit.MustShaped(b, 30)
	_, zipBytes := testkit.Weigh(mods)
	b.SetBytes(zipBytes)
	b.ReportAllocs()
	for b.Loop() {
		for _, m := range mods {
			z := m.Zip()
			if _, err := HashZip(bytes.NewReader(z), int64(len(z)), m.Path, m.Version); err != nil {
				b.Fatal(err)
			}
		}
	}
}
