//go:build !(js && wasm)

package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/mod/module"

	"github.com/modmirror/modmirror/shared/config"
	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/store/dirstore"
	"github.com/modmirror/modmirror/shared/store/storetest"
	"github.com/modmirror/modmirror/shared/testkit"
)

// TestWorker builds the Worker (with the test-only store endpoint), runs it under workerd with
// a local R2 bucket and the fixtures' upstream, and drives it with the go command and the
// store conformance suite. One wrangler for all the subtests: starting it costs seconds.
func TestWorker(t *testing.T) {
	tl := findTools(t)
	dir := t.TempDir()
	// The Worker's build and the oversized module are the slow parts: make them side by side.
	var near *testkit.BigModule
	var fixtures []*testkit.Module
	parallel(
		func() { tl.buildWorker(t, dir, "modmirror_storeapi") },
		func() {
			near = testkit.NewBig(t, "example.com/near", "v1.0.0", DefaultSpoolLimit-(2<<20))
			fixtures = testkit.MustLoadFixtures(t)
		},
	)
	if t.Failed() {
		t.FailNow()
	}
	up := testkit.NewUpstream(t, testkit.Options{Modules: fixtures, Big: []*testkit.BigModule{near}})
	// The test checksum database adds a module's record on its first lookup: look everything
	// up now, so that the tree (and so the tiles both proxies store) is the same for both runs.
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
	persist := t.TempDir()
	w := tl.startWorker(t, dir, persist, map[string]string{
		"MODMIRROR_UPSTREAM": up.URL,
		"MODMIRROR_SUMDB":    up.SumDBKey,
	})
	bucket := &apiStore{base: w.url, client: &http.Client{}}

	t.Run("StoreConformance", func(t *testing.T) {
		var n atomic.Int32
		storetest.Run(t, func(t *testing.T) store.Store {
			return &apiStore{base: w.url, prefix: fmt.Sprintf("storetest/%d", n.Add(1)), client: &http.Client{}}
		})
	})

	// What the go command's downloads leave in R2, as keys.
	var workerKeys []string
	t.Run("GoCommand", func(t *testing.T) {
		g := testkit.NewGoEnv(t, w.url, up)
		g.Set("GOSUMDB", up.SumDBKey)
		goCommandSequence(t, g)
		workerKeys = keys(t, bucket, "storetest/")
		for _, key := range []string{
			"example.com/incompat/@v/v2.0.0+incompatible.zip", // a literal + in the key
			"example.com/incompat/@v/v2.0.0+incompatible.mod",
			"example.com/!upper/!mod/@v/v1.0.0.zip",
			"example.com/tool/@v/v1.0.0.zip",
			"example.com/lib/@v/list",
			"sumdb/" + up.SumDBName + "/lookup/example.com/tool@v1.0.0",
		} {
			if !slices.Contains(workerKeys, key) {
				t.Errorf("R2 lacks %s after the go command's downloads; it has %q", key, workerKeys)
			}
		}
		// A stored zip is what the upstream had, byte for byte.
		fix := testkit.Find(fixtures, "example.com/incompat", "v2.0.0+incompatible")
		obj, err := bucket.Open(t.Context(), "example.com/incompat/@v/v2.0.0+incompatible.zip")
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(obj)
		obj.Close()
		if err != nil || !bytes.Equal(data, fix.Zip()) {
			t.Errorf("stored +incompatible zip: %d bytes, %v; want the upstream's %d bytes", len(data), err, len(fix.Zip()))
		}
	})

	t.Run("LayoutMatchesDirectoryStore", func(t *testing.T) {
		if workerKeys == nil {
			t.Fatal("GoCommand did not run")
		}
		dirKeys := directoryStoreKeys(t, up)
		if !slices.Equal(workerKeys, dirKeys) {
			t.Errorf("R2 keys differ from the directory store's for the same requests:\nonly in R2: %q\nonly in the directory: %q",
				minus(workerKeys, dirKeys), minus(dirKeys, workerKeys))
		}
	})

	t.Run("ServeStored", func(t *testing.T) {
		const path = "/example.com/lib/@v/v1.1.0.zip"
		fix := testkit.Find(fixtures, "example.com/lib", "v1.1.0")
		resp, body := get(t, w.url+path, nil)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, fix.Zip()) {
			t.Fatalf("GET %s = %d, %d bytes; want 200 and the zip's %d bytes", path, resp.StatusCode, len(body), len(fix.Zip()))
		}
		etag := resp.Header.Get("ETag")
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") || etag == "" {
			t.Errorf("Cache-Control %q, ETag %q; want immutable and an ETag", cc, etag)
		}
		if resp, _ := get(t, w.url+path, http.Header{"If-None-Match": {etag}}); resp.StatusCode != http.StatusNotModified {
			t.Errorf("conditional GET with the ETag = %d; want 304", resp.StatusCode)
		}
		resp, body = get(t, w.url+path, http.Header{"Range": {"bytes=10-19"}})
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, fix.Zip()[10:20]) {
			t.Errorf("GET bytes=10-19 = %d %q; want 206 and bytes 10-19", resp.StatusCode, body)
		}
		if resp, _ := get(t, w.url+"/example.com/lib/@v/v1.1.0.zip/..", nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("hostile path = %d; want 404", resp.StatusCode)
		}
	})

	t.Run("TamperedZipRefused", func(t *testing.T) {
		const path = "/example.com/lib/@v/v1.2.0.zip"
		up.Tamper(path, rezip(t, "evil"))
		defer up.Tamper(path, nil)
		resp, body := get(t, w.url+path, nil)
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "SECURITY ERROR") {
			t.Errorf("GET of a tampered zip = %d %q; want 502 and a SECURITY ERROR", resp.StatusCode, body)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q; want no-store", cc)
		}
		g := testkit.NewGoEnv(t, w.url, up)
		g.Set("GOSUMDB", up.SumDBKey)
		if out, err := g.Run(t.TempDir(), "mod", "download", "example.com/lib@v1.2.0"); err == nil {
			t.Errorf("go mod download of a tampered zip succeeded:\n%s", out)
		}
		if _, err := bucket.Stat(t.Context(), strings.TrimPrefix(path, "/")); err == nil {
			t.Errorf("%s was stored although it failed verification", path)
		}
		if !strings.Contains(w.Output(), `"event":"security"`) {
			t.Errorf("no security event in the Worker's log")
		}
	})

	t.Run("ZipNearTheLimit", func(t *testing.T) {
		// Just under the limit: verified in memory and stored with one put, with the
		// instance's memory (logged by the Worker) well inside the isolate's 128 MB. (Larger
		// zips stream: TestWorkerBigZip.)
		g := testkit.NewGoEnv(t, w.url, up)
		g.Set("GOSUMDB", up.SumDBKey)
		out := g.MustRun(t.TempDir(), "mod", "download", "-json", near.String())
		var dl struct{ Sum, Error string }
		if err := json.Unmarshal([]byte(out), &dl); err != nil || dl.Sum != near.ZipHash {
			t.Fatalf("%s: sum %q error %q (%v); want %s", near, dl.Sum, dl.Error, err, near.ZipHash)
		}
		if info, err := bucket.Stat(t.Context(), "example.com/near/@v/v1.0.0.zip"); err != nil || info.Size != near.ZipSize {
			t.Fatalf("stored zip: %+v, %v; want %d bytes", info, err, near.ZipSize)
		}
		var peak int64
		for _, line := range strings.Split(w.Output(), "\n") {
			if m := sysMiB.FindStringSubmatch(line); m != nil && strings.Contains(line, "example.com/near/@v/v1.0.0.zip") {
				n, _ := strconv.ParseInt(m[1], 10, 64)
				peak = max(peak, n)
			}
		}
		// The zip streams from R2 to the response without passing through Go: its request
		// line still counts its bytes.
		if want := fmt.Sprintf(`"path":"/example.com/near/@v/v1.0.0.zip","status":200,"bytes":%d,`, near.ZipSize); !strings.Contains(w.Output(), want) {
			t.Errorf("no request line with %s in the Worker's log", want)
		}
		t.Logf("instance memory filling a %d MiB zip: %d MiB", near.ZipSize>>20, peak)
		if peak == 0 || peak > 120 {
			t.Errorf("instance memory filling a %d MiB zip: %d MiB logged; want some, under 120", near.ZipSize>>20, peak)
		}
	})

	t.Run("UpstreamDown", func(t *testing.T) {
		up.Stop()
		g := testkit.NewGoEnv(t, w.url, up)
		g.Set("GOSUMDB", up.SumDBKey)
		// Everything the project needs is stored: it builds with the upstream gone.
		g.MustRun(testkit.CopyProject(t), "build", "-o", filepath.Join(t.TempDir(), "project"), ".")
		// Something not stored answers 502 (the upstream is unreachable), not a false 404.
		resp, body := get(t, w.url+"/example.com/lib/@v/v1.0.0.zip", nil)
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("a miss with the upstream down = %d %q; want 502", resp.StatusCode, body)
		}
	})

	t.Run("Offline", func(t *testing.T) {
		// The same R2 state served with MODMIRROR_OFFLINE: misses are 404s, so the go command
		// also resolves "go install tool@version" (whose path-prefix queries need 404s).
		w.Stop()
		off := tl.startWorker(t, dir, persist, map[string]string{
			"MODMIRROR_OFFLINE": "true",
			"MODMIRROR_SUMDB":   up.SumDBKey,
		})
		g := testkit.NewGoEnv(t, off.url, up)
		g.Set("GOSUMDB", up.SumDBKey)
		g.MustRun(testkit.CopyProject(t), "build", "-o", filepath.Join(t.TempDir(), "project"), ".")
		g.MustRun(t.TempDir(), "install", "example.com/tool/cmd/hello@v1.0.0")
		if out, err := exec.Command(g.Bin("hello")).CombinedOutput(); err != nil {
			t.Fatalf("hello: %v\n%s", err, out)
		}
	})
}

