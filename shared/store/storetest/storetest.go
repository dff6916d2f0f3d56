// Package storetest is the conformance suite for store.Store: every implementation (directory,
// memory, and the cloud stores against real servers) runs Run in its tests and passes it.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modmirror/modmirror/shared/store"
)

// Run tests the stores newStore returns against the store.Store contract, and against the
// store.Walker contract if they implement it.
//
// newStore must return an empty store, or one in which nothing exists under the keys the suite
// uses (for a shared bucket: under a fresh prefix). Run calls it once for the subtests that can
// share a store (each uses keys of its own) and once more for each subtest that needs a store
// to itself. Contexts come from t.Context().
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	shared := newStore(t)
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Miss", testMiss},
		{"RoundTrip", testRoundTrip},
		{"UnknownSize", testUnknownSize},
		{"Empty", testEmpty},
		{"Replace", testReplace},
		{"IfAbsent", testIfAbsent},
		{"IfMatch", testIfMatch},
		{"IfAbsentAndIfMatch", testIfAbsentAndIfMatch},
		{"ETagNeverReturns", testETagNeverReturns},
		{"FailingReader", testFailingReader},
		{"SizeMismatch", testSizeMismatch},
		{"CanceledContext", testCanceledContext},
		{"InvalidKeys", testInvalidKeys},
		{"EscapedKeys", testEscapedKeys},
		{"ConcurrentIfAbsent", testConcurrentIfAbsent},
		{"ConcurrentCAS", testConcurrentCAS},
		{"ConcurrentReadReplace", testConcurrentReadReplace},
		{"Seek", testSeek},
		{"Large", testLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, shared) })
	}
	t.Run("Walk", func(t *testing.T) { testWalk(t, newStore(t)) })
	if _, ok := shared.(store.Stager); ok {
		t.Run("Stage", func(t *testing.T) { testStage(t, newStore(t)) })
	}
}

// testStage checks a store.Stager: a staged object reads back what was written, is invisible
// until committed, is put in place by Commit with the options of Put, and is gone when discarded.
func testStage(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := s.(store.Stager)
	const key = "stage.example/m/@v/v1.0.0.zip"
	data := pattern(100 << 10)

	staged, err := st.Stage(ctx, key)
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}
	if _, err := staged.Write(data); err != nil {
		t.Fatalf("Write: %v", err)
	}
	got := make([]byte, 10)
	if _, err := staged.ReadAt(got, 5000); err != nil || !bytes.Equal(got, data[5000:5010]) {
		t.Errorf("ReadAt(10 bytes at 5000) = %q, %v; want %q", got, err, data[5000:5010])
	}
	if _, err := staged.Seek(0, io.SeekStart); err != nil {
		t.Fatalf("Seek: %v", err)
	}
	all, err := io.ReadAll(staged)
	sameContent(t, "staged content read back", all, data)
	if err != nil {
		t.Errorf("read back: %v", err)
	}
	missing(t, s, key) // not in place before Commit
	info, err := staged.Commit(ctx, store.PutOptions{IfAbsent: true})
	if err != nil {
		t.Fatalf("Commit(IfAbsent): %v", err)
	}
	checkPutInfo(t, info, key, len(data))
	if err := staged.Close(); err != nil {
		t.Errorf("Close after Commit: %v", err)
	}
	mustHold(t, s, key, data, info.ETag)

	// A second staging of the key, committed create-only: ErrExist, and the first stays.
	again, err := st.Stage(ctx, key)
	if err != nil {
		t.Fatalf("Stage again: %v", err)
	}
	again.Write([]byte("other"))
	if _, err := again.Commit(ctx, store.PutOptions{IfAbsent: true}); !errors.Is(err, store.ErrExist) {
		t.Errorf("Commit(IfAbsent) on a present key: %v, want ErrExist", err)
	}
	again.Close()
	mustHold(t, s, key, data, info.ETag)

	// Discarded: nothing in place, nothing listed.
	const other = "stage.example/m/@v/v1.0.1.zip"
	discarded, err := st.Stage(ctx, other)
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}
	discarded.Write(data)
	if err := discarded.Close(); err != nil {
		t.Errorf("Close without Commit: %v", err)
	}
	missing(t, s, other)
	if w, ok := s.(store.Walker); ok {
		var keys []string
		w.Walk(ctx, "", func(i store.Info) error { keys = append(keys, i.Key); return nil })
		if len(keys) != 1 || keys[0] != key {
			t.Errorf("after a commit and a discard the store lists %q, want only %q", keys, key)
		}
	}
	if _, err := st.Stage(ctx, "../escape"); err == nil {
		t.Errorf("Stage of an invalid key succeeded")
	}
}

