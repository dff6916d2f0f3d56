package checksum

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"

	"github.com/modmirror/modmirror/shared/testkit"
)

func TestParseGoSum(t *testing.T) {
	const h1 = "h1:iqiDrGoDgyuvAKrhLQthUEzU/R378N78gXbBjxed7oA="
	const h2 = "h1:sUUOizhqBxiL6pEWpqNLUiaJn1ShEbZ6BBqskPbjZm0="
	tests := []struct {
		name    string
		in      string
		want    []Line
		wantErr string // substring; "" for success
	}{
		{name: "empty", in: "", want: nil},
		{
			name: "lines",
			in: "golang.org/x/sync v0.24.0 " + h1 + "\n" +
				"golang.org/x/sync v0.24.0/go.mod " + h2 + "\r\n" +
				"\n   \n" +
				"example.com/Upper v2.0.0+incompatible " + h1 + "\n" +
				"golang.org/x/sync v0.24.0 " + h1 + "\n" + // exact duplicate
				"golang.org/x/sync v0.24.0 " + h2, // same module, another hash: kept
			want: []Line{
				{Path: "golang.org/x/sync", Version: "v0.24.0", Hash: h1},
				{Path: "golang.org/x/sync", Version: "v0.24.0", GoMod: true, Hash: h2},
				{Path: "example.com/Upper", Version: "v2.0.0+incompatible", Hash: h1},
				{Path: "golang.org/x/sync", Version: "v0.24.0", Hash: h2},
			},
		},
		{name: "two fields", in: "\ngolang.org/x/sync v0.24.0\n", wantErr: "go.sum line 2:"},
		{name: "four fields", in: "golang.org/x/sync v0.24.0 " + h1 + " extra", wantErr: "line 1:"},
		{name: "bad path", in: "a.b/../c v1.0.0 " + h1, wantErr: "line 1:"},
		{name: "no dot in first element", in: "example/x v1.0.0 " + h1, wantErr: "line 1:"},
		{name: "bad version", in: "example.com/x 1.0.0 " + h1, wantErr: "invalid version"},
		{name: "bad go.mod version", in: "example.com/x v1.0.0/go.sum " + h1, wantErr: "invalid version"},
		{name: "bad hash", in: "example.com/x v1.0.0 sha256:abc", wantErr: "invalid hash"},
		{name: "short h1", in: "example.com/x v1.0.0 h1:YWJj", wantErr: "invalid h1 hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseGoSum([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseGoSum: err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ParseGoSum:\ngot  %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestHashMod(t *testing.T) {
	known, err := os.ReadFile("testdata/golang.org_x_sync@v0.24.0.mod")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, gomod, want string
	}{
		// From go.sum files, as the checksum database has them.
		{"golang.org/x/sync v0.24.0", string(known), "h1:sUUOizhqBxiL6pEWpqNLUiaJn1ShEbZ6BBqskPbjZm0="},
		{"empty", "", "h1:G7mAYYxgmS0lVkHyy2hEOLQCFB0DlQFTMLWggykrydY="},
		{"module", "module example.com/m\n\ngo 1.22\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := HashMod([]byte(tt.gomod))
			if tt.want != "" && got != tt.want {
				t.Errorf("HashMod = %s, want %s", got, tt.want)
			}
			direct, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
				return io.NopCloser(strings.NewReader(tt.gomod)), nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if got != direct {
				t.Errorf("HashMod = %s, dirhash.Hash1 = %s", got, direct)
			}
			// A zip whose only file is go.mod hashes the same way.
			var buf bytes.Buffer
			zw := zip.NewWriter(&buf)
			w, _ := zw.Create("go.mod")
			io.WriteString(w, tt.gomod)
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			if zh := hashZipFile(t, buf.Bytes()); got != zh {
				t.Errorf("HashMod = %s, dirhash.HashZip = %s", got, zh)
			}
		})
	}
}

func TestMismatchError(t *testing.T) {
	var err error = &MismatchError{Path: "example.com/m", Version: "v1.0.0", File: "go.mod",
		Got: "h1:got", Want: "h1:want", Source: "checksum database sum.example"}
	if !errors.Is(err, ErrMismatch) {
		t.Error("MismatchError is not ErrMismatch")
	}
	for _, s := range []string{"example.com/m@v1.0.0", "go.mod", "h1:got", "h1:want", "checksum database sum.example", "mismatch"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%q lacks %q", err, s)
		}
	}
	if !errors.Is(ErrNotInDB, fs.ErrNotExist) || !errors.Is(ErrBadPath, fs.ErrNotExist) || errors.Is(ErrNotInDB, ErrMismatch) {
		t.Error("sentinels do not match fs.ErrNotExist as documented")
	}
}

// memFile is a modzip.File in memory.
type memFile struct {
	name string
	data string
}

