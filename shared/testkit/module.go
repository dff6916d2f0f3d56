package testkit

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"
)

// ModulePath is the module path of this repository; [RepoRoot] looks for the
// go.mod file that declares it.
const ModulePath = "github.com/modmirror/modmirror"

// A Module is one version of a small module held in memory.
type Module struct {
	Path    string
	Version string
	Time    time.Time
	// Files maps slash-separated paths inside the module ("go.mod",
	// "cmd/hello/main.go") to their contents.
	Files map[string][]byte

	zipped []byte // the zip, made once by Shaped; nil: made on each call
}

// String returns "path@version".
func (m *Module) String() string { return m.Path + "@" + m.Version }

// ModuleVersion returns the module's path and version as a module.Version.
func (m *Module) ModuleVersion() module.Version {
	return module.Version{Path: m.Path, Version: m.Version}
}

// Info returns the module's .info file: {"Version":...,"Time":...}.
func (m *Module) Info() []byte {
	return infoJSON(m.Version, m.Time)
}

// GoMod returns the module's .mod file: its go.mod file, or "module PATH\n"
// when the module has none (as the go command synthesizes it).
func (m *Module) GoMod() []byte {
	if data, ok := m.Files["go.mod"]; ok {
		return data
	}
	return synthesizedGoMod(m.Path)
}

// Zip returns the module's .zip file, made by golang.org/x/mod/zip.Create
// with the prefix path@version/. It is deterministic. Zip panics if the
// module breaks the module zip rules; [LoadFixtures] and [Synthetic] only
// return modules that do not.
func (m *Module) Zip() []byte {
	data, err := m.zip()
	if err != nil {
		panic(err)
	}
	return data
}

func (m *Module) zip() ([]byte, error) {
	if m.zipped != nil {
		return m.zipped, nil
	}
	names := make([]string, 0, len(m.Files))
	for name := range m.Files {
		names = append(names, name)
	}
	slices.Sort(names)
	files := make([]modzip.File, len(names))
	for i, name := range names {
		files[i] = memFile{name: name, data: m.Files[name]}
	}
	var buf bytes.Buffer
	if err := modzip.Create(&buf, m.ModuleVersion(), files); err != nil {
		return nil, fmt.Errorf("testkit: zip of %s: %w", m, err)
	}
	return buf.Bytes(), nil
}

// ModHash returns the go.sum hash of the module's .mod file ("h1:...").
func (m *Module) ModHash() string {
	h, err := modHash(m.GoMod())
	if err != nil {
		panic(err)
	}
	return h
}

// ZipHash returns the go.sum hash of the module's zip ("h1:...").
func (m *Module) ZipHash() string {
	h, err := zipHash(m.Zip())
	if err != nil {
		panic(fmt.Errorf("testkit: hash of %s: %w", m, err))
	}
	return h
}

// GoSum returns the module's two go.sum lines, each ending in a newline.
func (m *Module) GoSum() string {
	return goSumLines(m.Path, m.Version, m.ZipHash(), m.ModHash())
}

// check reports whether m is a valid module: a valid path and canonical
// version, a go.mod (if any) that declares the path, and files that
// golang.org/x/mod/zip accepts.
func (m *Module) check() error {
	if err := module.Check(m.Path, m.Version); err != nil {
		return fmt.Errorf("testkit: %w", err)
	}
	if module.CanonicalVersion(m.Version) != m.Version {
		return fmt.Errorf("testkit: %s: version is not canonical", m)
	}
	if data, ok := m.Files["go.mod"]; ok {
		if got := modfile.ModulePath(data); got != m.Path {
			return fmt.Errorf("testkit: %s: go.mod declares module %q", m, got)
		}
	}
	if _, err := m.zip(); err != nil {
		return err
	}
	return nil
}

// GoSumFile returns go.sum content for mods: both lines of every module,
// sorted the way the go command writes them (module.Sort order).
func GoSumFile(mods ...*Module) []byte {
	hashes := make(map[module.Version]string)
	var keys []module.Version
	for _, m := range mods {
		zv := module.Version{Path: m.Path, Version: m.Version}
		mv := module.Version{Path: m.Path, Version: m.Version + "/go.mod"}
		hashes[zv], hashes[mv] = m.ZipHash(), m.ModHash()
		keys = append(keys, zv, mv)
	}
	module.Sort(keys)
	keys = slices.Compact(keys)
	var b bytes.Buffer
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %s %s\n", k.Path, k.Version, hashes[k])
	}
	return b.Bytes()
}

// Find returns the module in mods with the given path and version, or nil.
func Find(mods []*Module, path, version string) *Module {
	for _, m := range mods {
		if m.Path == path && m.Version == version {
			return m
		}
	}
	return nil
}

// RepoRoot returns the root directory of this repository: the nearest
// directory at or above the working directory whose go.mod declares
// [ModulePath].
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("testkit: %w", err)
	}
	for dir := wd; ; {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && modfile.ModulePath(data) == ModulePath {
			return dir, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("testkit: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("testkit: no go.mod for module %s at or above %s", ModulePath, wd)
		}
		dir = parent
	}
}