var errBoom = errors.New("storetest: reader failed on purpose")

func testMiss(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, key := range []string{"miss.example/none", "miss.example/deep/er/none"} {
		missing(t, s, key)
	}
	put(t, s, "miss.example/file", []byte("x"), store.PutOptions{})
	// Below an object, and a prefix of keys that is not one itself: both name nothing.
	missing(t, s, "miss.example/file/below")
	put(t, s, "miss.example/dir/file", []byte("y"), store.PutOptions{})
	missing(t, s, "miss.example/dir")
	missing(t, s, "miss.example")
	if _, err := s.Stat(ctx, "miss.example/fil"); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Stat of a prefix of a key: %v, want ErrNotExist", err)
	}
}

func testRoundTrip(t *testing.T, s store.Store) {
	const key = "roundtrip.example/m/@v/v1.0.0.mod"
	data := []byte("module roundtrip.example/m\n\ngo 1.22\n")
	o := store.PutOptions{ContentType: "text/plain; charset=utf-8", CacheControl: "public, max-age=31536000, immutable"}
	info := put(t, s, key, data, o)
	checkPutInfo(t, info, key, len(data))

	st, err := s.Stat(t.Context(), key)
	if err != nil {
		t.Fatalf("Stat after Put: %v", err)
	}
	if st.Key != key || st.Size != int64(len(data)) || st.ETag != info.ETag {
		t.Errorf("Stat = %+v, want Key %q, Size %d, ETag %s (as Put returned)", st, key, len(data), info.ETag)
	}
	if st.ModTime.IsZero() {
		t.Errorf("Stat: ModTime is zero")
	}
	// A store may be unable to keep these (a directory), but must not invent others.
	if st.ContentType != "" && st.ContentType != o.ContentType {
		t.Errorf("Stat: ContentType %q, want %q or empty", st.ContentType, o.ContentType)
	}
	if st.CacheControl != "" && st.CacheControl != o.CacheControl {
		t.Errorf("Stat: CacheControl %q, want %q or empty", st.CacheControl, o.CacheControl)
	}

	got, oi := read(t, s, key)
	sameContent(t, "content", got, data)
	if oi.Key != key || oi.Size != st.Size || oi.ETag != st.ETag || oi.ContentType != st.ContentType || oi.CacheControl != st.CacheControl {
		t.Errorf("Object.Info() = %+v, want what Stat returned: %+v", oi, st)
	}
}

func testUnknownSize(t *testing.T, s store.Store) {
	const key = "unknownsize.example/m/@v/list"
	data := []byte("v1.0.0\nv1.1.0\n")
	info := put(t, s, key, data, store.PutOptions{}, -1)
	checkPutInfo(t, info, key, len(data))
	mustHold(t, s, key, data, info.ETag)
}

func testEmpty(t *testing.T, s store.Store) {
	for _, size := range []int64{0, -1} {
		key := "empty.example/size" + strconv.FormatInt(size, 10)
		info := put(t, s, key, nil, store.PutOptions{}, size)
		checkPutInfo(t, info, key, 0)
		mustHold(t, s, key, []byte{}, info.ETag)
	}
}

func testReplace(t *testing.T, s store.Store) {
	const key = "replace.example/m/@v/list"
	first := put(t, s, key, []byte("v1.0.0\n"), store.PutOptions{})
	second := put(t, s, key, []byte("v1.0.0\nv1.0.1\n"), store.PutOptions{})
	if second.ETag == first.ETag {
		t.Errorf("replacing Put kept ETag %s", first.ETag)
	}
	mustHold(t, s, key, []byte("v1.0.0\nv1.0.1\n"), second.ETag)
}

