package testkit

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"
)

// bigBlobMax is the largest data file in a big module.
const bigBlobMax = 32 << 20

// A BigModule is a module whose zip lives in a file on disk, for tests and
// benchmarks of large downloads. Its content is deterministic
// (pseudo-random, incompressible data seeded by path, version and size).
type BigModule struct {
	Path    string
	Version string
	Time    time.Time
	// ZipFile is the path of the module's .zip file; ZipSize is its size.
	ZipFile string
	ZipSize int64
	// ZipHash and ModHash are the module's go.sum hashes ("h1:...").
	ZipHash string
	ModHash string
	// GoMod and Info are the module's .mod and .info files.
	GoMod []byte
	Info  []byte

	dir string // the temporary directory Big made, removed by Remove
}

// String returns "path@version".
func (b *BigModule) String() string { return b.Path + "@" + b.Version }

// GoSum returns the module's two go.sum lines, each ending in a newline.
func (b *BigModule) GoSum() string {
	return goSumLines(b.Path, b.Version, b.ZipHash, b.ModHash)
}

// Remove deletes the temporary directory holding the zip file that [Big]
// made. It does nothing for a BigModule made otherwise.
func (b *BigModule) Remove() error {
	if b.dir == "" {
		return nil
	}
	if err := os.RemoveAll(b.dir); err != nil {
		return fmt.Errorf("testkit: %w", err)
	}
	return nil
}

// Big builds a module path@version whose zip is about size bytes of
// deterministic incompressible data, split into files of at most 32 MiB
// (data/blobNNN.bin) next to a go.mod and a small Go package. The zip is
// made with golang.org/x/mod/zip.Create and streamed to a file in a new
// temporary directory, so building it takes little memory whatever the size.
//
// Big panics if the module is invalid or the file cannot be written. The
// caller owns the file: delete it with [BigModule.Remove], typically with
// t.Cleanup, or use [NewBig], which does that.
func Big(path, version string, size int64) *BigModule {
	b, err := makeBig(path, version, size)
	if err != nil {
		panic(err)
	}
	return b
}

// NewBig is [Big] for tests: it fails tb on error and removes the zip file
// when the test ends.
func NewBig(tb testing.TB, path, version string, size int64) *BigModule {
	tb.Helper()
	b, err := makeBig(path, version, size)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := b.Remove(); err != nil {
			tb.Error(err)
		}
	})
	return b
}

func makeBig(path, version string, size int64) (_ *BigModule, err error) {
	mv := module.Version{Path: path, Version: version}
	if err := module.Check(path, version); err != nil {
		return nil, fmt.Errorf("testkit: %w", err)
	}
	gomod := fmt.Appendf(nil, "module %s\n\ngo 1.21\n", path)
	files := []modzip.File{
		memFile{name: "go.mod", data: gomod},
		memFile{name: "big.go", data: []byte("// Package big holds a lot of data and little code.\npackage big\n\n// Blobs is the number of data files.\nconst Blobs = " + fmt.Sprint(blobCount(size)) + "\n")},
	}
	for i, left := 0, size; left > 0; i++ {
		n := min(left, bigBlobMax)
		left -= n
		name := fmt.Sprintf("data/blob%03d.bin", i)
		files = append(files, blobFile{name: name, size: n, seed: sha256.Sum256(fmt.Appendf(nil, "%s@%s#%d/%s", path, version, size, name))})
	}

	dir, err := os.MkdirTemp("", "testkit-big-")
	if err != nil {
		return nil, fmt.Errorf("testkit: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	zipFile := filepath.Join(dir, "module.zip")
	f, err := os.Create(zipFile)
	if err != nil {
		return nil, fmt.Errorf("testkit: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	err = modzip.Create(bw, mv, files)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("testkit: writing big module %s: %w", mv, err)
	}
	st, err := os.Stat(zipFile)
	if err != nil {
		return nil, fmt.Errorf("testkit: %w", err)
	}

	// The h1 hash covers the files' names (with the zip prefix) and
	// contents, so it can be computed from the generators without reading
	// the zip back.
	prefix := path + "@" + version + "/"
	byName := make(map[string]modzip.File, len(files))
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = prefix + f.Path()
		byName[names[i]] = f
	}
	zh, err := dirhash.Hash1(names, func(name string) (io.ReadCloser, error) {
		return byName[name].Open()
	})
	if err != nil {
		return nil, fmt.Errorf("testkit: hashing big module %s: %w", mv, err)
	}
	mh, err := modHash(gomod)
	if err != nil {
		return nil, err
	}
	t := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	return &BigModule{
		Path:    path,
		Version: version,
		Time:    t,
		ZipFile: zipFile,
		ZipSize: st.Size(),
		ZipHash: zh,
		ModHash: mh,
		GoMod:   gomod,
		Info:    infoJSON(version, t),
		dir:     dir,
	}, nil
}

// blobCount returns how many data files a big module of size bytes has.
func blobCount(size int64) int64 {
	if size <= 0 {
		return 0
	}
	return (size + bigBlobMax - 1) / bigBlobMax
}

// blobFile is a golang.org/x/mod/zip.File of size pseudo-random bytes
// generated from seed.
type blobFile struct {
	name string
	size int64
	seed [32]byte
}

func (f blobFile) Path() string                { return f.name }
func (f blobFile) Lstat() (fs.FileInfo, error) { return blobInfo(f), nil }
func (f blobFile) Open() (io.ReadCloser, error) {
	return io.NopCloser(io.LimitReader(rand.NewChaCha8(f.seed), f.size)), nil
}

// blobInfo describes a blobFile.
type blobInfo blobFile

func (fi blobInfo) Name() string       { return filepath.Base(fi.name) }
func (fi blobInfo) Size() int64        { return fi.size }
func (fi blobInfo) Mode() fs.FileMode  { return 0o644 }
func (fi blobInfo) ModTime() time.Time { return time.Time{} }
func (fi blobInfo) IsDir() bool        { return false }
func (fi blobInfo) Sys() any           { return nil }
