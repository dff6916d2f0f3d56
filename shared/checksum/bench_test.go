package checksum

import (
	"bytes"
	"testing"

	"github.com/modmirror/modmirror/shared/testkit"
)

// BenchmarkHashZip hashes zips shaped like 30 real modules (testdata/bench/shapes.txt), as a fill
// or the generator does for each zip it verifies.
func BenchmarkHashZip(b *testing.B) {
	shapes, err := testkit.LoadShapes()
	if err != nil {
		b.Fatal(err)
	}
	mods := testkit.Shaped(shapes[:30])
	var total int64
	for _, m := range mods {
		total += int64(len(m.Zip()))
	}
	b.SetBytes(total)
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