func testIfAbsent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const key = "ifabsent.example/m/@v/v1.0.0.zip"
	info := put(t, s, key, []byte("first"), store.PutOptions{IfAbsent: true})
	checkPutInfo(t, info, key, len("first"))
	mustHold(t, s, key, []byte("first"), info.ETag)

	r := &countingReader{r: strings.NewReader("second")}
	_, err := s.Put(ctx, key, r, int64(len("second")), store.PutOptions{IfAbsent: true})
	if !errors.Is(err, store.ErrExist) {
		t.Errorf("IfAbsent Put on a present key: %v, want ErrExist", err)
	}
	if errors.Is(err, store.ErrPrecondition) {
		t.Errorf("IfAbsent Put on a present key: %v also matches ErrPrecondition", err)
	}
	mustHold(t, s, key, []byte("first"), info.ETag)
	// Same content, as a filler that lost a race would write: still ErrExist.
	_, err = s.Put(ctx, key, strings.NewReader("first"), int64(len("first")), store.PutOptions{IfAbsent: true})
	if !errors.Is(err, store.ErrExist) {
		t.Errorf("IfAbsent Put of the same content on a present key: %v, want ErrExist", err)
	}
	mustHold(t, s, key, []byte("first"), info.ETag)
}

func testIfMatch(t *testing.T, s store.Store) {
	ctx := t.Context()
	const key = "ifmatch.example/m/@v/list"
	v1 := put(t, s, key, []byte("v1.0.0\n"), store.PutOptions{})

	v2 := put(t, s, key, []byte("v1.0.0\nv1.1.0\n"), store.PutOptions{IfMatch: v1.ETag})
	checkPutInfo(t, v2, key, len("v1.0.0\nv1.1.0\n"))
	if v2.ETag == v1.ETag {
		t.Errorf("IfMatch Put kept ETag %s", v1.ETag)
	}
	mustHold(t, s, key, []byte("v1.0.0\nv1.1.0\n"), v2.ETag)

	for _, etag := range []string{v1.ETag, `"not-an-etag"`, "*", strings.Trim(v2.ETag, `"`)} {
		_, err := s.Put(ctx, key, strings.NewReader("clobbered\n"), int64(len("clobbered\n")), store.PutOptions{IfMatch: etag})
		if !errors.Is(err, store.ErrPrecondition) {
			t.Errorf("IfMatch %s Put on an object with ETag %s: %v, want ErrPrecondition", etag, v2.ETag, err)
		}
	}
	mustHold(t, s, key, []byte("v1.0.0\nv1.1.0\n"), v2.ETag)

	const absent = "ifmatch.example/m/@v/absent"
	_, err := s.Put(ctx, absent, strings.NewReader("x"), 1, store.PutOptions{IfMatch: v2.ETag})
	if !errors.Is(err, store.ErrPrecondition) {
		t.Errorf("IfMatch Put on a missing key: %v, want ErrPrecondition", err)
	}
	missing(t, s, absent)
}

// testIfAbsentAndIfMatch checks that a Put with both preconditions, which can never both hold,
// fails and stores nothing.
func testIfAbsentAndIfMatch(t *testing.T, s store.Store) {
	const key = "both.example/m/@v/list"
	_, err := s.Put(t.Context(), key, strings.NewReader("v1.0.0\n"), -1, store.PutOptions{IfAbsent: true, IfMatch: `"x"`})
	if err == nil {
		t.Error("a Put with IfAbsent and IfMatch succeeded")
	}
	missing(t, s, key)
}

