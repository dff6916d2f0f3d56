package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/modfile"

	"github.com/modmirror/modmirror/shared/goproxy"
	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/store/memstore"
	"github.com/modmirror/modmirror/shared/testkit"
	"github.com/modmirror/modmirror/shared/upstream"
)

func TestMergeVersions(t *testing.T) {
	tests := []struct {
		a, b, want []string
	}{
		{nil, nil, nil},
		{[]string{"v1.0.0"}, nil, []string{"v1.0.0"}},
		{[]string{"v1.10.0", "v1.2.0"}, []string{"v1.2.0", "v1.9.0-rc.1"}, []string{"v1.2.0", "v1.9.0-rc.1", "v1.10.0"}},
		{[]string{"v2.0.0+incompatible"}, []string{"v1.0.0"}, []string{"v1.0.0", "v2.0.0+incompatible"}},
	}
	for _, tt := range tests {
		if got := mergeVersions(tt.a, tt.b); !slices.Equal(got, tt.want) {
			t.Errorf("mergeVersions(%q, %q) = %q; want %q", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestParseVersions(t *testing.T) {
	in := "v1.0.0\nv1.1.0 2024-01-01T00:00:00Z\n\nnot-a-version\nv0.0.0-20240102030405-abcdef123456\nv1.2\nv2.0.0+incompatible\n"
	want := []string{"v1.0.0", "v1.1.0", "v2.0.0+incompatible"}
	if got := parseVersions([]byte(in)); !slices.Equal(got, want) {
		t.Fatalf("parseVersions = %q; want %q (releases only)", got, want)
	}
}

func TestETagListMatches(t *testing.T) {
	tests := []struct {
		list, etag string
		want       bool
	}{
		{`"a"`, `"a"`, true},
		{`"b", "a"`, `"a"`, true},
		{`W/"a"`, `"a"`, true},
		{`*`, `"a"`, true},
		{`"b"`, `"a"`, false},
		{`"a"`, ``, false},
	}
	for _, tt := range tests {
		if got := etagListMatches(tt.list, tt.etag); got != tt.want {
			t.Errorf("etagListMatches(%q, %q) = %v; want %v", tt.list, tt.etag, got, tt.want)
		}
	}
}

func TestExpiringSet(t *testing.T) {
	now := time.Unix(1000, 0)
	s := newExpiringSet(3, func() time.Time { return now })
	s.add("a", time.Minute)
	s.add("b", time.Second)
	if !s.has("a") || !s.has("b") || s.has("c") {
		t.Fatal("fresh keys not remembered, or an unknown key remembered")
	}
	now = now.Add(2 * time.Second)
	if s.has("b") {
		t.Fatal("an expired key is still remembered")
	}
	s.add("c", time.Minute)
	s.add("d", time.Minute)
	s.add("e", time.Minute) // over the bound: the set empties rather than grows
	if len(s.entries) > 3 {
		t.Fatalf("set holds %d keys; bound is 3", len(s.entries))
	}
	if !s.has("e") {
		t.Fatal("the newest key was dropped")
	}
}

func TestMemCache(t *testing.T) {
	c := newMemCache(100)
	obj := func(n int) cachedObject { return cachedObject{data: make([]byte, n)} }
	c.put("a", obj(40))
	c.put("b", obj(40))
	if _, ok := c.get("a"); !ok {
		t.Fatal("a missing")
	}
	c.put("c", obj(40)) // over budget: something else goes
	if c.size > 100 {
		t.Fatalf("cache holds %d bytes; budget 100", c.size)
	}
	if _, ok := c.get("c"); !ok {
		t.Fatal("the newest object was not kept")
	}
	c.put("big", obj(maxCachedObject+1))
	if _, ok := c.get("big"); ok {
		t.Fatal("an object over maxCachedObject was kept")
	}
	var off *memCache = newMemCache(-1)
	off.put("a", obj(1))
	if _, ok := off.get("a"); ok {
		t.Fatal("a disabled cache kept an object")
	}
}

func TestMemoryKey(t *testing.T) {
	for _, tt := range []struct {
		raw, key string
		ok       bool
	}{
		{"/example.com/m/@v/v1.0.0.mod", "example.com/m/@v/v1.0.0.mod", true},
		{"/example.com/%21upper/%21mod/@v/v1.0.0.mod", "example.com/!upper/!mod/@v/v1.0.0.mod", true},
		{"/example.com/!upper/@v/v1.0.0.info", "example.com/!upper/@v/v1.0.0.info", true},
		{"/example.com/m/@v/v1.0.0%2Bincompatible.mod", "example.com/m/@v/v1.0.0%2Bincompatible.mod", true}, // no such key: a miss
		{"example.com/m/@v/v1.0.0.mod", "", false},
		{"", "", false},
	} {
		key, ok := memoryKey(tt.raw)
		if key != tt.key || ok != tt.ok {
			t.Errorf("memoryKey(%q) = %q, %v; want %q, %v", tt.raw, key, ok, tt.key, tt.ok)
		}
	}
}

// readerFromRecorder is a ResponseWriter whose ReadFrom (net/http's, which uses sendfile) says it
// was used.
type readerFromRecorder struct {
	*httptest.ResponseRecorder
	readFrom bool
}

func (r *readerFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	r.readFrom = true
	return io.Copy(r.ResponseRecorder, src)
}

// TestCountingWriterReadFrom checks that copying a file to the response reaches the underlying
// writer's ReadFrom, and that the bytes sent are still counted for the request log.
func TestCountingWriterReadFrom(t *testing.T) {
	for _, tt := range []struct {
		name string
		w    http.ResponseWriter
	}{
		{"with ReadFrom", &readerFromRecorder{ResponseRecorder: httptest.NewRecorder()}},
		{"without", httptest.NewRecorder()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := &countingWriter{ResponseWriter: tt.w, status: http.StatusOK}
			// As http.ServeContent copies: through an io.LimitedReader, which has no WriteTo.
			n, err := io.Copy(w, io.LimitReader(strings.NewReader("zip bytes"), 100))
			if err != nil || n != 9 || w.bytes != 9 || !w.wroteHeader {
				t.Fatalf("copied %d, %v; counted %d, header written %v", n, err, w.bytes, w.wroteHeader)
			}
			if r, ok := tt.w.(*readerFromRecorder); ok && !r.readFrom {
				t.Error("the underlying ReadFrom was not used")
			}
		})
	}
}

// handingObject is a stored object that, like an R2 object on a Worker, hands its content to the
// response without writing it through the writer it is copied to.
type handingObject struct {
	info store.Info
	to   io.Writer
}

func (o *handingObject) Read([]byte) (int, error) { return 0, io.EOF }
func (o *handingObject) Close() error             { return nil }
func (o *handingObject) Info() store.Info         { return o.info }
func (o *handingObject) WriteTo(io.Writer) (int64, error) {
	n, err := io.WriteString(o.to, "zip bytes")
	return int64(n), err
}

// TestServeObjectCountsHandedBytes checks that the request log counts the bytes of an object
// that streamed itself to the response.
func TestServeObjectCountsHandedBytes(t *testing.T) {
	h, err := New(Config{Store: memstore.New()})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req, err := goproxy.Parse("/example.com/m/@v/v1.0.0.zip")
	if err != nil {
		t.Fatal(err)
	}
	x := &exchange{w: &countingWriter{ResponseWriter: rec, status: http.StatusOK}, r: httptest.NewRequest(http.MethodGet, "/example.com/m/@v/v1.0.0.zip", nil), req: req}
	h.serveObject(x, &handingObject{info: store.Info{Key: req.Key, Size: 9}, to: rec}, goproxy.CacheImmutable)
	if rec.Body.String() != "zip bytes" || x.w.bytes != 9 {
		t.Errorf("body %q, counted %d bytes; want 9", rec.Body.String(), x.w.bytes)
	}
}

// slowUpstream answers every request, after a moment, with an error, and records how many
// requests it held at once.
type slowUpstream struct {
	held  testkit.Gauge
	total atomic.Int32
}

func (u *slowUpstream) Get(ctx context.Context, path string) (*upstream.Response, error) {
	defer u.held.Enter()()
	u.total.Add(1)
	time.Sleep(5 * time.Millisecond)
	return nil, errors.New("slow upstream: nothing here")
}

// TestPrefetchBound checks that prefetches run a few at a time, whatever the number of requests
// that start them, and that every one of them runs.
func TestPrefetchBound(t *testing.T) {
	up := &slowUpstream{}
	h, err := New(Config{Store: memstore.New(), Upstream: up, Prefetch: true, MaxFills: 32})
	if err != nil {
		t.Fatal(err)
	}
	const versions = 12
	for i := range versions {
		req, err := goproxy.Parse(fmt.Sprintf("/example.com/m/@v/v1.0.%d.info", i))
		if err != nil {
			t.Fatal(err)
		}
		h.prefetch(&exchange{req: req, r: httptest.NewRequest(http.MethodGet, "/", nil), up: up})
	}
	if err := h.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if total := up.total.Load(); total < 2*versions {
		t.Errorf("%d upstream requests; want one for each prefetched .mod and .zip, %d", total, 2*versions)
	}
	if most, bound := up.held.Most(), cap(h.prefetchSlots); most > bound || bound >= 2*versions {
		t.Errorf("%d prefetches at once; want at most %d", most, bound)
	}
}

// TestAppendMillis checks the request log's milliseconds against what slog writes for the same
// float64: the same text for every count of microseconds.
func TestAppendMillis(t *testing.T) {
	micros := []int64{0, 1, 9, 10, 100, 999, 1000, 1001, 1010, 1100, 1234, 59_999_999, 1 << 40, -1, -1500}
	for i := int64(0); i < 20_000; i += 7 {
		micros = append(micros, i)
	}
	for _, us := range micros {
		want := strconv.FormatFloat(float64(us)/1000, 'f', -1, 64)
		if got := string(appendMillis(nil, us)); got != want {
			t.Errorf("appendMillis(%d) = %q, want %q", us, got, want)
		}
	}
}

func TestPreferredVersion(t *testing.T) {
	retract := func(low, high string) *modfile.Retract {
		return &modfile.Retract{VersionInterval: modfile.VersionInterval{Low: low, High: high}}
	}
	tests := []struct {
		name      string
		versions  []string
		retracted []*modfile.Retract
		want      string
	}{
		{"none", nil, nil, ""},
		{"highest release", []string{"v1.0.0", "v1.1.0", "v1.2.0"}, nil, "v1.2.0"},
		{"release over a higher pre-release", []string{"v1.0.0", "v1.1.0", "v2.0.0-rc.1+incompatible", "v1.2.0-beta.1"}, nil, "v1.1.0"},
		{"pre-release when there is no release", []string{"v0.1.0-alpha", "v0.2.0-beta"}, nil, "v0.2.0-beta"},
		{"retracted release skipped", []string{"v1.0.0", "v1.1.0", "v1.2.0"}, []*modfile.Retract{retract("v1.2.0", "v1.2.0")}, "v1.1.0"},
		{"retracted range skipped", []string{"v1.0.0", "v1.1.0", "v1.2.0"}, []*modfile.Retract{retract("v1.1.0", "v1.3.0")}, "v1.0.0"},
		{"all releases retracted: a pre-release", []string{"v1.0.0-rc.1", "v1.0.0"}, []*modfile.Retract{retract("v1.0.0", "v1.0.0")}, "v1.0.0-rc.1"},
		{"everything retracted", []string{"v1.0.0"}, []*modfile.Retract{retract("v0.0.0", "v9.0.0")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := preferredVersion(tt.versions, tt.retracted); got != tt.want {
				t.Errorf("preferredVersion(%q) = %q; want %q", tt.versions, got, tt.want)
			}
		})
	}
}
