package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/config"
	"github.com/modmirror/modmirror/shared/proxy"
	"github.com/modmirror/modmirror/shared/spool"
	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/store/dirstore"
	"github.com/modmirror/modmirror/shared/testkit"
	"github.com/modmirror/modmirror/shared/upstream"
)

// env is a proxy in front of the fake upstream, served on 127.0.0.1.
type env struct {
	up    *testkit.Upstream
	mods  []*testkit.Module
	store store.Store
	dir   string
	srv   *httptest.Server
	h     *proxy.Handler
	logs  *testkit.Buffer
}

type envOptions struct {
	offline  bool
	fresh    time.Duration
	dir      string // reuse a store directory
	up       *testkit.Upstream
	prefetch bool
	// redirect is Config.Redirect.
	redirect func(ctx context.Context, info store.Info) (string, error)
	// staged spools no zip in memory: each is staged in the directory store.
	staged bool
	// wrap, if set, wraps the store the proxy is given (the checksum database keeps the bare one).
	wrap func(store.Store) store.Store
	// memoryCache is Config.MemoryCache.
	memoryCache int64
	// sumdbOff runs without a checksum database (-sumdb off).
	sumdbOff bool
	// now is Config.Now; retryFailedAfter is Config.RetryFailedAfter (default: off, so that a
	// test that restores the upstream can try again at once).
	now              func() time.Time
	retryFailedAfter time.Duration
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e := &env{logs: &testkit.Buffer{}, mods: testkit.MustLoadFixtures(t)}
	e.up = o.up
	if e.up == nil {
		e.up = testkit.NewUpstream(t, testkit.Options{Modules: e.mods})
	}
	e.dir = o.dir
	if e.dir == "" {
		e.dir = t.TempDir()
	}
	st, err := dirstore.New(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	e.store = st
	logger := slog.New(slog.NewJSONHandler(e.logs, nil))
	memory := int64(1 << 20)
	if o.staged {
		memory = 0
	}
	cfg := proxy.Config{Store: st, Logger: logger, FreshFor: o.fresh, Spool: spool.Options{Dir: t.TempDir(), MemoryMax: memory},
		Redirect: o.redirect, Prefetch: o.prefetch, MemoryCache: o.memoryCache, Now: o.now, RetryFailedAfter: o.retryFailedAfter}
	if cfg.RetryFailedAfter == 0 {
		cfg.RetryFailedAfter = -1
	}
	if o.wrap != nil {
		cfg.Store = o.wrap(st)
	}
	db := &config.SumDB{Name: e.up.SumDBName, Key: e.up.SumDBKey, URL: "https://" + e.up.SumDBName}
	dbc := checksum.DBConfig{Name: db.Name, Key: db.Key, Store: st, Logger: logger}
	if !o.offline {
		up, err := upstream.New(e.up.URL, upstream.Options{Attempts: 2, BaseBackoff: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Upstream = up
		dbc.Remote = config.SumDBRemote(up, db, upstream.Options{})
	}
	if !o.sumdbOff {
		if cfg.Checksums, err = checksum.NewDB(dbc); err != nil {
			t.Fatal(err)
		}
	}
	h, err := proxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.h = h
	e.srv = httptest.NewServer(h)
	t.Cleanup(func() {
		e.srv.Close()
		// Background work (lookups ahead, prefetches) ends before the store's directory goes.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Wait(ctx); err != nil {
			t.Errorf("background work still running: %v", err)
		}
	})
	return e
}

// goEnv is the go command pointed at the proxy, verifying through the proxy's /sumdb/.
func (e *env) goEnv(t *testing.T) *testkit.GoEnv {
	g := testkit.NewGoEnv(t, e.srv.URL, e.up)
	g.Set("GOSUMDB", e.up.SumDBKey)
	return g
}

func (e *env) get(t *testing.T, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp, body
}

func (e *env) keys(t *testing.T) []string {
	t.Helper()
	var keys []string
	err := e.store.(store.Walker).Walk(t.Context(), "", func(i store.Info) error {
		keys = append(keys, i.Key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func (e *env) has(t *testing.T, key string) bool {
	_, err := e.store.Stat(t.Context(), key)
	return err == nil
}

func TestGoCommandThroughProxy(t *testing.T) {
	e := newEnv(t, envOptions{})
	g := e.goEnv(t)
	project := testkit.CopyProject(t)
	g.MustRun(project, "mod", "download")
	g.MustRun(project, "build", "-o", t.TempDir()+"/project", ".")
	g.MustRun(t.TempDir(), "install", "example.com/tool/cmd/hello@v1.0.0")
	if out, err := exec.Command(g.Bin("hello")).CombinedOutput(); err != nil {
		t.Fatalf("hello: %v\n%s", err, out)
	}

	for _, key := range []string{
		"example.com/!upper/!mod/@v/v1.0.0.zip",
		"example.com/!upper/!mod/@v/v1.0.0.mod",
		"example.com/incompat/@v/v2.0.0+incompatible.zip",
		"example.com/incompat/@v/v2.0.0+incompatible.mod",
		"example.com/major/v2/@v/v2.1.0.zip",
		"example.com/pseudo/@v/v0.0.0-20240102030405-abcdef123456.zip",
		"example.com/nogomod/@v/v1.0.0.mod",
		"example.com/tool/@v/v1.0.0.zip",
		"example.com/!upper/!mod/@v/list",
		"sumdb/" + e.up.SumDBName + "/lookup/example.com/tool@v1.0.0",
	} {
		if !e.has(t, key) {
			t.Errorf("store lacks %s after the go command's downloads; it has %q", key, e.keys(t))
		}
	}
	if e.has(t, "example.com/pseudo/@v/list") {
		data, _, _ := store.ReadAll(t.Context(), e.store, "example.com/pseudo/@v/list", 1<<20)
		if len(bytes.TrimSpace(data)) > 0 {
			t.Errorf("list of a pseudo-version-only module holds %q; pseudo-versions are never listed", data)
		}
	}
	// The synthesized .mod of a module without go.mod is what the upstream served.
	data, _, err := store.ReadAll(t.Context(), e.store, "example.com/nogomod/@v/v1.0.0.mod", 1<<20)
	if err != nil || string(data) != "module example.com/nogomod\n" {
		t.Errorf("nogomod .mod = %q, %v; want the synthesized go.mod", data, err)
	}
	if !strings.Contains(e.logs.String(), `"cache":"miss"`) {
		t.Errorf("no request logged as a miss:\n%s", e.logs.String())
	}

	// A second client with a fresh module cache is served from the store alone: stop the
	// upstream and download everything again.
	e.up.Stop()
	g2 := e.goEnv(t)
	g2.MustRun(testkit.CopyProject(t), "mod", "download")
}

func TestTamperedUpstreamRefused(t *testing.T) {
	flip := func(b []byte) []byte {
		c := bytes.Clone(b)
		c[len(c)/2] ^= 0xff
		return c
	}
	tests := []tamperCase{
		{"zip", "/example.com/lib/@v/v1.0.0.zip", flip},
		{"mod", "/example.com/lib/@v/v1.1.0.mod", func(b []byte) []byte { return append(bytes.Clone(b), "// evil\n"...) }},
		{"zip not a zip", "/example.com/lib/@v/v1.2.0.zip", func([]byte) []byte { return []byte("not a zip") }},
	}
	for _, staged := range []bool{false, true} {
		t.Run(fmt.Sprintf("staged=%v", staged), func(t *testing.T) { testTamperedUpstreamRefused(t, staged, tests) })
	}
}

// tamperCase is an object the upstream serves tampered.
type tamperCase struct {
	name, path string
	tamper     func([]byte) []byte
}

// testTamperedUpstreamRefused requests each tampered object from a proxy whose zips are spooled
// in memory, or staged in its directory store.
func testTamperedUpstreamRefused(t *testing.T, staged bool, tests []tamperCase) {
	e := newEnv(t, envOptions{staged: staged})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.up.Tamper(tt.path, tt.tamper)
			resp, body := e.get(t, tt.path)
			if resp.StatusCode != http.StatusBadGateway {
				t.Fatalf("GET %s = %d %q; want 502", tt.path, resp.StatusCode, body)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q; want no-store", cc)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") || len(body) == 0 {
				t.Errorf("Content-Type %q body %q; want a text/plain reason", ct, body)
			}
			if e.has(t, strings.TrimPrefix(tt.path, "/")) {
				t.Fatalf("%s was stored although it failed verification", tt.path)
			}
		})
	}
	if !strings.Contains(e.logs.String(), `"event":"security"`) {
		t.Errorf("no security event logged:\n%s", e.logs.String())
	}
	// Once the upstream serves the truth again, the same request fills.
	e.up.Tamper("/example.com/lib/@v/v1.0.0.zip", nil)
	if resp, body := e.get(t, "/example.com/lib/@v/v1.0.0.zip"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the tamper ended: %d %q", resp.StatusCode, body)
	}
	// Nothing of the refused zips is left, not even a staged file, once the background work of
	// the fills (whose Puts in flight have temporary files in the root too) is done.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := e.h.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range entries {
		if strings.HasPrefix(d.Name(), ".") && d.Name() != ".dirstore-lock" && !strings.HasSuffix(d.Name(), ".owner") {
			t.Errorf("a temporary file is left: %s", d.Name())
		}
	}
}

func TestUpstreamDown(t *testing.T) {
	e := newEnv(t, envOptions{fresh: time.Millisecond})
	paths := []string{
		"/example.com/lib/@v/v1.1.0.info",
		"/example.com/lib/@v/v1.1.0.mod",
		"/example.com/lib/@v/v1.1.0.zip",
		"/example.com/lib/@v/list",
		"/example.com/lib/@latest",
		"/example.com/lib/@v/main.info",
	}
	want := map[string][]byte{}
	for _, p := range paths {
		resp, body := e.get(t, p)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d %q", p, resp.StatusCode, body)
		}
		want[p] = body
	}
	e.up.Stop()
	time.Sleep(5 * time.Millisecond) // let list and @latest go stale
	for _, p := range paths {
		resp, body := e.get(t, p)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want[p]) {
			t.Errorf("upstream down: GET %s = %d %q; want 200 %q", p, resp.StatusCode, body, want[p])
		}
	}
	if !strings.Contains(e.logs.String(), `"cache":"stale"`) {
		t.Errorf("no stale answer logged:\n%s", e.logs.String())
	}
	// What was never stored answers 502 with no-store: the upstream is in trouble, not the module.
	resp, body := e.get(t, "/example.com/lib/@v/v1.2.0.zip")
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("uncached zip with upstream down = %d %q %q; want 502 no-store", resp.StatusCode, resp.Header.Get("Cache-Control"), body)
	}
}

