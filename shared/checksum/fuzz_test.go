package checksum

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
)

// FuzzParseGoSum checks that go.sum parsing never panics and that what it accepts is valid and
// survives a round trip.
func FuzzParseGoSum(f *testing.F) {
	f.Add([]byte("golang.org/x/mod v0.42.0 h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ngolang.org/x/mod v0.42.0/go.mod h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"))
	f.Add([]byte("example.com/m v2.0.0+incompatible h1:x\n\n"))
	f.Add([]byte("bad line\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, err := ParseGoSum(data)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		for _, l := range lines {
			if err := module.CheckPath(l.Path); err != nil {
				t.Fatalf("accepted invalid path %q: %v", l.Path, err)
			}
			suffix := ""
			if l.GoMod {
				suffix = "/go.mod"
			}
			buf.WriteString(l.Path + " " + l.Version + suffix + " " + l.Hash + "\n")
		}
		again, err := ParseGoSum(buf.Bytes())
		if err != nil || len(again) != len(lines) {
			t.Fatalf("round trip of %q: %d lines, %v; want %d lines", buf.String(), len(again), err, len(lines))
		}
	})
}

// FuzzHashZip checks that zip verification never panics on hostile input and, where it accepts
// a zip, agrees with x/mod's own hash of it.
func FuzzHashZip(f *testing.F) {
	if data, err := os.ReadFile("testdata/golang.org_x_sync@v0.24.0.zip"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("PK\x05\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("not a zip"))
	f.Fuzz(func(t *testing.T, data []byte) {
		const path, version = "golang.org/x/sync", "v0.24.0"
		got, err := HashZip(bytes.NewReader(data), int64(len(data)), path, version)
		if err != nil {
			return
		}
		if !strings.HasPrefix(got, "h1:") {
			t.Fatalf("hash %q lacks h1:", got)
		}
		file := filepath.Join(t.TempDir(), "m.zip")
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		want, err := dirhash.HashZip(file, dirhash.Hash1)
		if err != nil || want != got {
			t.Fatalf("HashZip accepted a zip x/mod hashes as %q (%v); we said %q", want, err, got)
		}
	})
}

// FuzzHashZipStream checks that the streaming hash never panics and never accepts a zip that
// HashZip refuses or hashes differently.
func FuzzHashZipStream(f *testing.F) {
	if data, err := os.ReadFile("testdata/golang.org_x_sync@v0.24.0.zip"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("PK\x05\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("PK\x03\x04not a zip"))
	f.Fuzz(func(t *testing.T, data []byte) {
		const path, version = "golang.org/x/sync", "v0.24.0"
		got, err := HashZipStream(bytes.NewReader(data), int64(len(data)), path, version)
		if err != nil {
			return
		}
		want, err := HashZip(bytes.NewReader(data), int64(len(data)), path, version)
		if err != nil || want != got {
			t.Fatalf("HashZipStream accepted a zip with %s; HashZip gives %q, %v", got, want, err)
		}
	})
}
