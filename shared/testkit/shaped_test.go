package testkit

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestShapedModulesWeighWhatTheirShapesSay(t *testing.T) {
	shapes := []Shape{
		{Files: 1, Bytes: 30, ZipBytes: 200, Of: "only a go.mod"},
		{Files: 40, Bytes: 200_000, ZipBytes: 50_000, Of: "source"},
		{Files: 20, Bytes: 1_000_000, ZipBytes: 900_000, Of: "mostly test data"},
		{Files: 600, Bytes: 3_000_000, ZipBytes: 1_000_000, Of: "large"},
	}
	mods := Shaped(shapes)
	again := Shaped(shapes)
	for i, s := range shapes {
		m := mods[i]
		z := m.Zip()
		r, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
		if err != nil {
			t.Fatalf("%s (%s): %v", m, s.Of, err)
		}
		var total int64
		for _, f := range r.File {
			total += int64(f.UncompressedSize64)
		}
		if len(r.File) != s.Files {
			t.Errorf("%s (%s): %d files, want %d", m, s.Of, len(r.File), s.Files)
		}
		if s.Files > 1 && (total < s.Bytes*99/100 || total > s.Bytes*101/100) {
			t.Errorf("%s (%s): %d bytes, want %d", m, s.Of, total, s.Bytes)
		}
		if s.Files > 1 && (int64(len(z)) < s.ZipBytes*2/3 || int64(len(z)) > s.ZipBytes*3/2) {
			t.Errorf("%s (%s): zip of %d bytes, want about %d", m, s.Of, len(z), s.ZipBytes)
		}
		if !bytes.Equal(z, again[i].Zip()) {
			t.Errorf("%s (%s): two calls made different zips", m, s.Of)
		}
		if err := m.check(); err != nil {
			t.Errorf("%s (%s): %v", m, s.Of, err)
		}
	}
}

func TestLoadShapes(t *testing.T) {
	shapes, err := LoadShapes()
	if err != nil {
		t.Fatal(err)
	}
	if len(shapes) < 100 {
		t.Fatalf("%d shapes, want at least 100 for the benchmarks' pinned sets", len(shapes))
	}
	for _, bad := range [][]string{{"1", "2", "3"}, {"x", "2", "3", "m@v"}, {"0", "2", "3", "m@v"}, {"1", "-2", "3", "m@v"}} {
		if _, err := parseShape(bad); err == nil {
			t.Errorf("parseShape(%q) accepted it", bad)
		}
	}
}

func TestNewProjectAndWeigh(t *testing.T) {
	mods := Synthetic(3)
	dir := NewProject(t, mods)
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mods {
		if !bytes.Contains(gomod, []byte("\t"+m.Path+" "+m.Version+"\n")) {
			t.Errorf("go.mod does not require %s:\n%s", m, gomod)
		}
	}
	gosum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	if err != nil || !bytes.Equal(gosum, GoSumFile(mods...)) {
		t.Errorf("go.sum = %q, %v; want GoSumFile of the modules", gosum, err)
	}
	files, zipBytes := Weigh(mods)
	want := int64(0)
	for _, m := range mods {
		want += int64(len(m.Zip()))
	}
	if files != 6 || zipBytes != want {
		t.Errorf("Weigh = %d files, %d bytes; want 6, %d", files, zipBytes, want)
	}
}