// testETagNeverReturns replaces an object quickly with content of one size and checks that no
// ETag repeats and no stale ETag matches again: a store whose ETags are not content hashes
// must not let a compare-and-swap succeed against content it never saw.
func testETagNeverReturns(t *testing.T, s store.Store) {
	ctx := t.Context()
	const key = "etag.example/state"
	var etags []string
	seen := map[string]int{}
	for i := range 20 {
		info := put(t, s, key, fmt.Appendf(nil, "state %02d", i), store.PutOptions{})
		if j, ok := seen[info.ETag]; ok {
			t.Errorf("Put %d returned ETag %s, as Put %d did", i, info.ETag, j)
		}
		seen[info.ETag] = i
		etags = append(etags, info.ETag)
	}
	for i, etag := range etags[:len(etags)-1] {
		_, err := s.Put(ctx, key, strings.NewReader("stale!!!"), 8, store.PutOptions{IfMatch: etag})
		if !errors.Is(err, store.ErrPrecondition) {
			t.Errorf("IfMatch Put with the ETag of replaced version %d: %v, want ErrPrecondition", i, err)
		}
	}
	mustHold(t, s, key, []byte("state 19"), etags[len(etags)-1])
}

func testFailingReader(t *testing.T, s store.Store) {
	ctx := t.Context()
	data := pattern(200 << 10)
	failing := func() io.Reader { return &failReader{r: bytes.NewReader(data), after: 100 << 10} }

	const fresh = "failing.example/m/@v/v1.0.0.zip"
	for _, o := range []store.PutOptions{{}, {IfAbsent: true}} {
		for _, size := range []int64{int64(len(data)), -1} {
			_, err := s.Put(ctx, fresh, failing(), size, o)
			if !errors.Is(err, errBoom) {
				t.Errorf("Put (%+v, size %d) from a failing reader: %v, want the reader's error", o, size, err)
			}
			missing(t, s, fresh)
		}
	}
	// Nothing was left reserved: the key can still be created.
	info := put(t, s, fresh, data, store.PutOptions{IfAbsent: true})
	mustHold(t, s, fresh, data, info.ETag)

	const present = "failing.example/m/@v/list"
	old := []byte("v1.0.0\n")
	oldInfo := put(t, s, present, old, store.PutOptions{})
	for _, o := range []store.PutOptions{{}, {IfMatch: oldInfo.ETag}} {
		_, err := s.Put(ctx, present, failing(), -1, o)
		if !errors.Is(err, errBoom) {
			t.Errorf("replacing Put (%+v) from a failing reader: %v, want the reader's error", o, err)
		}
		mustHold(t, s, present, old, oldInfo.ETag)
	}
}

func testSizeMismatch(t *testing.T, s store.Store) {
	ctx := t.Context()
	data := pattern(64 << 10)
	const fresh = "mismatch.example/m/@v/v1.0.0.zip"
	const present = "mismatch.example/m/@v/v1.0.0.info"
	old := []byte(`{"Version":"v1.0.0"}`)
	oldInfo := put(t, s, present, old, store.PutOptions{})

	for _, size := range []int64{int64(len(data)) + 1, int64(len(data)) - 1, 0} {
		for _, o := range []store.PutOptions{{}, {IfAbsent: true}} {
			if _, err := s.Put(ctx, fresh, bytes.NewReader(data), size, o); err == nil {
				t.Errorf("Put (%+v) of %d bytes announced as %d succeeded", o, len(data), size)
			}
			missing(t, s, fresh)
		}
		for _, o := range []store.PutOptions{{}, {IfMatch: oldInfo.ETag}} {
			if _, err := s.Put(ctx, present, bytes.NewReader(data), size, o); err == nil {
				t.Errorf("replacing Put (%+v) of %d bytes announced as %d succeeded", o, len(data), size)
			}
			mustHold(t, s, present, old, oldInfo.ETag)
		}
	}
}

func testCanceledContext(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	const key = "canceled.example/m/@v/v1.0.0.zip"
	for _, o := range []store.PutOptions{{}, {IfAbsent: true}} {
		if _, err := s.Put(ctx, key, bytes.NewReader(pattern(1000)), 1000, o); err == nil {
			t.Errorf("Put (%+v) with a canceled context succeeded", o)
		}
		missing(t, s, key)
	}
}

func testInvalidKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	keys := []string{
		"", ".", "..", "../x", "a/../../b", "a/..", "./a", "a/./b", "/abs", "a/", "a//b",
		"a\\b", "..\\x", "a\x00b", "a\nb", "a\x7fb", strings.Repeat("a", 2000),
	}
	for _, key := range keys {
		if _, err := s.Stat(ctx, key); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Stat(%q): %v, want ErrInvalidKey", key, err)
		}
		obj, err := s.Open(ctx, key)
		if !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Open(%q): %v, want ErrInvalidKey", key, err)
		}
		if err == nil {
			obj.Close()
		}
		for _, o := range []store.PutOptions{{}, {IfAbsent: true}, {IfMatch: `"x"`}} {
			r := &countingReader{r: strings.NewReader("hostile")}
			if _, err := s.Put(ctx, key, r, 7, o); !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("Put(%q, %+v): %v, want ErrInvalidKey", key, o, err)
			}
			if r.n > 0 {
				t.Errorf("Put(%q, %+v) read %d bytes before refusing the key", key, o, r.n)
			}
		}
	}
}

func testEscapedKeys(t *testing.T, s store.Store) {
	keys := []string{
		"example.com/!foo/@v/v2.0.0+incompatible.zip",
		"example.com/!foo/@v/v2.0.0+incompatible.info",
		"example.com/!foo/!bar/@latest",
		"example.com/~user/m_x-y/@v/v0.0.0-20240102030405-abcdef012345.mod",
		"sumdb/sum.example/lookup/example.com/m@v1.0.0",
		"sumdb/sum.example/tile/8/0/x001/234.p/5",
		"sumdb/sum.example/tile/8/data/000",
	}
	infos := map[string]store.Info{}
	for _, key := range keys {
		infos[key] = put(t, s, key, []byte("content of "+key), store.PutOptions{})
	}
	for _, key := range keys {
		mustHold(t, s, key, []byte("content of "+key), infos[key].ETag)
	}
	missing(t, s, "example.com/Foo/@v/v2.0.0+incompatible.zip")
	missing(t, s, "example.com/!foo/@v/v2.0.0 incompatible.zip")
}

func testConcurrentIfAbsent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const key = "race.example/m/@v/v1.0.0.zip"
	const writers = 50
	content := func(i int) []byte { return bytes.Repeat(fmt.Appendf(nil, "writer %02d\n", i), 3000) }

	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  [writers]error
		infos [writers]store.Info
		// Every writer is in the middle of its Put (reading its content) before any finishes,
		// so a store that checks for the key only before reading lets them all through.
		g = newGate(writers, 5*time.Second)
	)
	for i := range writers {
		wg.Go(func() {
			data := content(i)
			<-start
			r := &gatedReader{r: bytes.NewReader(data), g: g}
			infos[i], errs[i] = s.Put(ctx, key, r, int64(len(data)), store.PutOptions{IfAbsent: true})
		})
	}
	close(start)
	wg.Wait()
	g.release()

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("writers %d and %d both created the key", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrExist):
			t.Errorf("writer %d: %v, want nil or ErrExist", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no writer created the key")
	}
	mustHold(t, s, key, content(winner), infos[winner].ETag)
}

func testConcurrentCAS(t *testing.T, s store.Store) {
	ctx := t.Context()
	const key = "cas.example/counter"
	const goroutines, increments = 20, 5
	put(t, s, key, []byte("0"), store.PutOptions{})

	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range goroutines {
		wg.Go(func() {
			<-start
			for range increments {
				for attempt := 0; ; attempt++ {
					if attempt == 10000 {
						t.Errorf("goroutine %d: no increment after %d attempts", g, attempt)
						return
					}
					data, info, err := store.ReadAll(ctx, s, key, 64)
					if err != nil {
						t.Errorf("goroutine %d: read counter: %v", g, err)
						return
					}
					n, err := strconv.Atoi(string(data))
					if err != nil {
						t.Errorf("goroutine %d: counter holds %q", g, data)
						return
					}
					// A slow reader widens the window in which another goroutine can replace
					// the object, so a store that checks the ETag only before reading loses
					// increments.
					next := &slowReader{r: strings.NewReader(strconv.Itoa(n + 1))}
					_, err = s.Put(ctx, key, next, int64(next.r.Len()), store.PutOptions{IfMatch: info.ETag})
					if err == nil {
						break
					}
					if !errors.Is(err, store.ErrPrecondition) {
						t.Errorf("goroutine %d: CAS Put: %v, want nil or ErrPrecondition", g, err)
						return
					}
				}
			}
		})
	}
	close(start)
	wg.Wait()

	data, _, err := store.ReadAll(ctx, s, key, 64)
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(goroutines * increments); string(data) != want {
		t.Errorf("counter = %s after %d×%d compare-and-swap increments, want %s", data, goroutines, increments, want)
	}
}

