package checksum

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
	"golang.org/x/sync/errgroup"

	"github.com/modmirror/modmirror/shared/checksum/internal/inflate"
)

// HashZip checks a module zip of the given size read through ra against the rules of
// golang.org/x/mod/zip (every file under "path@version/", size limits, no duplicate or invalid
// names) and returns its go.sum hash. It never loads the zip whole into memory.
//
// The checks are those of modzip.CheckZip (which the go command runs on every zip it downloads),
// then modzip.CheckFiles over the files with the prefix stripped; an entry that is neither a
// regular file nor a directory (a symbolic link, say) is invalid too. Files that CheckFiles would
// merely omit when creating a zip (vendored or nested-module files, which zips made by older go
// commands may hold) are accepted, as the go command accepts them. Every file is read once, and
// archive/zip checks its length and CRC-32 against the zip's directory, so a zip whose declared
// sizes lie fails. The hash is dirhash.HashZip's: Hash1 over all entries, names with the prefix.
//
// It hashes a zip's files on every CPU. A process that hashes while it serves uses a Hasher.
func HashZip(ra io.ReaderAt, size int64, path, version string) (string, error) {
	return (*Hasher)(nil).HashZip(ra, size, path, version)
}

// A Hasher hashes module zips with at most a given number of files being hashed at once,
// however many zips it hashes at a time: a server bounds its verification to fewer goroutines
// than it has Ps, so that a request arriving during a burst of fills finds a P to run on at once
// instead of queueing behind the hashing. It is safe for concurrent use.
type Hasher struct {
	slots    chan struct{}
	decoders sync.Pool // *inflate.Reader, each some 220 KiB
}

// NewHasher returns a Hasher that hashes at most n files at once.
func NewHasher(n int) *Hasher {
	return &Hasher{slots: make(chan struct{}, max(n, 1))}
}

// HashZip is the package's HashZip within h's bound; a nil Hasher has none.
func (h *Hasher) HashZip(ra io.ReaderAt, size int64, path, version string) (string, error) {
	sum, err := h.hashZip(ra, size, path, version)
	if err != nil {
		return "", fmt.Errorf("hash %s@%s zip: %w", path, version, err)
	}
	return sum, nil
}

func (h *Hasher) hashZip(ra io.ReaderAt, size int64, modPath, version string) (string, error) {
	if v := module.CanonicalVersion(version); v != version {
		return "", fmt.Errorf("version %q is not canonical (should be %q)", version, v)
	}
	if err := module.Check(modPath, version); err != nil {
		return "", err
	}
	if size < 0 {
		return "", fmt.Errorf("invalid zip size %d", size)
	}
	if size > modzip.MaxZipFile {
		return "", fmt.Errorf("module zip file is too large (%d bytes; limit is %d bytes)", size, modzip.MaxZipFile)
	}
	z, err := zip.NewReader(ra, size)
	if err != nil {
		return "", err
	}
	// archive/zip keeps checking lengths, CRC-32s and data descriptors; the decoding is
	// inflate's, in half the time, by a Reader per hashing goroutine: a Hasher's Readers serve
	// every zip it hashes, a nil Hasher's this zip only.
	decoders := new(sync.Pool)
	if h != nil {
		decoders = &h.decoders
	}
	z.RegisterDecompressor(zip.Deflate, func(r io.Reader) io.ReadCloser {
		d, _ := decoders.Get().(*inflate.Reader)
		if d == nil {
			d = inflate.NewReader(r)
		} else {
			d.Reset(r)
		}
		return &pooledReader{Reader: d, pool: decoders}
	})

	if err := checkZipFiles(z.File, modPath, version, true); err != nil {
		return "", err
	}
	names := make([]string, 0, len(z.File))
	byName := make(map[string]*zip.File, len(z.File))
	for _, zf := range z.File {
		names = append(names, zf.Name)
		byName[zf.Name] = zf
	}

	// dirhash.HashZip, streaming each entry through archive/zip's length and CRC-32 checks.
	return h.hash1(names, func(name string) (io.ReadCloser, error) {
		zf := byName[name]
		if zf == nil {
			return nil, fmt.Errorf("file %q not found in zip", name) // cannot happen
		}
		rc, err := zf.Open()
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", name, err)
		}
		return &namedReader{name: name, rc: rc}, nil
	})
}

