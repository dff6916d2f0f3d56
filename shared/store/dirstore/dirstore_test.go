package dirstore_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/store/dirstore"
	"github.com/modmirror/modmirror/shared/store/storetest"
)

func newStore(t *testing.T, root string) *dirstore.Store {
	t.Helper()
	s, err := dirstore.New(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return newStore(t, t.TempDir()) })
}

func TestNewCreatesRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "a", "b", "mirror")
	s := newStore(t, root)
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		t.Fatalf("New did not create %s: %v", root, err)
	}
	if s.Dir() != root {
		t.Errorf("Dir() = %q, want %q", s.Dir(), root)
	}
}

// snapshot describes every file and directory under dir, skipping skip.
func snapshot(t *testing.T, dir, skip string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		m[p] = fi.Mode().String() + " " + strconv.FormatInt(fi.Size(), 10) + " " + fi.ModTime().String()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestHostileKeys checks that invalid keys, including ones meant to climb out of the root,
// touch nothing inside or beside it.
func TestHostileKeys(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	if err := os.WriteFile(filepath.Join(parent, "b"), []byte("beside"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, root)
	before := snapshot(t, parent, "")

	keys := []string{
		"../b", "../x", "a/../../b", "a/../../x", "/abs", "/" + filepath.ToSlash(parent) + "/x",
		"..", "../root/x", "a\\..\\..\\x", "a/./b", "a//b", "a\x00b", strings.Repeat("a", 2000),
		// Valid for store.CheckKey, but this store's own names.
		".tmp-x", "a/.tmp-x", ".dirstore-lock", "a/.hidden", ".x/y",
	}
	ctx := t.Context()
	for _, key := range keys {
		for _, o := range []store.PutOptions{{}, {IfAbsent: true}, {IfMatch: `"x"`}} {
			if _, err := s.Put(ctx, key, strings.NewReader("evil"), 4, o); !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("Put(%q, %+v): %v, want ErrInvalidKey", key, o, err)
			}
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Stat(%q): %v, want ErrInvalidKey", key, err)
		}
		if obj, err := s.Open(ctx, key); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Open(%q): %v, want ErrInvalidKey", key, err)
			if err == nil {
				obj.Close()
			}
		}
	}
	after := snapshot(t, parent, "")
	if !mapsEqual(before, after) {
		t.Errorf("hostile keys changed the tree:\nbefore %v\nafter  %v", before, after)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			return false
		}
	}
	return true
}

