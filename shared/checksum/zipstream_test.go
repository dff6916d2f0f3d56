package checksum

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/modmirror/modmirror/shared/testkit"
)

// agree hashes data with HashZip and HashZipStream and fails t unless the stream's answer is
// safe: an accepted zip is one HashZip accepts with the same hash. It returns both errors.
func agree(t *testing.T, data []byte, path, version string) (hash string, errAt, errStream error) {
	t.Helper()
	want, errAt := HashZip(bytes.NewReader(data), int64(len(data)), path, version)
	// One byte at a time: every record and every buffer boundary falls mid-read somewhere.
	got, errStream := HashZipStream(iotest.HalfReader(bytes.NewReader(data)), int64(len(data)), path, version)
	if errStream == nil && (errAt != nil || got != want) {
		t.Fatalf("HashZipStream accepted with %s; HashZip gives %q, %v", got, want, errAt)
	}
	return want, errAt, errStream
}

// mustAgree is agree for a valid zip: both accept it with the same hash.
func mustAgree(t *testing.T, data []byte, path, version string) string {
	t.Helper()
	h, errAt, errStream := agree(t, data, path, version)
	if errAt != nil || errStream != nil {
		t.Fatalf("valid zip: HashZip: %v; HashZipStream: %v", errAt, errStream)
	}
	return h
}

// rawDeflate returns data compressed as a bare DEFLATE stream.
func rawDeflate(t testing.TB, data string) []byte {
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(fw, data)
	fw.Close()
	return buf.Bytes()
}

// createRaw writes a zip whose entries are given as headers and raw (possibly compressed) data,
// with no data descriptors: CreateRaw writes the sizes in the local headers.
func createRaw(t testing.TB, entries []*zip.FileHeader, raw [][]byte) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i, h := range entries {
		w, err := zw.CreateRaw(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(raw[i])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestHashZipStream(t *testing.T) {
	for _, m := range fixtures {
		t.Run(m.path, func(t *testing.T) {
			data := m.zip(t)
			if got, want := mustAgree(t, data, m.path, m.version), hashZipFile(t, data); got != want {
				t.Errorf("hash %s, dirhash.HashZip %s", got, want)
			}
		})
	}
	t.Run("golang.org/x/sync@v0.24.0 from the module proxy", func(t *testing.T) {
		data, err := os.ReadFile("testdata/golang.org_x_sync@v0.24.0.zip")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := mustAgree(t, data, "golang.org/x/sync", "v0.24.0"), "h1:iqiDrGoDgyuvAKrhLQthUEzU/R378N78gXbBjxed7oA="; got != want {
			t.Errorf("hash %s, go.sum has %s", got, want)
		}
	})
	t.Run("shaped like real modules", func(t *testing.T) {
		for _, m := range testkit.MustShaped(t, 6) {
			if got := mustAgree(t, m.Zip(), m.Path, m.Version); got != m.ZipHash() {
				t.Errorf("%s: hash %s, want %s", m, got, m.ZipHash())
			}
		}
	})
	t.Run("fixtures", func(t *testing.T) {
		for _, m := range testkit.MustLoadFixtures(t) {
			if got := mustAgree(t, m.Zip(), m.Path, m.Version); got != m.ZipHash() {
				t.Errorf("%s: hash %s, want %s", m, got, m.ZipHash())
			}
		}
	})
	const pre = "example.com/d@v1.0.0/"
	t.Run("directory entries, data descriptors", func(t *testing.T) {
		mustAgree(t, rawZip(t, []rawEntry{
			{name: pre},
			{name: pre + "sub/"},
			{name: pre + "sub/x.go", data: "package sub\n"},
			{name: pre + "go.mod", data: "module example.com/d\n"},
			{name: pre + "empty.go"},
			{name: pre + "zeros.bin", big: 300 << 10},
		}), "example.com/d", "v1.0.0")
	})
	t.Run("stored and deflated entries with sizes in the local headers", func(t *testing.T) {
		gomod, src := "module example.com/d\n", strings.Repeat("package d\n// yes\n", 200)
		def := rawDeflate(t, src)
		mustAgree(t, createRaw(t, []*zip.FileHeader{
			{Name: pre + "go.mod", Method: zip.Store, CRC32: crc(gomod), CompressedSize64: uint64(len(gomod)), UncompressedSize64: uint64(len(gomod))},
			{Name: pre + "d.go", Method: zip.Deflate, CRC32: crc(src), CompressedSize64: uint64(len(def)), UncompressedSize64: uint64(len(src))},
			{Name: pre + "empty", Method: zip.Store},
			{Name: pre + "zero-crc.go", Method: zip.Store, CompressedSize64: 2, UncompressedSize64: 2}, // archive/zip skips a zero CRC
		}, [][]byte{[]byte(gomod), def, nil, []byte("//")}), "example.com/d", "v1.0.0")
	})
	t.Run("a big module", func(t *testing.T) {
		b := testkit.NewBig(t, "example.com/big", "v1.0.0", 3<<20)
		data, err := os.ReadFile(b.ZipFile)
		if err != nil {
			t.Fatal(err)
		}
		if got := mustAgree(t, data, b.Path, b.Version); got != b.ZipHash {
			t.Errorf("hash %s, want %s", got, b.ZipHash)
		}
	})
}

// Every zip HashZip refuses, HashZipStream refuses.
func TestHashZipStreamInvalid(t *testing.T) {
	const pre = invalidPath + "@" + invalidVersion + "/"
	tests, valid := invalidZips(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, version, size := tt.args()
			h, err := HashZipStream(bytes.NewReader(tt.zip), size, path, version)
			if err == nil {
				t.Fatalf("HashZipStream = %s, want an error", h)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), "hash "+path+"@"+version+" zip") {
				t.Errorf("HashZipStream: %v lacks context", err)
			}
		})
	}

	lies := []struct {
		name string
		lie  func(data []byte) []byte
	}{
		{"truncated", func(d []byte) []byte { return d[:len(d)/2] }},
		{"cut before the end record", func(d []byte) []byte { return d[:len(d)-1] }},
		{"content changed (CRC-32)", func(d []byte) []byte {
			i := bytes.Index(d, []byte("package m"))
			d[i] = 'P'
			return d
		}},
	}
	// Stored, so that the content can be changed in place.
	stored := rawZip(t, []rawEntry{{name: pre + "m.go", data: "package m\n", lie: func(*zip.FileHeader) {}}})
	mustAgree(t, stored, invalidPath, invalidVersion)
	for _, l := range lies {
		t.Run(l.name, func(t *testing.T) {
			data := l.lie(bytes.Clone(stored))
			_, errAt, errStream := agree(t, data, invalidPath, invalidVersion)
			if errAt == nil || errStream == nil {
				t.Errorf("HashZip: %v; HashZipStream: %v; want both to fail", errAt, errStream)
			}
		})
	}
	t.Run("announced size differs", func(t *testing.T) {
		if _, err := HashZipStream(bytes.NewReader(valid), int64(len(valid))+1, invalidPath, invalidVersion); err == nil || !strings.Contains(err.Error(), "announced") {
			t.Errorf("HashZipStream with a size one too large: %v; want got ... not the ... announced", err)
		}
	})
	t.Run("read error", func(t *testing.T) {
		boom := errors.New("boom")
		r := io.MultiReader(bytes.NewReader(valid[:40]), iotest.ErrReader(boom))
		if _, err := HashZipStream(r, -1, invalidPath, invalidVersion); !errors.Is(err, boom) {
			t.Errorf("HashZipStream of a failing reader: %v; want its error", err)
		}
	})
	t.Run("data where the directory does not say", func(t *testing.T) {
		// A stored file with a data descriptor: its length comes only after its data.
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: invalidPath + "@" + invalidVersion + "/go.mod", Method: zip.Store})
		io.WriteString(w, "module example.com/m\n")
		zw.Close()
		_, errAt, errStream := agree(t, buf.Bytes(), invalidPath, invalidVersion)
		if errAt != nil || !errors.Is(errStream, ErrNotStreamable) {
			t.Errorf("HashZip: %v; HashZipStream: %v; want ErrNotStreamable from the stream only", errAt, errStream)
		}
	})
}