func TestOneFillForConcurrentRequests(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.up.Delay(200 * time.Millisecond)
	const path = "/example.com/major/v2/@v/v2.1.0.zip"
	const n = 100
	var wg sync.WaitGroup
	bodies := make([][]byte, n)
	statuses := make([]int, n)
	for i := range n {
		wg.Go(func() {
			resp, err := http.Get(e.srv.URL + path)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			statuses[i] = resp.StatusCode
			bodies[i], _ = io.ReadAll(resp.Body)
		})
	}
	wg.Wait()
	for i := range n {
		if statuses[i] != http.StatusOK || !bytes.Equal(bodies[i], bodies[0]) {
			t.Fatalf("request %d: status %d, %d bytes; want 200 and the same %d bytes as the first", i, statuses[i], len(bodies[i]), len(bodies[0]))
		}
	}
	if got := e.up.Count(path); got != 1 {
		t.Fatalf("%d concurrent requests made %d upstream fetches; want exactly 1", n, got)
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, envOptions{})
	tests := []struct {
		method, path string
		status       int
	}{
		{"GET", "/../../etc/passwd", 404},
		{"GET", "/example.com/lib/@v/../../../../etc/passwd", 404},
		{"GET", "/%2e%2e/%2e%2e/etc/passwd", 404},
		{"GET", "/example.com/lib/@v/%2e%2e%2f%2e%2e%2fx.zip", 404},
		{"GET", "/example.com%2flib/@v/list", 404},
		{"GET", "/example.com/lib/@v/v1.0.0%00.zip", 404},
		{"GET", "/example.com/Lib/@v/list", 404},
		{"GET", "/example.com/lib/@v/v1.0.zip", 404},
		{"GET", "/example.com/lib/@v/1.0.0.mod", 404},
		{"GET", "/example.com/lib/@v/v1.0.0+build.zip", 404},
		{"GET", "/example.com/lib/@v/vX.info%20", 404},
		{"GET", "/example.com/lib/@v/v2.0.0.zip", 404},
		{"GET", "/" + strings.Repeat("a", 10000), 414},
		{"GET", "/example.com/" + strings.Repeat("a/", 5000) + "@v/list", 414},
		{"POST", "/example.com/lib/@v/list", 405},
		{"PUT", "/example.com/lib/@v/v1.0.0.zip", 405},
		{"DELETE", "/example.com/lib/@v/v1.0.0.zip", 405},
		{"GET", "/sumdb/other.example/supported", 404},
		{"GET", "/sumdb/" + testkit.DefaultSumDBName + "/../../../etc/passwd", 404},
		{"GET", "/sumdb/" + testkit.DefaultSumDBName + "/lookup/NotEscaped@v1.0.0", 404},
		{"GET", "/sumdb/" + testkit.DefaultSumDBName + "/tile/x", 404},
		{"GET", "/example.com/nonexistent/@v/v1.0.0.zip", 404},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path[:min(len(tt.path), 50)], func(t *testing.T) {
			status, header, body := rawRequest(t, e.srv.Listener.Addr().String(), tt.method, tt.path)
			if status != tt.status {
				t.Fatalf("%s %s = %d %q; want %d", tt.method, tt.path, status, body, tt.status)
			}
			if !strings.HasPrefix(header.Get("Content-Type"), "text/plain") || len(strings.TrimSpace(body)) == 0 {
				t.Fatalf("%s %s: Content-Type %q body %q; want a text/plain reason", tt.method, tt.path, header.Get("Content-Type"), body)
			}
			if tt.status == 405 && header.Get("Allow") != "GET, HEAD" {
				t.Errorf("405 without Allow: GET, HEAD (got %q)", header.Get("Allow"))
			}
		})
	}
	if keys := e.keys(t); len(keys) > 0 {
		t.Errorf("bad requests wrote to the store: %q", keys)
	}
	if resp, body := e.get(t, "/example.com/lib/@v/v1.0.0.mod"); resp.StatusCode != 200 {
		t.Fatalf("after the bad requests a good one got %d %q", resp.StatusCode, body)
	}
}