// LoadFixtures loads every fixture module in testdata/modules/*.txtar of the
// repository, sorted by path and then by semantic version. Each file holds
// one module version: a header with "module: PATH", "version: VERSION" and
// "time: RFC3339" lines, then "-- name --" sections with the module's files.
func LoadFixtures() ([]*Module, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	names, err := filepath.Glob(filepath.Join(root, "testdata", "modules", "*.txtar"))
	if err != nil {
		return nil, fmt.Errorf("testkit: %w", err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("testkit: no fixtures in %s", filepath.Join(root, "testdata", "modules"))
	}
	var mods []*Module
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("testkit: %w", err)
		}
		m, err := parseFixture(filepath.Base(name), data)
		if err != nil {
			return nil, fmt.Errorf("testkit: %w", err)
		}
		if err := m.check(); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(name), err)
		}
		if Find(mods, m.Path, m.Version) != nil {
			return nil, fmt.Errorf("testkit: %s: %s defined twice", filepath.Base(name), m)
		}
		mods = append(mods, m)
	}
	sortModules(mods)
	return mods, nil
}

// MustLoadFixtures is [LoadFixtures] for tests: it fails tb on error.
func MustLoadFixtures(tb testing.TB) []*Module {
	tb.Helper()
	mods, err := LoadFixtures()
	if err != nil {
		tb.Fatal(err)
	}
	return mods
}

// Synthetic returns n small, distinct, deterministic modules
// example.com/gen/m000 v1.0.0, example.com/gen/m001 v1.0.1, ... (path
// example.com/gen/m%03d, version v1.0.%d), each a package with a little real
// Go code, for benchmarks.
func Synthetic(n int) []*Module {
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	mods := make([]*Module, n)
	for i := range n {
		name := fmt.Sprintf("m%03d", i)
		modPath := "example.com/gen/" + name
		mods[i] = &Module{
			Path:    modPath,
			Version: fmt.Sprintf("v1.0.%d", i),
			Time:    base.Add(time.Duration(i) * time.Minute),
			Files: map[string][]byte{
				"go.mod": fmt.Appendf(nil, "module %s\n\ngo 1.21\n", modPath),
				name + ".go": fmt.Appendf(nil, `// Package %[1]s is synthetic module number %[2]d.
package %[1]s

// ID is the module's number.
const ID = %[2]d

// Name returns the module's name.
func Name() string { return %[1]q }

// Sum adds ID to every element of xs and returns the total.
func Sum(xs ...int) int {
	t := 0
	for _, x := range xs {
		t += x + ID
	}
	return t
}
`, name, i),
			},
		}
	}
	return mods
}

// sortModules sorts mods by path, then by semantic version.
func sortModules(mods []*Module) {
	slices.SortStableFunc(mods, func(a, b *Module) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return semver.Compare(a.Version, b.Version)
	})
}

// infoJSON returns a .info file.
func infoJSON(version string, t time.Time) []byte {
	data, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, t.UTC()})
	if err != nil {
		panic(err) // cannot happen: a string and a time always marshal
	}
	return data
}

// synthesizedGoMod returns the .mod file the go command expects for a module
// version without a go.mod file.
func synthesizedGoMod(modPath string) []byte {
	return []byte("module " + modfile.AutoQuote(modPath) + "\n")
}

// goSumLines returns the two go.sum lines for a module version.
func goSumLines(modPath, version, zipHash, modHash string) string {
	return fmt.Sprintf("%s %s %s\n%s %s/go.mod %s\n", modPath, version, zipHash, modPath, version, modHash)
}

// modHash returns the h1 hash of a .mod file, as go.sum records it.
func modHash(gomod []byte) (string, error) {
	h, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gomod)), nil
	})
	if err != nil {
		return "", fmt.Errorf("testkit: hashing go.mod: %w", err)
	}
	return h, nil
}

// zipHash returns the h1 hash of a module zip held in memory, as
// dirhash.HashZip computes it for a file.
func zipHash(data []byte) (string, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return "", fmt.Errorf("testkit: %w", err)
	}
	var names []string
	files := make(map[string]*zip.File)
	for _, f := range zr.File {
		names = append(names, f.Name)
		files[f.Name] = f
	}
	return dirhash.Hash1(names, func(name string) (io.ReadCloser, error) {
		return files[name].Open()
	})
}

// memFile is a golang.org/x/mod/zip.File held in memory.
type memFile struct {
	name string
	data []byte
}

func (f memFile) Path() string                 { return f.name }
func (f memFile) Lstat() (fs.FileInfo, error)  { return memFileInfo(f), nil }
func (f memFile) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(f.data)), nil }

// memFileInfo describes a memFile.
type memFileInfo memFile

func (fi memFileInfo) Name() string       { return path.Base(fi.name) }
func (fi memFileInfo) Size() int64        { return int64(len(fi.data)) }
func (fi memFileInfo) Mode() fs.FileMode  { return 0o644 }
func (fi memFileInfo) ModTime() time.Time { return time.Time{} }
func (fi memFileInfo) IsDir() bool        { return false }
func (fi memFileInfo) Sys() any           { return nil }

// NewProject returns a new directory under tb.TempDir() holding a module, example.com/project,
// that requires every module of mods, with the go.sum of them all: what `go mod download` of a
// pinned set runs in.
func NewProject(tb testing.TB, mods []*Module) string {
	tb.Helper()
	dir := tb.TempDir()
	var gomod bytes.Buffer
	gomod.WriteString("module example.com/project\n\ngo 1.21\n\nrequire (\n")
	for _, m := range mods {
		fmt.Fprintf(&gomod, "\t%s %s\n", m.Path, m.Version)
	}
	gomod.WriteString(")\n")
	for name, data := range map[string][]byte{"go.mod": gomod.Bytes(), "go.sum": GoSumFile(mods...)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			tb.Fatalf("testkit: project: %v", err)
		}
	}
	return dir
}

// Weigh returns how many files the modules hold and how many bytes their zips take.
func Weigh(mods []*Module) (files int, zipBytes int64) {
	for _, m := range mods {
		files += len(m.Files)
		zipBytes += int64(len(m.Zip()))
	}
	return files, zipBytes
}