// Changing any byte, or cutting the zip anywhere, never makes HashZipStream accept what HashZip
// refuses or hash differently; and it refuses every truncation.
func TestHashZipStreamMutations(t *testing.T) {
	m := fixtures[0]
	valid := m.zip(t)
	for i := range valid {
		data := bytes.Clone(valid)
		data[i] ^= 0x5a
		agree(t, data, m.path, m.version)
	}
	for n := range len(valid) {
		if _, _, err := agree(t, valid[:n], m.path, m.version); err == nil {
			t.Fatalf("HashZipStream accepted the zip cut to %d of %d bytes", n, len(valid))
		}
	}
}

// A large zip streams through in bounded memory.
func TestHashZipStreamMemory(t *testing.T) {
	b := testkit.NewBig(t, "example.com/big", "v1.0.0", 40<<20)
	f, err := os.Open(b.ZipFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got, err := HashZipStream(f, b.ZipSize, b.Path, b.Version)
	runtime.ReadMemStats(&after)
	if err != nil || got != b.ZipHash {
		t.Fatalf("HashZipStream = %q, %v; want %s", got, err, b.ZipHash)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d KiB hashing a %d MiB zip", alloc>>10, b.ZipSize>>20)
	if alloc > 4<<20 {
		t.Errorf("allocated %d KiB hashing a %d MiB zip; want at most 4 MiB", alloc>>10, b.ZipSize>>20)
	}
}

// A zip of more files than a stream keeps is refused, as not streamable, before its end.
func TestHashZipStreamTooManyFiles(t *testing.T) {
	const pre = invalidPath + "@" + invalidVersion + "/"
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := range maxStreamFiles + 1 {
		if _, err := zw.CreateRaw(&zip.FileHeader{Name: fmt.Sprintf("%sf%d", pre, i), Method: zip.Store}); err != nil {
			t.Fatal(err)
		}
	}
	zw.Close()
	if _, err := HashZipStream(bytes.NewReader(buf.Bytes()), int64(buf.Len()), invalidPath, invalidVersion); !errors.Is(err, ErrNotStreamable) {
		t.Errorf("HashZipStream of %d files: %v; want ErrNotStreamable", maxStreamFiles+1, err)
	}
}
