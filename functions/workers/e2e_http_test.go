//go:build !(js && wasm)

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
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

	// First, while the edge cache is empty: the upstream's requests are counted from here.
	firstFill := time.Now()
	t.Run("EdgeCache", func(t *testing.T) {
		up.ResetRequests()
		paths := []struct {
			path     string
			upstream int // requests the upstream sees for the path over the repeated requests
		}{
			{"/example.com/tool/@v/list", 1},
			{"/example.com/tool/@latest", 1},
			{"/example.com/nosuch/@v/list", 1}, // a 404 is remembered too
			{sumdb + "/latest", 1},
			{sumdb + "/lookup/example.com/tool@v1.0.0", 1},
		}
		for _, p := range paths {
			var first []byte
			for i := range 4 {
				resp, body := do(t, http.MethodGet, w.url+p.path)
				if i == 0 {
					first = body
				} else if !bytes.Equal(body, first) {
					t.Errorf("GET %s #%d = %d %q; the first answer was %q", p.path, i+1, resp.StatusCode, body, first)
				}
				if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
					t.Errorf("GET %s #%d: Content-Length %q for a %d-byte body", p.path, i+1, cl, len(body))
				}
				if p.path == "/example.com/nosuch/@v/list" && resp.StatusCode != http.StatusNotFound {
					t.Errorf("GET %s = %d; want 404", p.path, resp.StatusCode)
				}
			}
			if n := up.Count(p.path); n != p.upstream {
				t.Errorf("4 GETs of %s made %d upstream requests for it; want %d", p.path, n, p.upstream)
			}
			// The three repeats came from the edge cache, not from the core.
			// The Worker's log lines reach wrangler's output a little after the answers.
			deadline := time.Now().Add(5 * time.Second)
			for edgeHits(w.Output(), p.path) < 3 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if n := edgeHits(w.Output(), p.path); n != 3 {
				t.Errorf("%d of 4 GETs of %s answered from the edge cache; want 3; the Worker's log:\n%s", n, p.path, w.Output())
			}
		}
	})

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
				// The hits never started Go: modmirror.mjs answered them from R2 (the GET and the
				// second HEAD of the zip) or from the edge cache (the second HEAD of the list, which
				// the GET put there).
				if want := map[bool]int{true: 2, false: 1}[strings.HasSuffix(p, ".zip")]; strings.HasSuffix(p, "1.1.0.zip") || strings.HasSuffix(p, "/@v/list") {
					deadline := time.Now().Add(5 * time.Second)
					for jsAnswers(w.Output(), p) < want && time.Now().Before(deadline) {
						time.Sleep(50 * time.Millisecond)
					}
					if n := jsAnswers(w.Output(), p); n != want {
						t.Errorf("%d answers to %s from modmirror.mjs; want %d", n, p, want)
					}
				}
				for _, head := range []*http.Response{first, second} {
					if head.StatusCode != got.StatusCode {
						t.Errorf("HEAD %s = %d, GET = %d %q", p, head.StatusCode, got.StatusCode, body)
					}
					for _, h := range []string{"Content-Length", "ETag", "Cache-Control", "Content-Type", "Last-Modified"} {
						if head.Header.Get(h) != got.Header.Get(h) {
							t.Errorf("HEAD %s: %s %q; GET has %q", p, h, head.Header.Get(h), got.Header.Get(h))
						}
					}
				}
			})
		}
	})

	t.Run("EdgeCacheExpires", func(t *testing.T) {
		// After the server's 60 s the list is asked of the upstream again.
		const path = "/example.com/tool/@v/list"
		if testing.Short() {
			t.Skip("waits a minute")
		}
		time.Sleep(time.Until(firstFill.Add(edgeTTL + 2*time.Second)))
		before := up.Count(path)
		if resp, body := do(t, http.MethodGet, w.url+path); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d %q", path, resp.StatusCode, body)
		}
		if n := up.Count(path) - before; n != 1 {
			t.Errorf("GET %s %s after its first fill made %d upstream requests; want 1", path, time.Since(firstFill).Round(time.Second), n)
		}
	})
}

// edgeHits counts the Worker's request log lines for path answered from the edge cache.
func edgeHits(log, path string) int {
	n := 0
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `"path":"`+path+`"`) && strings.Contains(line, `"cache":"edge"`) {
			n++
		}
	}
	return n
}

// jsAnswers counts the request log lines for path written by modmirror.mjs.
func jsAnswers(log, path string) int {
	n := 0
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `"path":"`+path+`"`) && strings.Contains(line, `"entry":"js"`) {
			n++
		}
	}
	return n
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