func testConcurrentReadReplace(t *testing.T, s store.Store) {
	ctx := t.Context()
	const key = "readreplace.example/m/@v/list"
	const versions, readers = 16, 4
	// Version v is 128 KiB + v KiB of the byte v+1.
	content := func(v int) []byte { return bytes.Repeat([]byte{byte(v + 1)}, 128<<10+v<<10) }
	put(t, s, key, content(0), store.PutOptions{})

	done := make(chan struct{})
	var wg sync.WaitGroup
	for r := range readers {
		wg.Go(func() {
			for reads := 0; ; reads++ {
				select {
				case <-done:
					if reads > 0 {
						return
					}
				default:
				}
				obj, err := s.Open(ctx, key)
				if err != nil {
					t.Errorf("reader %d: %v", r, err)
					return
				}
				size := obj.Info().Size
				data, err := io.ReadAll(obj)
				obj.Close()
				if err != nil {
					t.Errorf("reader %d: %v", r, err)
					return
				}
				if len(data) == 0 || int64(len(data)) != size {
					t.Errorf("reader %d: read %d bytes of an object of %d", r, len(data), size)
					return
				}
				v := int(data[0]) - 1
				if v < 0 || v >= versions {
					t.Errorf("reader %d: content starts with byte %d, no version's", r, data[0])
					return
				}
				if want := content(v); !bytes.Equal(data, want) {
					t.Errorf("reader %d: read %d bytes starting like version %d, which has %d bytes of %d: a mix", r, len(data), v, len(want), v+1)
					return
				}
			}
		})
	}
	for v := 1; v < versions; v++ {
		data := content(v)
		if _, err := s.Put(ctx, key, bytes.NewReader(data), int64(len(data)), store.PutOptions{}); err != nil {
			t.Errorf("Put version %d: %v", v, err)
		}
	}
	close(done)
	wg.Wait()
}

