package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modmirror/modmirror/shared/testkit"
)

// TestStoreIsStaticFallback fills modules through the server, stops it and its upstream, and
// serves the store directory as plain files: a fresh go command, verifying against the checksum
// database, downloads, builds and verifies everything that was filled through
// GOPROXY='<dead>|<static>' and through file://, and gets the ordinary not-found for the rest.
func TestStoreIsStaticFallback(t *testing.T) {
	bin := serverBinary(t)
	shaped := testkit.MustShaped(t, 6)
	up := testkit.NewUpstream(t, testkit.Options{Modules: append(testkit.MustLoadFixtures(t), shaped...)})
	storeDir := t.TempDir()
	p := start(t, bin, []string{
		"MODMIRROR_STORE=" + storeDir,
		"MODMIRROR_UPSTREAM=" + up.URL,
		"MODMIRROR_SUMDB=" + up.SumDBKey,
	})

	// What a team's builds leave in the store: a project's modules, a tool, real-shaped modules,
	// a list and @latest resolved.
	fill := testkit.NewGoEnv(t, p.url, up)
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
	p.Stop()
	up.Stop()

	static := httptest.NewServer(http.FileServer(http.Dir(storeDir)))
	t.Cleanup(static.Close)
	for _, tc := range []struct{ name, proxy string }{
		{"DeadProxyThenStatic", deadURL(t) + "|" + static.URL},
		{"StaticAlone", static.URL},
		{"File", "file://" + filepath.ToSlash(storeDir)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := testkit.NewGoEnv(t, tc.proxy, up)
			g.Set("GOSUMDB", up.SumDBKey) // no URL: the database is reached through the proxies
			project := testkit.CopyProject(t)
			g.MustRun(project, "mod", "download")
			g.MustRun(project, "build", "-o", filepath.Join(t.TempDir(), "project"), ".")
			g.MustRun(project, "mod", "verify")
			g.MustRun(t.TempDir(), "install", "example.com/tool/cmd/hello@v1.0.0")
			g.MustRun(t.TempDir(), append([]string{"mod", "download"}, shapedArgs...)...)
			if out := g.MustRun(t.TempDir(), "list", "-m", "example.com/lib@latest"); !strings.Contains(out, "example.com/lib v1.2.0") {
				t.Errorf("go list -m example.com/lib@latest = %q; want v1.2.0, the highest version filled", out)
			}
			if out := g.MustRun(t.TempDir(), "list", "-m", "example.com/pseudo@latest"); !strings.Contains(out, "example.com/pseudo v0.0.0-20240102030405-abcdef123456") {
				t.Errorf("go list -m example.com/pseudo@latest = %q; want its only pseudo-version", out)
			}
			// A version never filled fails as any missing module does. (Through "dead|static" the
			// go command reports the first proxy's refused connection: it ranks that above a 404.)
			out, err := g.Run(t.TempDir(), "mod", "download", "example.com/lib@v1.0.0")
			notFound := strings.Contains(out, "404 Not Found") || strings.Contains(out, "no such file") ||
				strings.Contains(tc.proxy, "|") && strings.Contains(out, "connection refused")
			if err == nil || !notFound || strings.Contains(out, "403") || strings.Contains(out, "SECURITY") {
				t.Errorf("download of a version never filled: %v\n%s\nwant the go command's not-found", err, out)
			}
		})
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
