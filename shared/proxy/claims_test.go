package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modmirror/modmirror/shared/auth"
	"github.com/modmirror/modmirror/shared/proxy"
	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/store/memstore"
	"github.com/modmirror/modmirror/shared/testkit"
	"github.com/modmirror/modmirror/shared/upstream"
)

// The tests in this file each hold one safety claim of docs/SECURITY.md, and each fails when
// the code that keeps the claim is taken out.

// TestValidButWrongZipRefused: a well-formed zip whose files differ from the true ones passes
// every structural check; only the checksum database can tell, and nothing is stored.
func TestValidButWrongZipRefused(t *testing.T) {
	for _, staged := range []bool{false, true} {
		e := newEnv(t, envOptions{staged: staged})
		lib := testkit.Find(e.mods, "example.com/lib", "v1.0.0")
		evil := &testkit.Module{Path: lib.Path, Version: lib.Version, Time: lib.Time, Files: maps.Clone(lib.Files)}
		evil.Files["evil.go"] = []byte("package lib\n\nfunc init() { println(\"owned\") }\n")
		e.up.Tamper("/example.com/lib/@v/v1.0.0.zip", func([]byte) []byte { return evil.Zip() })
		resp, body := e.get(t, "/example.com/lib/@v/v1.0.0.zip")
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "SECURITY ERROR") {
			t.Errorf("staged=%v: a valid zip with other files = %d %q; want 502 SECURITY ERROR", staged, resp.StatusCode, body)
		}
		if e.has(t, "example.com/lib/@v/v1.0.0.zip") {
			t.Errorf("staged=%v: the wrong zip was stored", staged)
		}
	}
}

