package testkit

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Shape is the weight of one real module zip: how many files it holds, their total size, and
// the size of the zip. Benchmarks synthesize modules of real shapes so that a pinned set costs
// what a real one does: a module of 600 bytes in one file measures round trips only, while the
// go command spends most of a real download extracting thousands of files.
type Shape struct {
	Files    int
	Bytes    int64  // uncompressed
	ZipBytes int64  // compressed, as the zip holds them
	Of       string // the module@version measured
}

// MustShaped returns modules of the first n shapes of testdata/bench/shapes.txt ([Shaped]), for
// benchmarks: it fails tb if the shapes cannot be read or there are fewer than n.
func MustShaped(tb testing.TB, n int) []*Module {
	tb.Helper()
	shapes, err := LoadShapes()
	if err != nil {
		tb.Fatal(err)
	}
	if len(shapes) < n {
		tb.Fatalf("testkit: %d module shapes, want %d", len(shapes), n)
	}
	return Shaped(shapes[:n])
}

// LoadShapes reads testdata/bench/shapes.txt of the repository: lines "FILES BYTES ZIPBYTES
// MODULE@VERSION", '#' starting a comment.
func LoadShapes() ([]Shape, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	name := filepath.Join(root, "testdata", "bench", "shapes.txt")
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("testkit: %w", err)
	}
	var shapes []Shape
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		s, err := parseShape(f)
		if err != nil {
			return nil, fmt.Errorf("testkit: %s:%d: %w", name, line, err)
		}
		shapes = append(shapes, s)
	}
	return shapes, nil
}

func parseShape(f []string) (Shape, error) {
	if len(f) != 4 {
		return Shape{}, fmt.Errorf("want FILES BYTES ZIPBYTES MODULE@VERSION, have %d fields", len(f))
	}
	files, err1 := strconv.Atoi(f[0])
	size, err2 := strconv.ParseInt(f[1], 10, 64)
	zipSize, err3 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || files < 1 || size < 0 || zipSize < 0 {
		return Shape{}, fmt.Errorf("invalid numbers %q %q %q", f[0], f[1], f[2])
	}
	return Shape{Files: files, Bytes: size, ZipBytes: zipSize, Of: f[3]}, nil
}

// Shaped returns one deterministic module per shape, example.com/shaped/s000 v1.0.0,
// example.com/shaped/s001 v1.0.1, ..., with no requirements. Module i holds shapes[i].Files
// files (its go.mod among them) of shapes[i].Bytes bytes in all: Go-like text that compresses
// about as source code does, and, where the real zip was less compressible than source (test
// data, say), enough random bytes in testdata/ files that its zip is about as large. The zips
// are made once, on every CPU, and kept.
func Shaped(shapes []Shape) []*Module {
	base := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	mods := make([]*Module, len(shapes))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.NumCPU())
	for i, s := range shapes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			m := shapedModule(i, s, base.Add(time.Duration(i)*time.Minute))
			zip, err := m.zip()
			if err != nil {
				panic(err)
			}
			m.zipped = zip
			mods[i] = m
		}()
	}
	wg.Wait()
	return mods
}

// sourceCompression is about how much deflate shrinks Go source.
const sourceCompression = 4

func shapedModule(i int, s Shape, t time.Time) *Module {
	name := fmt.Sprintf("s%03d", i)
	modPath := "example.com/shaped/" + name
	rng := rand.New(rand.NewPCG(uint64(i), 0x5eed))
	gomod := fmt.Appendf(nil, "module %s\n\ngo 1.21\n", modPath)
	files := map[string][]byte{"go.mod": gomod}

	// Share the bytes among the other files evenly, and make the last ones random: as many as
	// it takes for the zip to weigh about what the real one did.
	n := s.Files - 1
	rest := max(0, s.Bytes-int64(len(gomod)))
	random := 0
	if n > 0 && s.ZipBytes > s.Bytes/sourceCompression {
		// A share r of random bytes: r*U + (1-r)*U/c = Z, so r = (Z - U/c) / (U - U/c).
		u := float64(s.Bytes)
		r := (float64(s.ZipBytes) - u/sourceCompression) / (u - u/sourceCompression)
		random = int(min(1, r)*float64(n) + 0.5)
	}
	for j := range n {
		size := rest / int64(n)
		if j < int(rest%int64(n)) {
			size++
		}
		if j >= n-random {
			data := make([]byte, size)
			for k := range data {
				data[k] = byte(rng.Uint32())
			}
			files[fmt.Sprintf("testdata/blob%04d.bin", j)] = data
			continue
		}
		dir := fmt.Sprintf("pkg%02d", j/40)
		files[fmt.Sprintf("%s/file%04d.go", dir, j)] = goLikeSource(rng, dir, size)
	}
	return &Module{Path: modPath, Version: fmt.Sprintf("v1.0.%d", i), Time: t, Files: files}
}

// goLikeSource returns size bytes of text with the look, and about the compressibility, of Go
// source in package pkg.
func goLikeSource(rng *rand.Rand, pkg string, size int64) []byte {
	words := [...]string{"func", "return", "if", "err", "!=", "nil", "for", "range", "ctx", "context.Context",
		"string", "int", "byte", "error", ":=", "=", "{", "}", "(", ")", "x", "y", "key", "value",
		"fmt.Errorf", "len", "append", "make", "map", "struct", "type", "var", "const", "true", "false",
		"s", "b", "n", "i", "req", "resp", "opts", "cfg", "data", "buf", "name", "path", "version"}
	var b bytes.Buffer
	b.Grow(int(size) + 64)
	fmt.Fprintf(&b, "package %s\n\n", pkg)
	for int64(b.Len()) < size {
		switch rng.IntN(16) {
		case 0:
			f := rng.IntN(4096)
			fmt.Fprintf(&b, "\n// F%d does what its name says, with %s.\nfunc F%d(", f, words[rng.IntN(len(words))], f)
		case 1:
			fmt.Fprintf(&b, "\t\"v%03x\"\n", rng.IntN(4096))
		default:
			b.WriteByte('\t')
			for range 3 + rng.IntN(6) {
				b.WriteString(words[rng.IntN(len(words))])
				b.WriteByte(' ')
			}
			b.WriteByte('\n')
		}
	}
	return b.Bytes()[:size]
}