func (f memFile) Path() string                 { return f.name }
func (f memFile) Lstat() (fs.FileInfo, error)  { return memInfo(f), nil }
func (f memFile) Open() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(f.data)), nil }

type memInfo memFile

func (i memInfo) Name() string       { return filepath.Base(i.name) }
func (i memInfo) Size() int64        { return int64(len(i.data)) }
func (i memInfo) Mode() fs.FileMode  { return 0o644 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }

// fixtureMod is a module version built in memory.
type fixtureMod struct {
	path, version string
	files         map[string]string // go.mod included, if any
}

func (m fixtureMod) gomod() []byte {
	if gm, ok := m.files["go.mod"]; ok {
		return []byte(gm)
	}
	return []byte("module " + m.path + "\n") // what the go command synthesizes
}

// zip builds the module's zip with modzip.Create.
func (m fixtureMod) zip(t testing.TB) []byte {
	t.Helper()
	var files []modzip.File
	for name, data := range m.files {
		files = append(files, memFile{name, data})
	}
	var buf bytes.Buffer
	if err := modzip.Create(&buf, module.Version{Path: m.path, Version: m.version}, files); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// hashZipFile is dirhash.HashZip over data.
func hashZipFile(t testing.TB, data []byte) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "m.zip")
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := dirhash.HashZip(name, dirhash.Hash1)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

var fixtures = []fixtureMod{
	{path: "example.com/a", version: "v1.0.0", files: map[string]string{
		"go.mod":          "module example.com/a\n\ngo 1.22\n",
		"a.go":            "package a\n",
		"LICENSE":         "license\n",
		"sub/dir/b.go":    "package dir\n",
		"vendor/x/y.go":   "package y\n", // omitted by Create
		"nested/go.mod":   "module example.com/a/nested\n",
		"nested/n.go":     "package nested\n", // omitted: another module
		"README.md":       strings.Repeat("read me\n", 5000),
		"testdata/x.json": "{}",
	}},
	{path: "example.com/UpperCase/Mod", version: "v1.2.3-pre.1", files: map[string]string{
		"go.mod":   "module example.com/UpperCase/Mod\n",
		"Mixed.go": "package mod\n",
	}},
	{path: "example.com/old", version: "v2.0.0+incompatible", files: map[string]string{
		"old.go": "package old\n",
	}},
	{path: "example.com/m/v3", version: "v3.1.0", files: map[string]string{
		"go.mod": "module example.com/m/v3\n",
		"m.go":   "package m\n",
	}},
	{path: "gopkg.in/yaml.v3", version: "v3.0.1", files: map[string]string{
		"go.mod":  "module gopkg.in/yaml.v3\n",
		"yaml.go": "package yaml\n",
	}},
}

func TestHashZip(t *testing.T) {
	for _, m := range fixtures {
		t.Run(m.path, func(t *testing.T) {
			data := m.zip(t)
			got, err := HashZip(bytes.NewReader(data), int64(len(data)), m.path, m.version)
			if err != nil {
				t.Fatal(err)
			}
			if want := hashZipFile(t, data); got != want {
				t.Errorf("HashZip = %s, dirhash.HashZip = %s", got, want)
			}
		})
	}

	t.Run("golang.org/x/sync@v0.24.0 from the module proxy", func(t *testing.T) {
		f, err := os.Open("testdata/golang.org_x_sync@v0.24.0.zip")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		got, err := HashZip(f, fi.Size(), "golang.org/x/sync", "v0.24.0")
		if err != nil {
			t.Fatal(err)
		}
		if want := "h1:iqiDrGoDgyuvAKrhLQthUEzU/R378N78gXbBjxed7oA="; got != want {
			t.Errorf("HashZip = %s, want %s (go.sum)", got, want)
		}
	})

	t.Run("directory entries", func(t *testing.T) {
		data := rawZip(t, []rawEntry{
			{name: "example.com/d@v1.0.0/"},
			{name: "example.com/d@v1.0.0/sub/"},
			{name: "example.com/d@v1.0.0/sub/x.go", data: "package sub\n"},
			{name: "example.com/d@v1.0.0/go.mod", data: "module example.com/d\n"},
		})
		got, err := HashZip(bytes.NewReader(data), int64(len(data)), "example.com/d", "v1.0.0")
		if err != nil {
			t.Fatal(err)
		}
		if want := hashZipFile(t, data); got != want {
			t.Errorf("HashZip = %s, dirhash.HashZip = %s", got, want)
		}
	})
}

// rawEntry is a zip entry written as is; its sizes and CRC may be made to lie.
type rawEntry struct {
	name, data string
	mode       fs.FileMode
	big        int64 // if > 0, the entry is this many zero bytes instead of data
	// lie, if set, changes the header after it was filled in from the data.
	lie func(*zip.FileHeader)
}