// TestSymlinkOut checks that a symbolic link planted in the root does not lead outside it.
func TestSymlinkOut(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	outside := filepath.Join(parent, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, root)
	if err := os.Symlink("../outside", filepath.Join(root, "rel")); err != nil {
		t.Skipf("cannot make symbolic links: %v", err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "abs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "file")); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, outside, "")

	ctx := t.Context()
	for _, key := range []string{"rel/secret", "abs/secret", "file", "rel/new", "abs/new/deeper"} {
		if _, err := s.Stat(ctx, key); err == nil {
			t.Errorf("Stat(%q) succeeded through a link out of the root", key)
		}
		if obj, err := s.Open(ctx, key); err == nil {
			obj.Close()
			t.Errorf("Open(%q) succeeded through a link out of the root", key)
		}
		if key != "file" { // replacing the link itself would be fine
			if _, err := s.Put(ctx, key, strings.NewReader("x"), 1, store.PutOptions{}); err == nil {
				t.Errorf("Put(%q) succeeded through a link out of the root", key)
			}
		}
	}
	err := s.Walk(ctx, "", func(info store.Info) error {
		t.Errorf("Walk listed %q, reached through a link out of the root", info.Key)
		return nil
	})
	if err != nil {
		t.Errorf("Walk: %v", err)
	}
	if after := snapshot(t, outside, ""); !mapsEqual(before, after) {
		t.Errorf("the directory outside the root changed:\nbefore %v\nafter  %v", before, after)
	}
	if data, _ := os.ReadFile(filepath.Join(outside, "secret")); string(data) != "secret" {
		t.Errorf("the file outside the root now holds %q", data)
	}
}

// tempFiles lists the temporary files under root.
func tempFiles(t *testing.T, root string) []string {
	t.Helper()
	var list []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".tmp-") && !strings.HasSuffix(d.Name(), ".owner") {
			list = append(list, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

type failReader struct{ n int }

func (f *failReader) Read(p []byte) (int, error) {
	if f.n >= 3 {
		return 0, errors.New("fails on purpose")
	}
	f.n++
	return copy(p, bytes.Repeat([]byte("x"), min(len(p), 1000))), nil
}

// TestNoTempFilesLeft checks that no Put, failed or not, leaves a temporary file behind.
func TestNoTempFilesLeft(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	ctx := t.Context()
	const key = "example.com/m/@v/v1.0.0.zip"
	const list = "example.com/m/@v/list"

	s.Put(ctx, key, &failReader{}, -1, store.PutOptions{})
	s.Put(ctx, key, &failReader{}, -1, store.PutOptions{IfAbsent: true})
	s.Put(ctx, key, strings.NewReader("short"), 10, store.PutOptions{})
	s.Put(ctx, key, strings.NewReader("long content"), 4, store.PutOptions{IfAbsent: true})
	info, err := s.Put(ctx, list, strings.NewReader("v1.0.0\n"), -1, store.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Put(ctx, list, strings.NewReader("v1.0.0\nv1.1.0\n"), -1, store.PutOptions{IfMatch: `"stale"`})
	s.Put(ctx, list, &failReader{}, -1, store.PutOptions{IfMatch: info.ETag})
	if _, err := s.Put(ctx, key, strings.NewReader("zip"), 3, store.PutOptions{IfAbsent: true}); err != nil {
		t.Fatal(err)
	}
	s.Put(ctx, key, strings.NewReader("zip"), 3, store.PutOptions{IfAbsent: true})

	// Compare-and-swap losers, which fail after writing their file.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				data, info, err := store.ReadAll(ctx, s, list, 1<<10)
				if err != nil {
					t.Error(err)
					return
				}
				s.Put(ctx, list, bytes.NewReader(append(data, "v\n"...)), -1, store.PutOptions{IfMatch: info.ETag})
			}
		})
	}
	wg.Wait()

	if left := tempFiles(t, root); len(left) > 0 {
		t.Errorf("temporary files left: %q", left)
	}
}

// TestLayout checks that the object under key K is the file root/K and that nothing else is
// stored but the lock file.
func TestLayout(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	ctx := t.Context()
	objects := map[string]string{
		"example.com/!foo/@v/list":                         "v1.0.0\n",
		"example.com/!foo/@v/v1.0.0.info":                  `{"Version":"v1.0.0"}`,
		"example.com/!foo/@v/v2.0.0+incompatible.zip":      "zip",
		"example.com/!foo/@latest":                         `{"Version":"v1.0.0"}`,
		"sumdb/sum.golang.org/lookup/example.com/m@v1.0.0": "record",
		"sumdb/sum.golang.org/tile/8/0/x001/234.p/5":       "tile",
		"top": "top",
	}
	for key, content := range objects {
		if _, err := s.Put(ctx, key, strings.NewReader(content), -1, store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		// A replacement, to create the lock file.
		if _, err := s.Put(ctx, key, strings.NewReader(content), -1, store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	found := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if fi.Mode().Perm()&0o700 != 0o700 {
				t.Errorf("directory %s has mode %v", rel, fi.Mode())
			}
		case rel == ".dirstore-lock", strings.HasSuffix(rel, ".owner"):
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			found[rel] = string(data)
		default:
			t.Errorf("unexpected %v %s", d.Type(), rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !mapsEqual(found, objects) {
		t.Errorf("files under the root:\n%q\nwant\n%q", found, objects)
	}
}

// TestWalkSkipsDotNames checks that Walk lists neither temporary nor other dot-named files,
// nor what is not a regular file.
func TestWalkSkipsDotNames(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	for _, name := range []string{"a/.tmp-123", ".hidden/x", "a/b", "a/.x/y", ".dirstore-lock"} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "a", "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("b", filepath.Join(root, "a", "link")); err == nil {
		if err := os.Symlink(".", filepath.Join(root, "a", "loop")); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	err := s.Walk(t.Context(), "", func(info store.Info) error {
		got = append(got, info.Key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a/b"}
	if _, err := os.Lstat(filepath.Join(root, "a", "link")); err == nil {
		want = append(want, "a/link") // a link to an object in the root is that object
	}
	if !slices.Equal(got, want) {
		t.Errorf("Walk listed %q, want %q", got, want)
	}
}

// TestOpenIsFile checks that the Object Open returns can seek and read at offsets.
func TestOpenIsFile(t *testing.T) {
	s := newStore(t, t.TempDir())
	if _, err := s.Put(t.Context(), "k", strings.NewReader("abc"), 3, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	obj, err := s.Open(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	if _, ok := obj.(io.ReadSeeker); !ok {
		t.Errorf("%T is not an io.ReadSeeker", obj)
	}
	if _, ok := obj.(io.ReaderAt); !ok {
		t.Errorf("%T is not an io.ReaderAt", obj)
	}
	if st, err := s.Stat(t.Context(), "k"); err != nil || st.ContentType != "" || st.CacheControl != "" {
		t.Errorf("Stat = %+v, %v; want no ContentType or CacheControl", st, err)
	}
}

// TestReplaceMovesModTimeForward checks that a replacement gets a later modification time, and
// so another ETag, even when the clock says otherwise.
func TestReplaceMovesModTimeForward(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	ctx := t.Context()
	const key = "example.com/m/@v/list"
	if _, err := s.Put(ctx, key, strings.NewReader("v1\n"), -1, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour).Truncate(time.Second)
	if err := os.Chtimes(filepath.Join(root, filepath.FromSlash(key)), future, future); err != nil {
		t.Fatal(err)
	}
	old, err := s.Stat(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Put(ctx, key, strings.NewReader("v2\n"), -1, store.PutOptions{IfMatch: old.ETag})
	if err != nil {
		t.Fatal(err)
	}
	if !info.ModTime.After(old.ModTime) || info.ETag == old.ETag {
		t.Errorf("replacement has ModTime %v, ETag %s; replaced object had %v, %s", info.ModTime, info.ETag, old.ModTime, old.ETag)
	}
	if st, err := s.Stat(ctx, key); err != nil || st.ETag != info.ETag {
		t.Errorf("Stat = %+v, %v; want ETag %s as Put returned", st, err, info.ETag)
	}
}

// TestTwoStoresOneDir checks compare-and-swap between two Stores on one directory, which share
// nothing but the directory, as two processes would.
func TestTwoStoresOneDir(t *testing.T) {
	root := t.TempDir()
	stores := []*dirstore.Store{newStore(t, root), newStore(t, root)}
	ctx := t.Context()
	const key = "counter"
	if _, err := stores[0].Put(ctx, key, strings.NewReader("0"), 1, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 10 {
		s := stores[g%2]
		wg.Go(func() {
			for range 10 {
				for {
					data, info, err := store.ReadAll(ctx, s, key, 64)
					if err != nil {
						t.Error(err)
						return
					}
					n, _ := strconv.Atoi(string(data))
					next := strconv.Itoa(n + 1)
					_, err = s.Put(ctx, key, strings.NewReader(next), -1, store.PutOptions{IfMatch: info.ETag})
					if err == nil {
						break
					}
					if !errors.Is(err, store.ErrPrecondition) {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if data, _, err := store.ReadAll(ctx, stores[1], key, 64); err != nil || string(data) != "100" {
		t.Errorf("counter = %q, %v; want 100", data, err)
	}
}

func TestClosed(t *testing.T) {
	s := newStore(t, t.TempDir())
	if _, err := s.Put(t.Context(), "k", strings.NewReader("x"), 1, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Stat(t.Context(), "k"); err == nil {
		t.Errorf("Stat after Close succeeded")
	}
	if _, err := s.Put(t.Context(), "k2", strings.NewReader("x"), 1, store.PutOptions{}); err == nil {
		t.Errorf("Put after Close succeeded")
	}
}

// TestStageLeavesOnlyCommitted checks that staging leaves no temporary file behind, whether the
// object was committed, discarded, or refused by a create-only Commit.
func TestStageLeavesOnlyCommitted(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	ctx := t.Context()
	for _, tt := range []struct {
		key    string
		commit bool
	}{
		{"m/@v/v1.0.0.zip", true},
		{"m/@v/v1.0.1.zip", false},
		{"m/@v/v1.0.0.zip", true}, // refused: the key is taken
	} {
		staged, err := s.Stage(ctx, tt.key)
		if err != nil {
			t.Fatal(err)
		}
		staged.Write([]byte("zip"))
		if tt.commit {
			staged.Commit(ctx, store.PutOptions{IfAbsent: true})
		}
		if err := staged.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	var files []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(d.Name(), ".owner") {
			rel, _ := filepath.Rel(root, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if !slices.Equal(files, []string{"m/@v/v1.0.0.zip"}) {
		t.Errorf("files in the store: %q, want only the committed object", files)
	}
}

// TestPutOrCommit checks that store.PutOrCommit commits an object the store staged (read from
// where it stands, after its writes, it would hold nothing) and Puts any other reader.
func TestPutOrCommit(t *testing.T) {
	s := newStore(t, t.TempDir())
	ctx := t.Context()
	staged, err := s.Stage(ctx, "m/@v/v1.0.0.zip")
	if err != nil {
		t.Fatal(err)
	}
	defer staged.Close()
	staged.Write([]byte("staged"))
	if _, err := store.PutOrCommit(ctx, s, "m/@v/v1.0.0.zip", staged, 6, store.PutOptions{IfAbsent: true}); err != nil {
		t.Fatalf("staged: %v", err)
	}
	if _, err := store.PutOrCommit(ctx, s, "m/@v/v1.0.1.zip", strings.NewReader("plain"), 5, store.PutOptions{IfAbsent: true}); err != nil {
		t.Fatalf("plain: %v", err)
	}
	for key, want := range map[string]string{"m/@v/v1.0.0.zip": "staged", "m/@v/v1.0.1.zip": "plain"} {
		if got, _, err := store.ReadAll(ctx, s, key, 100); err != nil || string(got) != want {
			t.Errorf("%s holds %q, %v; want %q", key, got, err, want)
		}
	}
}