// TestPrivateModuleNeverGoesPublic: with private patterns but no private upstream, a private
// module is never asked of the public upstream or its checksum database, even by a caller whose
// token may read it.
func TestPrivateModuleNeverGoesPublic(t *testing.T) {
	up := testkit.NewUpstream(t, testkit.Options{Modules: testkit.MustLoadFixtures(t)})
	pub, err := upstream.New(up.URL, upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.ParseTokens([]byte("dev " + auth.HashToken("secret") + " public,read:example.com/lib\n"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := proxy.New(proxy.Config{Store: memstore.New(), Upstream: pub, Private: "example.com/lib", Auth: auth.New(tokens, true)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for _, path := range []string{"/example.com/lib/@v/v1.0.0.info", "/example.com/lib/@v/list", "/example.com/lib/@latest"} {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("GET %s of a private module with no private upstream = %d; want it refused", path, resp.StatusCode)
		}
	}
	for _, r := range up.Requests() {
		if strings.Contains(r, "example.com/lib") {
			t.Errorf("the public upstream was asked %s", r)
		}
	}
}

// failingStore fails the operations its flags name.
type failingStore struct {
	store.Store
	open, put bool
}

var errDisk = errors.New("input/output error")

func (s *failingStore) Open(ctx context.Context, key string) (store.Object, error) {
	if s.open {
		return nil, errDisk
	}
	return s.Store.Open(ctx, key)
}

func (s *failingStore) Stat(ctx context.Context, key string) (store.Info, error) {
	if s.open {
		return store.Info{}, errDisk
	}
	return s.Store.Stat(ctx, key)
}

func (s *failingStore) Put(ctx context.Context, key string, r io.Reader, size int64, o store.PutOptions) (store.Info, error) {
	if s.put {
		return store.Info{}, errDisk
	}
	return s.Store.Put(ctx, key, r, size, o)
}

// TestStoreFailures: a store that cannot be read answers 503 with the reason; one that cannot be
// written still answers with the verified object, passed through and logged with event=store,
// leaving nothing, while stored objects are still served; and the process stores again once the
// store is back.
func TestStoreFailures(t *testing.T) {
	fs := &failingStore{}
	e := newEnv(t, envOptions{wrap: func(st store.Store) store.Store { fs.Store = st; return fs }})
	if resp, body := e.get(t, "/example.com/lib/@v/v1.0.0.mod"); resp.StatusCode != 200 {
		t.Fatalf("GET before the failure = %d %q", resp.StatusCode, body)
	}
	fs.open = true
	for _, path := range []string{"/example.com/lib/@v/v1.1.0.zip", "/example.com/lib/@v/list"} {
		resp, body := e.get(t, path)
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "input/output error") ||
			resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s from a store that cannot be read = %d %q %q; want 503 naming the error, no-store", path, resp.StatusCode, body, resp.Header.Get("Cache-Control"))
		}
	}
	fs.open, fs.put = false, true
	lib12 := testkit.Find(e.mods, "example.com/lib", "v1.2.0")
	for path, want := range map[string][]byte{
		"/example.com/lib/@v/v1.2.0.zip": lib12.Zip(),
		"/example.com/lib/@v/v1.2.0.mod": lib12.GoMod(),
	} {
		resp, body := e.get(t, path)
		if resp.StatusCode != 200 || !bytes.Equal(body, want) {
			t.Errorf("GET %s from a store that cannot be written = %d, %d bytes; want 200 and the verified %d bytes, passed through", path, resp.StatusCode, len(body), len(want))
		}
	}
	if !strings.Contains(e.logs.String(), `"event":"store"`) {
		t.Error("no event=store line for a verified object the store refused")
	}
	e.up.Tamper("/example.com/lib/@v/v1.0.0.zip", func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b })
	if resp, body := e.get(t, "/example.com/lib/@v/v1.0.0.zip"); resp.StatusCode != http.StatusBadGateway || bytes.HasPrefix(body, []byte("PK")) {
		t.Errorf("GET of a tampered zip while the store cannot be written = %d %.40q; want 502: only verified bytes pass through", resp.StatusCode, body)
	}
	e.up.Tamper("/example.com/lib/@v/v1.0.0.zip", nil)
	if resp, body := e.get(t, "/example.com/lib/@v/v1.0.0.mod"); resp.StatusCode != 200 {
		t.Errorf("GET of a stored object while the store cannot be written = %d %q; want 200", resp.StatusCode, body)
	}
	fs.put = false
	if e.has(t, "example.com/lib/@v/v1.2.0.zip") {
		t.Error("a fill whose Put failed left an object")
	}
	if resp, body := e.get(t, "/example.com/lib/@v/v1.1.0.zip"); resp.StatusCode != 200 {
		t.Errorf("GET once the store is back = %d %q; want 200", resp.StatusCode, body)
	}
}

// TestHeadAnswersAsGet: HEAD gives what GET gives, headers and all, without the body, on every
// kind of path, for hits and for answers filled by the HEAD itself.
func TestHeadAnswersAsGet(t *testing.T) {
	e := newEnv(t, envOptions{})
	name := e.up.SumDBName
	paths := []string{
		"/example.com/lib/@v/v1.0.0.info", "/example.com/lib/@v/v1.0.0.mod", "/example.com/lib/@v/v1.0.0.zip",
		"/example.com/lib/@v/list", "/example.com/lib/@latest", "/example.com/lib/@v/v9.9.9.info",
		"/sumdb/" + name + "/supported", "/sumdb/" + name + "/lookup/example.com/lib@v1.0.0",
	}
	head := func(path string) *http.Response {
		resp, err := http.Head(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, path := range paths {
		first := head(path) // a miss, filled by the HEAD
		get, body := e.get(t, path)
		again := head(path) // a hit
		for _, h := range []*http.Response{first, again} {
			if h.StatusCode != get.StatusCode {
				t.Errorf("HEAD %s = %d; GET = %d", path, h.StatusCode, get.StatusCode)
			}
		}
		if again.ContentLength != int64(len(body)) {
			t.Errorf("HEAD %s: Content-Length %d; GET's body is %d bytes", path, again.ContentLength, len(body))
		}
		for _, k := range []string{"ETag", "Cache-Control", "Content-Type", "Last-Modified"} {
			if again.Header.Get(k) != get.Header.Get(k) {
				t.Errorf("HEAD %s: %s %q; GET's %q", path, k, again.Header.Get(k), get.Header.Get(k))
			}
		}
		if get.StatusCode == 200 && !strings.HasSuffix(path, "list") && !strings.HasSuffix(path, "@latest") &&
			!strings.HasSuffix(path, "supported") && get.Header.Get("ETag") == "" {
			t.Errorf("GET %s of an immutable object has no ETag", path)
		}
	}
}