func testSeek(t *testing.T, s store.Store) {
	const key = "seek.example/m/@v/v1.0.0.zip"
	data := pattern(10000)
	put(t, s, key, data, store.PutOptions{})
	obj, err := s.Open(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()

	rs, ok := obj.(io.ReadSeeker)
	if !ok {
		t.Skipf("%T is not an io.ReadSeeker", obj)
	}
	steps := []struct {
		offset int64
		whence int
		pos    int64 // where the seek lands
	}{
		{100, io.SeekStart, 100},
		{-10, io.SeekEnd, 9990},
		{-5000, io.SeekCurrent, 4998}, // after reading 8 bytes at 9990
		{0, io.SeekStart, 0},
		{0, io.SeekEnd, 10000},
	}
	for _, st := range steps {
		pos, err := rs.Seek(st.offset, st.whence)
		if err != nil || pos != st.pos {
			t.Fatalf("Seek(%d, %d) = %d, %v; want %d", st.offset, st.whence, pos, err, st.pos)
		}
		buf := make([]byte, 8)
		n, err := io.ReadFull(rs, buf)
		want := data[pos:min(pos+8, int64(len(data)))]
		if !bytes.Equal(buf[:n], want) || (len(want) == 8) != (err == nil) {
			t.Errorf("after Seek to %d: read %x, %v; want %x", pos, buf[:n], err, want)
		}
	}
	if ra, ok := obj.(io.ReaderAt); ok {
		buf := make([]byte, 16)
		if n, err := ra.ReadAt(buf, 1234); n != 16 || err != nil || !bytes.Equal(buf, data[1234:1250]) {
			t.Errorf("ReadAt(16 bytes, 1234) = %d, %v, %x; want 16, nil, %x", n, err, buf[:n], data[1234:1250])
		}
		if n, err := ra.ReadAt(buf, 9990); n != 10 || err != io.EOF {
			t.Errorf("ReadAt(16 bytes, 9990) of 10000 = %d, %v; want 10, EOF", n, err)
		}
	}
}

func testLarge(t *testing.T, s store.Store) {
	data := make([]byte, 5<<20)
	rand.NewChaCha8([32]byte{1}).Read(data)
	for _, size := range []int64{int64(len(data)), -1} {
		key := "large.example/m/@v/v1.0.0.zip" + strconv.FormatInt(size, 10)
		info := put(t, s, key, data, store.PutOptions{}, size)
		checkPutInfo(t, info, key, len(data))
		mustHold(t, s, key, data, info.ETag)
	}
}

func testWalk(t *testing.T, s store.Store) {
	w, ok := s.(store.Walker)
	if !ok {
		t.Skipf("%T is not a store.Walker", s)
	}
	ctx := t.Context()
	// Sorted. A walk in directory order would list w/a/k before w/a-x/k: '-' and '.' sort
	// before '/'.
	keys := []string{
		"v/k",
		"w!/k",
		"w/a-x/k",
		"w/a.y/k",
		"w/a/k",
		"w/a/l/m",
		"w/a0",
		"w/b/@v/list",
		"w/b/@v/v1.0.0.zip",
		"w/b/@v/v1.0.0.zip.x",
		"wx/k",
	}
	infos := map[string]store.Info{}
	for _, i := range rand.Perm(len(keys)) {
		infos[keys[i]] = put(t, s, keys[i], []byte(keys[i]), store.PutOptions{})
	}
	// Failed Puts leave nothing to list.
	if _, err := s.Put(ctx, "w/failed", &failReader{r: bytes.NewReader(pattern(100)), after: 50}, 100, store.PutOptions{}); err == nil {
		t.Errorf("Put from a failing reader succeeded")
	}
	if _, err := s.Put(ctx, "w/a/short", bytes.NewReader(pattern(10)), 100, store.PutOptions{}); err == nil {
		t.Errorf("Put of 10 bytes announced as 100 succeeded")
	}

	prefixes := []string{
		"", "w", "w/", "w/a", "w/a/", "w/a-", "w/a/k", "w/a/k/", "w/b/@v/", "w/b/@v/v",
		"w/b/@v/v1.0.0.zip", "nomatch", "nomatch/x/", "w/c/", "w/a/l/m/n", "x",
	}
	for _, prefix := range prefixes {
		var want, got []string
		for _, k := range keys {
			if strings.HasPrefix(k, prefix) {
				want = append(want, k)
			}
		}
		err := w.Walk(ctx, prefix, func(info store.Info) error {
			got = append(got, info.Key)
			if put, ok := infos[info.Key]; ok && (info.Size != put.Size || info.ETag != put.ETag) {
				t.Errorf("Walk(%q) gave %+v, want Size %d and ETag %s as Put returned", prefix, info, put.Size, put.ETag)
			}
			return nil
		})
		if err != nil {
			t.Errorf("Walk(%q): %v", prefix, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Walk(%q) listed\n\t%q\nwant\n\t%q", prefix, got, want)
		}
	}

	errStop := errors.New("stop")
	calls := 0
	err := w.Walk(ctx, "", func(store.Info) error {
		calls++
		if calls == 3 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) || calls != 3 {
		t.Errorf("Walk with fn failing on call 3: %d calls, %v; want 3 calls, fn's error", calls, err)
	}
}

// put stores data under key, with the given size or, if size is omitted, len(data).
func put(t *testing.T, s store.Store, key string, data []byte, o store.PutOptions, size ...int64) store.Info {
	t.Helper()
	n := int64(len(data))
	if len(size) > 0 {
		n = size[0]
	}
	info, err := s.Put(t.Context(), key, bytes.NewReader(data), n, o)
	if err != nil {
		t.Fatalf("Put(%q, %d bytes, %+v): %v", key, len(data), o, err)
	}
	return info
}

// checkPutInfo checks the Info Put returned.
func checkPutInfo(t *testing.T, info store.Info, key string, size int) {
	t.Helper()
	if info.Key != key || info.Size != int64(size) {
		t.Errorf("Put returned Key %q, Size %d; want %q, %d", info.Key, info.Size, key, size)
	}
	if len(info.ETag) < 3 || info.ETag[0] != '"' || info.ETag[len(info.ETag)-1] != '"' || strings.Count(info.ETag, `"`) != 2 {
		t.Errorf("Put returned ETag %q, want a non-empty quoted string", info.ETag)
	}
}

// read returns the content of the object under key, and its Object's Info.
func read(t *testing.T, s store.Store, key string) ([]byte, store.Info) {
	t.Helper()
	obj, err := s.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer obj.Close()
	data, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return data, obj.Info()
}

// mustHold checks that key holds data with the given ETag, through both Stat and Open.
func mustHold(t *testing.T, s store.Store, key string, data []byte, etag string) {
	t.Helper()
	st, err := s.Stat(t.Context(), key)
	if err != nil {
		t.Fatalf("Stat(%q): %v", key, err)
	}
	if st.Size != int64(len(data)) || st.ETag != etag {
		t.Errorf("Stat(%q): Size %d, ETag %s; want %d, %s", key, st.Size, st.ETag, len(data), etag)
	}
	got, oi := read(t, s, key)
	sameContent(t, key, got, data)
	if oi.Size != int64(len(data)) || oi.ETag != etag {
		t.Errorf("Open(%q).Info(): Size %d, ETag %s; want %d, %s", key, oi.Size, oi.ETag, len(data), etag)
	}
}

// missing checks that Stat and Open of key report ErrNotExist.
func missing(t *testing.T, s store.Store, key string) {
	t.Helper()
	if info, err := s.Stat(t.Context(), key); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Stat(%q) = %+v, %v; want ErrNotExist", key, info, err)
	}
	obj, err := s.Open(t.Context(), key)
	if err == nil {
		obj.Close()
	}
	if !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Open(%q): %v, want ErrNotExist", key, err)
	}
}

func sameContent(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	if len(got) < 200 && len(want) < 200 {
		t.Errorf("%s: content %q, want %q", what, got, want)
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	t.Errorf("%s: %d bytes, want %d; they differ from byte %d", what, len(got), len(want), i)
}

// pattern returns n bytes that differ from their neighbours.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// failReader yields what r has up to after bytes, then fails with errBoom.
type failReader struct {
	r     io.Reader
	after int
	n     int
}

func (f *failReader) Read(p []byte) (int, error) {
	if f.n >= f.after {
		return 0, errBoom
	}
	if len(p) > f.after-f.n {
		p = p[:f.after-f.n]
	}
	n, err := f.r.Read(p)
	f.n += n
	return n, err
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// gate holds whoever arrives until n have arrived, or until a timeout (for stores that
// serialize Puts and so never have n in progress).
type gate struct {
	n       int
	mu      sync.Mutex
	arrived int
	open    chan struct{}
	once    sync.Once
	timer   *time.Timer
}

func newGate(n int, timeout time.Duration) *gate {
	g := &gate{n: n, open: make(chan struct{})}
	g.timer = time.AfterFunc(timeout, g.release)
	return g
}

func (g *gate) release() {
	g.once.Do(func() {
		g.timer.Stop()
		close(g.open)
	})
}

func (g *gate) arrive() {
	g.mu.Lock()
	g.arrived++
	if g.arrived == g.n {
		g.release()
	}
	g.mu.Unlock()
	<-g.open
}

// gatedReader waits at its gate on its first Read.
type gatedReader struct {
	r      io.Reader
	g      *gate
	passed bool
}

func (r *gatedReader) Read(p []byte) (int, error) {
	if !r.passed {
		r.g.arrive()
		r.passed = true
	}
	return r.r.Read(p)
}

// slowReader sleeps a millisecond on its first Read.
type slowReader struct {
	r     *strings.Reader
	slept bool
}

func (r *slowReader) Read(p []byte) (int, error) {
	if !r.slept {
		time.Sleep(time.Millisecond)
		r.slept = true
	}
	return r.r.Read(p)
}