// checkZipFiles applies the checks of modzip.CheckZip to a zip's entries, entry by entry, then
// those of modzip.CheckFiles to its files with the prefix stripped. open says whether the
// entries' content may be read (CheckFiles reads the root go.mod for its go version, which
// decides only which files are omitted, never whether the zip is valid).
func checkZipFiles(zfs []*zip.File, modPath, version string, open bool) error {
	// The checks of modzip.CheckZip, entry by entry.
	prefix := modPath + "@" + version + "/"
	var (
		invalid    []modzip.FileError
		sizeErr    error
		total      int64
		files      []modzip.File
		collisions = make(collisionChecker)
	)
	addError := func(zf *zip.File, err error) {
		invalid = append(invalid, modzip.FileError{Path: zf.Name, Err: err})
	}
	for _, zf := range zfs {
		if !strings.HasPrefix(zf.Name, prefix) {
			addError(zf, fmt.Errorf("path does not have prefix %q", prefix))
			continue
		}
		name := zf.Name[len(prefix):]
		if name == "" {
			continue
		}
		isDir := strings.HasSuffix(name, "/")
		if isDir {
			name = name[:len(name)-1]
		}
		if path.Clean(name) != name {
			addError(zf, errors.New("file path is not clean"))
			continue
		}
		if err := module.CheckFilePath(name); err != nil {
			addError(zf, err)
			continue
		}
		if err := collisions.check(name, isDir); err != nil {
			addError(zf, err)
			continue
		}
		if isDir {
			continue
		}
		if !zf.Mode().IsRegular() {
			addError(zf, fmt.Errorf("not a regular file (mode %v)", zf.Mode()))
			continue
		}
		if base := path.Base(name); strings.EqualFold(base, "go.mod") {
			if base != name {
				addError(zf, errors.New("go.mod file not in module root directory"))
				continue
			}
			if name != "go.mod" {
				addError(zf, errors.New("go.mod files must have lowercase names"))
				continue
			}
		}
		sz := int64(zf.UncompressedSize64)
		if sz >= 0 && modzip.MaxZipFile-total >= sz {
			total += sz
		} else if sizeErr == nil {
			sizeErr = fmt.Errorf("total uncompressed size of module contents too large (max size is %d bytes)", modzip.MaxZipFile)
		}
		if name == "go.mod" && sz > modzip.MaxGoMod {
			addError(zf, fmt.Errorf("go.mod file too large (max size is %d bytes)", modzip.MaxGoMod))
			continue
		}
		if name == "LICENSE" && sz > modzip.MaxLICENSE {
			addError(zf, fmt.Errorf("LICENSE file too large (max size is %d bytes)", modzip.MaxLICENSE))
			continue
		}
		files = append(files, zipEntry{name: name, f: zf, noOpen: !open})
	}
	if sizeErr != nil {
		return sizeErr
	}
	if len(invalid) > 0 {
		return modzip.FileErrorList(invalid)
	}
	// Then the rules modzip.Create applies to the files themselves.
	_, err := modzip.CheckFiles(files)
	return err
}