// rawRequest sends a request line exactly as given, without the client cleaning the path.
func rawRequest(t *testing.T, addr, method, path string) (int, http.Header, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", method, path, addr)
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

func TestHTTPSemantics(t *testing.T) {
	e := newEnv(t, envOptions{})
	const zip = "/example.com/lib/@v/v1.1.0.zip"
	resp, full := e.get(t, zip)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d", zip, resp.StatusCode)
	}
	resp, again := e.get(t, zip)
	etag := resp.Header.Get("ETag")
	checks := []struct{ name, got, want string }{
		{"Cache-Control", resp.Header.Get("Cache-Control"), "public, max-age=31536000, immutable"},
		{"Content-Type", resp.Header.Get("Content-Type"), "application/zip"},
		{"body", string(again), string(full)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q; want %q", c.name, c.got, c.want)
		}
	}
	if etag == "" || resp.Header.Get("Last-Modified") == "" {
		t.Errorf("stored object served without ETag (%q) or Last-Modified (%q)", etag, resp.Header.Get("Last-Modified"))
	}
	if resp, _ := e.get(t, zip, "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with the ETag = %d; want 304", resp.StatusCode)
	}
	resp, part := e.get(t, zip, "Range", "bytes=10-19")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, full[10:20]) {
		t.Errorf("Range bytes=10-19 = %d %q; want 206 and bytes 10..19", resp.StatusCode, part)
	}
	head, err := http.Head(e.srv.URL + zip)
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	if head.StatusCode != 200 || head.ContentLength != int64(len(full)) {
		t.Errorf("HEAD = %d length %d; want 200 and %d", head.StatusCode, head.ContentLength, len(full))
	}

	for _, ext := range []string{".info", ".mod"} { // the version is listed once it is whole
		if resp, _ := e.get(t, strings.TrimSuffix(zip, ".zip")+ext); resp.StatusCode != 200 {
			t.Fatalf("GET %s = %d", ext, resp.StatusCode)
		}
	}
	resp, list := e.get(t, "/example.com/lib/@v/list")
	if resp.StatusCode != 200 || string(list) != "v1.0.0\nv1.1.0\nv1.2.0\n" || resp.Header.Get("Cache-Control") != "public, max-age=60, stale-while-revalidate=60, stale-if-error=86400" {
		t.Errorf("list = %d %q %q", resp.StatusCode, list, resp.Header.Get("Cache-Control"))
	}
	// The stored list holds only what the store holds, so the store stays a valid static GOPROXY.
	stored, _, err := store.ReadAll(t.Context(), e.store, "example.com/lib/@v/list", 1<<20)
	if err != nil || string(stored) != "v1.1.0\n" {
		t.Errorf("stored list = %q, %v; want only the stored version v1.1.0", stored, err)
	}
	resp, latest := e.get(t, "/example.com/lib/@latest")
	if resp.StatusCode != 200 || !strings.Contains(string(latest), `"v1.2.0"`) {
		t.Errorf("@latest = %d %q; want v1.2.0", resp.StatusCode, latest)
	}
	resp, query := e.get(t, "/example.com/lib/@v/main.info")
	if resp.StatusCode != 200 || !strings.Contains(string(query), `"v1.2.0"`) || resp.Header.Get("Cache-Control") != "public, max-age=60, stale-while-revalidate=60, stale-if-error=86400" {
		t.Errorf("main.info = %d %q %q; want v1.2.0 with a short TTL", resp.StatusCode, query, resp.Header.Get("Cache-Control"))
	}
	if e.has(t, "example.com/lib/@v/main.info") {
		t.Error("a branch query was stored as if it were immutable")
	}
	resp, _ = e.get(t, "/sumdb/"+e.up.SumDBName+"/supported")
	if resp.StatusCode != 200 {
		t.Errorf("sumdb supported = %d", resp.StatusCode)
	}
}