// sysMiB finds the Worker's "instance memory" log figure.
var sysMiB = regexp.MustCompile(`"msg":"instance memory".*"sys_mib":([0-9]+)`)

// goCommandSequence is what both the Worker and the directory-store proxy are put through.
func goCommandSequence(t *testing.T, g *testkit.GoEnv) {
	t.Helper()
	project := testkit.CopyProject(t)
	g.MustRun(project, "mod", "download")
	g.MustRun(project, "build", "-o", filepath.Join(t.TempDir(), "project"), ".")
	g.MustRun(t.TempDir(), "install", "example.com/tool/cmd/hello@v1.0.0")
	if out, err := exec.Command(g.Bin("hello")).CombinedOutput(); err != nil || !strings.Contains(string(out), "world") {
		t.Fatalf("hello: %v\n%s", err, out)
	}
}

// directoryStoreKeys puts the proxy core on a directory store, wired by the same buildHandler
// as the Worker, through the same go command sequence, and returns the keys it wrote.
func directoryStoreKeys(t *testing.T, up *testkit.Upstream) []string {
	t.Helper()
	st, err := dirstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	o := &options{Settings: config.Settings{Upstream: up.URL, SumDB: up.SumDBKey, Anonymous: true}, spoolLimit: DefaultSpoolLimit}
	h, err := buildHandler(st, o, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	g := testkit.NewGoEnv(t, srv.URL, up)
	g.Set("GOSUMDB", up.SumDBKey)
	goCommandSequence(t, g)
	return keys(t, st, "")
}

// keys lists a store's keys, leaving out those under exclude (if not empty).
func keys(t *testing.T, s store.Walker, exclude string) []string {
	t.Helper()
	var ks []string
	err := s.Walk(t.Context(), "", func(i store.Info) error {
		if exclude == "" || !strings.HasPrefix(i.Key, exclude) {
			ks = append(ks, i.Key)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func minus(a, b []string) []string {
	var d []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			d = append(d, s)
		}
	}
	return d
}

func get(t *testing.T, url string, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// rezip returns a tamper function that rewrites a module zip with the same files, each with
// text appended: a well-formed zip whose hash is not the checksum database's.
func rezip(t *testing.T, text string) func([]byte) []byte {
	return func(orig []byte) []byte {
		zr, err := zip.NewReader(bytes.NewReader(orig), int64(len(orig)))
		if err != nil {
			t.Errorf("tamper: %v", err)
			return orig
		}
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for _, f := range zr.File {
			rc, err := f.Open()
			if err != nil {
				t.Errorf("tamper: %v", err)
				return orig
			}
			data, _ := io.ReadAll(rc)
			rc.Close()
			fw, err := zw.Create(f.Name)
			if err != nil {
				t.Errorf("tamper: %v", err)
				return orig
			}
			fw.Write(data)
			if strings.HasSuffix(f.Name, ".go") {
				fmt.Fprintf(fw, "\n// %s\n", text)
			}
		}
		if err := zw.Close(); err != nil {
			t.Errorf("tamper: %v", err)
		}
		return buf.Bytes()
	}
}

// The wasm build links no AWS SDK.
func TestWasmLinksNoAWSSDK(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("go", "list", "-deps", ".")
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/syumai/workers") || !slices.Contains(deps, "github.com/modmirror/modmirror/shared/store/r2store") {
		t.Fatalf("go list -deps of the wasm build lacks the Worker's own packages: %q", deps)
	}
	for _, d := range deps {
		if strings.Contains(d, "aws-sdk-go") || strings.Contains(d, "aws/smithy-go") || strings.Contains(d, "aws-lambda-go") {
			t.Errorf("the wasm build links %s", d)
		}
	}
}

// TestDeployDryRun runs `wrangler deploy --dry-run` on the repository's wrangler.toml, which
// builds with `make worker` exactly as a deploy does, offline, and checks the gzipped upload
// it reports: at least 2 MiB under Workers Paid's 10 MiB.
func TestDeployDryRun(t *testing.T) {
	t.Parallel()
	tl := findTools(t)
	out := t.TempDir()
	cmd := exec.Command(tl.wrangler, "deploy", "--dry-run", "--outdir", out)
	cmd.Dir = tl.root
	cmd.Env = append(tl.env, "XDG_CONFIG_HOME="+filepath.Join(t.TempDir(), "config"))
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("wrangler deploy --dry-run: %v\n%s", err, b)
	}
	gz, err := parseUploadSize(string(b))
	if err != nil {
		t.Fatalf("%v in:\n%s", err, b)
	}
	t.Logf("gzipped upload: %.0f KiB", gz/1024)
	if gz > maxUpload {
		t.Errorf("gzipped upload is %.0f KiB, over %d KiB (Workers Paid's 10 MiB less 2 MiB of headroom)", gz/1024, maxUpload>>10)
	}
	if !strings.Contains(string(b), "env.MODULES") {
		t.Errorf("dry run lists no MODULES binding:\n%s", b)
	}
	wasm, err := filepath.Glob(filepath.Join(out, "*.wasm"))
	if err != nil || len(wasm) != 1 {
		t.Errorf("dry run wrote %q to %s; want one .wasm module", wasm, out)
	}
}

// maxUpload is the largest gzipped upload the build may reach: Workers Paid takes 10 MiB, and
// 2 MiB stay free for what the Worker gains later.
const maxUpload = 8 << 20

// parseUploadSize finds the gzipped size in wrangler's "Total Upload: X KiB / gzip: Y KiB".
func parseUploadSize(out string) (float64, error) {
	m := regexp.MustCompile(`gzip: ([0-9.]+) KiB`).FindStringSubmatch(out)
	if m == nil {
		return 0, errors.New("no gzipped size reported")
	}
	kib, err := strconv.ParseFloat(m[1], 64)
	return kib * 1024, err
}