// hash1 is dirhash.Hash1, with the files hashed on every CPU (within h's bound): a large
// module's zip is checked in a fraction of the time, which a go command waiting for its first
// fill notices. open must be safe for concurrent use (an archive/zip Reader over an io.ReaderAt
// is).
func (h *Hasher) hash1(files []string, open func(string) (io.ReadCloser, error)) (string, error) {
	files = slices.Clone(files)
	slices.Sort(files)
	for _, f := range files {
		if strings.Contains(f, "\n") {
			return "", errors.New("dirhash: filenames with newlines are not supported")
		}
	}
	sums := make([][sha256.Size]byte, len(files))
	var (
		next atomic.Int64 // the index of the next file to hash
		eg   errgroup.Group
	)
	// Each worker hashes files in turn with its own buffer and digest: a zip of thousands of
	// small files allocates a few of each, not one per file.
	workers := runtime.GOMAXPROCS(0)
	if h != nil {
		workers = min(workers, cap(h.slots))
	}
	for range min(workers, len(files)) {
		eg.Go(func() error {
			buf := make([]byte, 32<<10)
			digest := sha256.New()
			for i := int(next.Add(1) - 1); i < len(files); i = int(next.Add(1) - 1) {
				if err := h.hashFile(digest, buf, files[i], open); err != nil {
					return err
				}
				digest.Sum(sums[i][:0])
			}
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return "", err
	}
	summary := sha256.New()
	for i, file := range files {
		fmt.Fprintf(summary, "%x  %s\n", sums[i], file)
	}
	return "h1:" + base64.StdEncoding.EncodeToString(summary.Sum(nil)), nil
}

// hashFile hashes one file into digest (reset first), within h's bound.
func (h *Hasher) hashFile(digest hash.Hash, buf []byte, name string, open func(string) (io.ReadCloser, error)) error {
	if h != nil {
		h.slots <- struct{}{}
		defer func() { <-h.slots }()
	}
	r, err := open(name)
	if err != nil {
		return err
	}
	defer r.Close()
	digest.Reset()
	_, err = io.CopyBuffer(digest, r, buf)
	return err
}

// pooledReader returns its decoder to the pool when closed.
type pooledReader struct {
	*inflate.Reader
	pool *sync.Pool
}

func (r *pooledReader) Close() error {
	if r.Reader != nil {
		r.pool.Put(r.Reader)
		r.Reader = nil
	}
	return nil
}

// zipEntry adapts a zip entry to modzip.File, with the module prefix stripped from its name.
type zipEntry struct {
	name   string
	f      *zip.File
	noOpen bool // the content is not at hand: Open fails
}

func (e zipEntry) Path() string                { return e.name }
func (e zipEntry) Lstat() (fs.FileInfo, error) { return e.f.FileInfo(), nil }
func (e zipEntry) Open() (io.ReadCloser, error) {
	if e.noOpen {
		return nil, errors.New("zip entry read as a stream: content not at hand")
	}
	return e.f.Open()
}

// namedReader names the zip entry in read errors (archive/zip's ErrFormat and ErrChecksum do
// not).
type namedReader struct {
	name string
	rc   io.ReadCloser
}

func (r *namedReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("read %s: %w", r.name, err)
	}
	return n, err
}

func (r *namedReader) Close() error { return r.rc.Close() }

// collisionChecker finds case-insensitive name collisions and paths that are listed as both files
// and directories. It is golang.org/x/mod/zip's, which that package does not export.
type collisionChecker map[string]pathInfo

type pathInfo struct {
	path  string
	isDir bool
}

func (cc collisionChecker) check(p string, isDir bool) error {
	fold := strToFold(p)
	if other, ok := cc[fold]; ok {
		if p != other.path {
			return fmt.Errorf("case-insensitive file name collision: %q and %q", other.path, p)
		}
		if isDir != other.isDir {
			return fmt.Errorf("entry %q is both a file and a directory", p)
		}
		if !isDir {
			return fmt.Errorf("multiple entries for file %q", p)
		}
		// The same directory may be checked many times, as the parent of many entries.
	} else {
		cc[fold] = pathInfo{path: p, isDir: isDir}
	}
	if parent := path.Dir(p); parent != "." {
		return cc.check(parent, true)
	}
	return nil
}

// strToFold returns a string with the property that strings.EqualFold(s, t) iff
// strToFold(s) == strToFold(t) (from golang.org/x/mod/zip).
func strToFold(s string) string {
	// Fast path: all ASCII, no upper case.
	ascii := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	var buf bytes.Buffer
	for _, r := range s {
		// SimpleFold(x) cycles to the next equivalent rune > x or wraps around to smaller values.
		// Iterate until it wraps, and we've found the minimum value.
		for {
			r0 := r
			r = unicode.SimpleFold(r0)
			if r <= r0 {
				break
			}
		}
		// Exception to allow fast path above: A-Z => a-z.
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		buf.WriteRune(r)
	}
	return buf.String()
}