func TestNegativeCache(t *testing.T) {
	e := newEnv(t, envOptions{})
	const path = "/example.com/lib/@v/v1.9.9.info"
	for i := range 3 {
		resp, body := e.get(t, path)
		if resp.StatusCode != 404 || resp.Header.Get("Cache-Control") != "public, max-age=60" {
			t.Fatalf("request %d: %d %q %q; want 404 with max-age=60", i, resp.StatusCode, resp.Header.Get("Cache-Control"), body)
		}
	}
	if n := e.up.Count(path); n != 1 {
		t.Fatalf("3 requests for a missing version reached the upstream %d times; want 1", n)
	}
}

func TestOfflineServesStoreOnly(t *testing.T) {
	online := newEnv(t, envOptions{})
	g := online.goEnv(t)
	g.MustRun(testkit.CopyProject(t), "mod", "download")
	g.MustRun(t.TempDir(), "install", "example.com/tool/cmd/hello@v1.0.0")
	online.up.Stop()

	offline := newEnv(t, envOptions{offline: true, dir: online.dir, up: online.up})
	g2 := offline.goEnv(t)
	g2.MustRun(testkit.CopyProject(t), "build", "-o", t.TempDir()+"/p", ".")
	// No go.sum at all: verification comes from the checksum database records the store kept.
	g2.MustRun(t.TempDir(), "install", "example.com/tool/cmd/hello@v1.0.0")
	resp, body := offline.get(t, "/example.com/lib/@v/v1.2.0.zip")
	if resp.StatusCode != 404 || !strings.Contains(string(body), "offline") {
		t.Errorf("offline miss = %d %q; want 404 naming offline", resp.StatusCode, body)
	}
}