func rawZip(t testing.TB, entries []rawEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		if e.lie != nil {
			// Write stored bytes with a hand-made header.
			h.Method = zip.Store
			h.CRC32 = crc(e.data)
			h.CompressedSize64 = uint64(len(e.data))
			h.UncompressedSize64 = uint64(len(e.data))
			e.lie(h)
			w, err := zw.CreateRaw(h)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(w, e.data)
			continue
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if e.big > 0 {
			if _, err := io.CopyN(w, zeros{}, e.big); err != nil {
				t.Fatal(err)
			}
		} else {
			io.WriteString(w, e.data)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func crc(s string) uint32 { return crc32.ChecksumIEEE([]byte(s)) }

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// invalidZip is a zip, or a module path or version, that HashZip refuses.
type invalidZip struct {
	name          string
	zip           []byte
	path, version string
	size          int64 // if not 0, the size passed to HashZip
	wantErr       string
}

// The module of invalidZips, unless a case says otherwise.
const invalidPath, invalidVersion = "example.com/m", "v1.0.0"

// args returns the module path, version and size a hasher is given for the case.
func (z invalidZip) args() (path, version string, size int64) {
	path, version, size = invalidPath, invalidVersion, int64(len(z.zip))
	if z.path != "" {
		path = z.path
	}
	if z.version != "" {
		version = z.version
	}
	if z.size != 0 {
		size = z.size
	}
	return path, version, size
}

// invalidZips returns the cases HashZip refuses, and a valid zip of the same module.
func invalidZips(t testing.TB) (tests []invalidZip, valid []byte) {
	const p, v = invalidPath, invalidVersion
	const pre = p + "@" + v + "/"
	gomod := rawEntry{name: pre + "go.mod", data: "module example.com/m\n"}
	valid = rawZip(t, []rawEntry{gomod, {name: pre + "m.go", data: "package m\n"}})
	return []invalidZip{
		{name: "file outside the prefix", wantErr: "does not have prefix",
			zip: rawZip(t, []rawEntry{gomod, {name: "example.com/other@v1.0.0/x.go", data: "package x\n"}})},
		{name: "other version", wantErr: "does not have prefix",
			zip: rawZip(t, []rawEntry{{name: p + "@v1.0.1/go.mod", data: "module example.com/m\n"}})},
		{name: "escaped prefix", path: "example.com/M", wantErr: "does not have prefix",
			zip: rawZip(t, []rawEntry{{name: "example.com/!m@v1.0.0/x.go", data: "package x\n"}})},
		{name: "case-folded duplicate", wantErr: "case-insensitive file name collision",
			zip: rawZip(t, []rawEntry{gomod, {name: pre + "A.go", data: "package m\n"}, {name: pre + "a.go", data: "package m\n"}})},
		{name: "exact duplicate", wantErr: "multiple entries",
			zip: rawZip(t, []rawEntry{gomod, {name: pre + "a.go", data: "package m\n"}, {name: pre + "a.go", data: "package m\n"}})},
		{name: "file and directory", wantErr: "both a file and a directory",
			zip: rawZip(t, []rawEntry{gomod, {name: pre + "a", data: "x"}, {name: pre + "a/b.go", data: "package b\n"}})},
		{name: "too large go.mod", wantErr: "go.mod file too large",
			zip: rawZip(t, []rawEntry{{name: pre + "go.mod", big: modzip.MaxGoMod + 1}})},
		{name: "too large LICENSE", wantErr: "LICENSE file too large",
			zip: rawZip(t, []rawEntry{gomod, {name: pre + "LICENSE", big: modzip.MaxLICENSE + 1}})},
		{name: "go.mod in a subdirectory", wantErr: "not in module root",
			zip: rawZip(t, []rawEntry{gomod, {name: pre + "sub/go.mod", data: "module example.com/m/sub\n"}})},
		{name: "GO.MOD", wantErr: "lowercase",
			zip: rawZip(t, []rawEntry{{name: pre + "GO.MOD", data: "module example.com/m\n"}})},
		{name: "unclean path", wantErr: "not clean",
			zip: rawZip(t, []rawEntry{gomod, {name: pre + "a/../b.go", data: "package m\n"}})},
		{name: "invalid file name", wantErr: "invalid",
			zip: rawZip(t, []rawEntry{gomod, {name: pre + "a:b.go", data: "package m\n"}})},
		{name: "symbolic link", wantErr: "not a regular file",
			zip: rawZip(t, []rawEntry{gomod, {name: pre + "link", data: "m.go", mode: fs.ModeSymlink | 0o777}})},
		{name: "truncated", wantErr: "not a valid zip file", zip: valid[:len(valid)*2/3]},
		{name: "not a zip", wantErr: "not a valid zip file", zip: []byte("this is not a zip file")},
		{name: "size over the limit", wantErr: "too large", zip: valid, size: modzip.MaxZipFile + 1},
		{name: "declared size too small", wantErr: "read example.com/m@v1.0.0/m.go",
			zip: rawZip(t, []rawEntry{gomod, {name: pre + "m.go", data: "package m\n",
				lie: func(h *zip.FileHeader) { h.UncompressedSize64 -= 3 }}})},
		{name: "declared size too large", wantErr: "read example.com/m@v1.0.0/m.go",
			zip: rawZip(t, []rawEntry{gomod, {name: pre + "m.go", data: "package m\n",
				lie: func(h *zip.FileHeader) { h.UncompressedSize64 += 3 }}})},
		{name: "declared go.mod size lies", wantErr: "read example.com/m@v1.0.0/go.mod",
			zip: rawZip(t, []rawEntry{{name: pre + "go.mod", data: "module example.com/m\n" + strings.Repeat("\n", 100),
				lie: func(h *zip.FileHeader) { h.UncompressedSize64 = 10 }}})},
		{name: "wrong CRC", wantErr: "checksum error",
			zip: rawZip(t, []rawEntry{gomod, {name: pre + "m.go", data: "package m\n",
				lie: func(h *zip.FileHeader) { h.CRC32++ }}})},
		{name: "non-canonical version", version: "v1.0", wantErr: "not canonical", zip: valid},
		{name: "bad module path", path: "example.com/m/../x", wantErr: "malformed", zip: valid},
		{name: "major version mismatch", path: "example.com/m/v2", wantErr: "should be v2", zip: valid},
	}, valid
}

func TestHashZipInvalid(t *testing.T) {
	const p, v = invalidPath, invalidVersion
	tests, valid := invalidZips(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, version, size := tt.args()
			h, err := HashZip(bytes.NewReader(tt.zip), size, path, version)
			if err == nil {
				t.Fatalf("HashZip = %s, want an error", h)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("HashZip: %v\nwant an error containing %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), "hash "+path+"@"+version+" zip") {
				t.Errorf("HashZip: %v lacks context", err)
			}
		})
	}

	// The valid zip itself passes.
	if _, err := HashZip(bytes.NewReader(valid), int64(len(valid)), p, v); err != nil {
		t.Errorf("valid zip: %v", err)
	}
}

// countingReaderAt counts the bytes read through it.
type countingReaderAt struct {
	r io.ReaderAt
	n int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n += int64(n)
	return n, err
}

// TestHashZipReadsOnce checks that HashZip streams the zip: it reads about its size, not much
// more (each entry once) — a zip of 1 MiB of incompressible-ish data here.
func TestHashZipReadsOnce(t *testing.T) {
	var sb strings.Builder
	for i := range 200000 {
		sb.WriteString(string(rune('a' + i*7919%26)))
	}
	m := fixtureMod{path: "example.com/big", version: "v1.0.0", files: map[string]string{
		"go.mod": "module example.com/big\n", "a.txt": sb.String(), "b.txt": sb.String()[1:],
	}}
	data := m.zip(t)
	c := &countingReaderAt{r: bytes.NewReader(data)}
	if _, err := HashZip(c, int64(len(data)), m.path, m.version); err != nil {
		t.Fatal(err)
	}
	if c.n > 2*int64(len(data))+64<<10 {
		t.Errorf("HashZip read %d bytes of a %d-byte zip", c.n, len(data))
	}
}

// TestHasherBound hashes three sets of files at once through Hashers of 1 and 2 slots: no more
// files are open at a time than the bound, and the hash is the unbounded one.
func TestHasherBound(t *testing.T) {
	var names []string
	for i := range 40 {
		names = append(names, fmt.Sprintf("example.com/many@v1.0.0/f%02d.go", i))
	}
	var open testkit.Gauge
	openFile := func(name string) (io.ReadCloser, error) {
		leave := open.Enter()
		time.Sleep(100 * time.Microsecond) // long enough for unbounded hashing to overlap
		return closer{Reader: strings.NewReader(name), close: leave}, nil
	}
	want, err := (*Hasher)(nil).hash1(names, openFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, slots := range []int{1, 2} {
		h := NewHasher(slots)
		open.Reset()
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				if got, err := h.hash1(names, openFile); err != nil || got != want {
					t.Errorf("%d slots: %q, %v; want %q", slots, got, err, want)
				}
			})
		}
		wg.Wait()
		if m := open.Most(); m > slots {
			t.Errorf("%d slots: %d files open at once", slots, m)
		}
	}
}

// closer is a ReadCloser whose Close calls a function.
type closer struct {
	io.Reader
	close func()
}

func (c closer) Close() error { c.close(); return nil }
