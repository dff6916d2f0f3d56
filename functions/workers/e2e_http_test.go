//go:build !(js && wasm)

package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"golang.org/x/mod/module"

	"github.com/modmirror/modmirror/shared/testkit"
)

// TestWorkerHTTP runs the Worker (the production build, no test endpoints) under workerd on
// the fixtures' upstream and checks its HTTP behaviour against the server's: HEAD answers as
// GET without a body, and the mutable answers are cached at the edge.
func TestWorkerHTTP(t *testing.T) {
	tl := findTools(t)
	dir := t.TempDir()
	tl.buildWorker(t, dir)
	up := testkit.NewUpstream(t, testkit.Options{Modules: testkit.MustLoadFixtures(t)})
	lookupAll(t, up)
	w := tl.startWorker(t, dir, t.TempDir(), map[string]string{
		"MODMIRROR_UPSTREAM": up.URL,
		"MODMIRROR_SUMDB":    up.SumDBKey,
	})
	sumdb := "/sumdb/" + up.SumDBName

	t.Run("HeadLikeGet", func(t *testing.T) {
		// Each path is asked first with HEAD (a miss for the immutable ones, which HEAD fills)
		// and then with GET, and then with HEAD again (a hit).
		paths := []string{
			"/example.com/lib/@v/v1.1.0.info",
			"/example.com/lib/@v/v1.1.0.mod",
			"/example.com/lib/@v/v1.1.0.zip",
			"/example.com/lib/@v/list",
			"/example.com/lib/@latest",
			sumdb + "/supported",
			sumdb + "/latest",
			sumdb + "/lookup/example.com/lib@v1.1.0",
			"/example.com/lib/@v/v9.9.9.info", // not found
			"/example.com/lib/@v/v1.1.0.zap",  // bad request
		}
		for _, p := range paths {
			t.Run(p, func(t *testing.T) {
				first, _ := do(t, http.MethodHead, w.url+p)
				got, body := do(t, http.MethodGet, w.url+p)
				second, headBody := do(t, http.MethodHead, w.url+p)
				if len(headBody) != 0 {
					t.Errorf("HEAD %s has a %d-byte body", p, len(headBody))
				}
				if got.StatusCode == http.StatusOK && got.Header.Get("Content-Length") != fmt.Sprint(len(body)) {
					t.Errorf("GET %s: Content-Length %q for a %d-byte body", p, got.Header.Get("Content-Length"), len(body))
				}
				for _, head := range []*http.Response{first, second} {
					if head.StatusCode != got.StatusCode {
						t.Errorf("HEAD %s = %d, GET = %d %q", p, head.StatusCode, got.StatusCode, body)
					}
					for _, h := range []string{"Content-Length", "ETag", "Cache-Control", "Content-Type"} {
						if head.Header.Get(h) != got.Header.Get(h) {
							t.Errorf("HEAD %s: %s %q; GET has %q", p, h, head.Header.Get(h), got.Header.Get(h))
						}
					}
				}
			})
		}
	})
}

// lookupAll looks every module up in the test checksum database, which adds a module's record
// on its first lookup, so that the tree is the same whatever a test asks for first.
func lookupAll(t *testing.T, up *testkit.Upstream) {
	t.Helper()
	for _, m := range up.Modules() {
		ep, err1 := module.EscapePath(m.Path)
		ev, err2 := module.EscapeVersion(m.Version)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		if resp, body := get(t, up.URL+"/sumdb/"+up.SumDBName+"/lookup/"+ep+"@"+ev, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("lookup %s: %d %q", m, resp.StatusCode, body)
		}
	}
}

// do sends a request with method to url and returns the response and its body.
func do(t *testing.T, method, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	// No transparent gzip: the headers as sent (workerd compresses text for clients that accept it).
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, body
}