// statCounter is a store that counts its Stat calls.
type statCounter struct {
	store.Store
	stats atomic.Int32
}

func (s *statCounter) Stat(ctx context.Context, key string) (store.Info, error) {
	s.stats.Add(1)
	return s.Store.Stat(ctx, key)
}

// TestRedirectAsksOnce checks that deciding whether to redirect a stored .info or .mod costs no
// store round trip of its own: the Info comes with the Open (or the memory cache), where a zip,
// which may be large, is asked about by a Stat before it is opened.
func TestRedirectAsksOnce(t *testing.T) {
	for _, memoryCache := range []int64{0, -1} { // the default memory cache, and none
		counter := &statCounter{}
		e := newEnv(t, envOptions{
			memoryCache: memoryCache,
			wrap:        func(st store.Store) store.Store { counter.Store = st; return counter },
			redirect: func(ctx context.Context, info store.Info) (string, error) {
				if strings.HasSuffix(info.Key, ".zip") {
					return "https://cdn.example/" + info.Key, nil
				}
				return "", nil
			},
		})
		const base = "/example.com/lib/@v/v1.1.0"
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		status := func(ext string) int {
			t.Helper()
			resp, err := noFollow.Get(e.srv.URL + base + ext)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if body, _ := io.ReadAll(resp.Body); resp.StatusCode == 200 && len(body) == 0 {
				t.Errorf("GET %s%s: 200 with no content", base, ext)
			}
			return resp.StatusCode
		}
		for _, ext := range []string{".info", ".mod", ".zip"} {
			status(ext) // filled
		}
		if err := e.h.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
		before := counter.stats.Load()
		for _, ext := range []string{".info", ".mod"} {
			if got := status(ext); got != 200 {
				t.Fatalf("memory cache %d: stored %s = %d, want 200", memoryCache, ext, got)
			}
		}
		if n := counter.stats.Load() - before; n != 0 {
			t.Errorf("memory cache %d: serving a stored .info and .mod made %d Stat calls, want 0", memoryCache, n)
		}
		if got := status(".zip"); got != http.StatusFound {
			t.Errorf("memory cache %d: stored zip = %d, want 302", memoryCache, got)
		}
	}
}

func TestRedirect(t *testing.T) {
	var (
		mu    sync.Mutex
		asked []string
	)
	e := newEnv(t, envOptions{redirect: func(ctx context.Context, info store.Info) (string, error) {
		mu.Lock()
		asked = append(asked, info.Key)
		mu.Unlock()
		switch {
		case info.Size <= 0:
			return "", fmt.Errorf("%s: Redirect given Info without a size: %+v", info.Key, info)
		case strings.HasSuffix(info.Key, ".info"):
			return "", nil // small: served inline
		case strings.HasSuffix(info.Key, ".mod"):
			return "", errors.New("no URL for this one")
		}
		return "https://cdn.example/" + info.Key, nil
	}})
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (*http.Response, []byte) {
		resp, err := noFollow.Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}

	const zip = "/example.com/incompat/@v/v2.0.0+incompatible.zip"
	for _, state := range []string{"miss", "hit"} {
		resp, body := get(zip)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://cdn.example"+zip ||
			resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: GET %s = %d Location %q Cache-Control %q %q; want 302 to the CDN, no-store", state, zip,
				resp.StatusCode, resp.Header.Get("Location"), resp.Header.Get("Cache-Control"), body)
		}
	}
	if !e.has(t, strings.TrimPrefix(zip, "/")) {
		t.Errorf("the redirected miss was not stored")
	}
	for _, path := range []string{"/example.com/incompat/@v/v2.0.0+incompatible.info", "/example.com/incompat/@v/v2.0.0+incompatible.mod"} {
		for _, state := range []string{"miss", "hit"} {
			resp, body := get(path)
			if resp.StatusCode != 200 || len(body) == 0 || resp.Header.Get("Location") != "" {
				t.Errorf("%s: GET %s = %d %q Location %q; want 200 with the content", state, path, resp.StatusCode, body, resp.Header.Get("Location"))
			}
		}
	}
	if !strings.Contains(e.logs.String(), "no URL for this one") {
		t.Errorf("the Redirect error was not logged:\n%s", e.logs.String())
	}
	// Only immutable objects that exist are redirected: lists, @latest, the checksum database
	// and misses that fail are not.
	for _, path := range []string{"/example.com/lib/@v/list", "/example.com/lib/@latest", "/sumdb/" + e.up.SumDBName + "/supported"} {
		if resp, body := get(path); resp.StatusCode != 200 {
			t.Errorf("GET %s = %d %q; want 200", path, resp.StatusCode, body)
		}
	}
	if resp, _ := get("/example.com/lib/@v/v9.9.9.zip"); resp.StatusCode != 404 {
		t.Errorf("missing version = %d; want 404", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, key := range asked {
		if !strings.Contains(key, "/@v/v2.0.0+incompatible.") {
			t.Errorf("Redirect asked about %s", key)
		}
	}
}

func TestPrefetch(t *testing.T) {
	e := newEnv(t, envOptions{prefetch: true})
	const base = "/example.com/lib/@v/v1.1.0"
	if resp, body := e.get(t, base+".info"); resp.StatusCode != 200 {
		t.Fatalf("GET .info = %d %q", resp.StatusCode, body)
	}
	if err := e.h.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{".mod", ".zip"} {
		if !e.has(t, strings.TrimPrefix(base+ext, "/")) {
			t.Errorf("%s%s was not prefetched after its .info", base, ext)
		}
		if resp, _ := e.get(t, base+ext); resp.StatusCode != 200 {
			t.Errorf("GET %s%s = %d", base, ext, resp.StatusCode)
		}
		if n := e.up.Count(base + ext); n != 1 {
			t.Errorf("%s%s fetched %d times from the upstream; want 1 (the prefetch)", base, ext, n)
		}
	}
	// A .mod prefetches its .info, not its zip.
	const other = "/example.com/lib/@v/v1.2.0"
	e.get(t, other+".mod")
	e.h.Wait(t.Context())
	if !e.has(t, strings.TrimPrefix(other+".info", "/")) || e.up.Count(other+".zip") != 0 {
		t.Errorf("after a .mod: .info stored %v, zip fetched %d times; want the .info and no zip",
			e.has(t, strings.TrimPrefix(other+".info", "/")), e.up.Count(other+".zip"))
	}
	// The go command's order in go mod download: every .mod, then every .info, then every zip.
	// The .info is a hit by then (prefetched), and still leads to the zip.
	e.get(t, other+".info")
	e.h.Wait(t.Context())
	if !e.has(t, strings.TrimPrefix(other+".zip", "/")) {
		t.Error("a prefetched .info, when asked for, did not prefetch its zip")
	}
	// A version the upstream lacks starts no prefetch.
	e.get(t, "/example.com/lib/@v/v1.9.0.info")
	e.h.Wait(t.Context())
	if n := e.up.Count("/example.com/lib/@v/v1.9.0.zip"); n != 0 {
		t.Errorf("a missing version's zip was asked of the upstream %d times", n)
	}
}
