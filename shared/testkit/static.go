package testkit

import (
	"net"
	"strings"
	"testing"
)

// DeadURL returns the URL of a port on 127.0.0.1 on which nothing listens any more: the first
// entry of a GOPROXY line whose proxy is down.
func DeadURL(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close()
	return url
}

// TeamFill runs through g what a team's builds leave in a proxy's store: the fixture project's
// modules, a tool, the shaped modules, example.com/lib@latest resolved, and a module with
// pseudo-versions only downloaded at @latest. Each command must succeed.
func TeamFill(tb testing.TB, g *GoEnv, shaped []*Module) {
	tb.Helper()
	g.MustRun(CopyProject(tb), "mod", "download")
	g.MustRun(tb.TempDir(), "install", "example.com/tool/cmd/hello@v1.0.0")
	g.MustRun(tb.TempDir(), append([]string{"mod", "download"}, moduleArgs(shaped)...)...)
	g.MustRun(tb.TempDir(), "list", "-m", "example.com/lib@latest")
	g.MustRun(tb.TempDir(), "mod", "download", "example.com/pseudo@latest")
}

// CheckStaticGoProxy checks that g, a fresh go command whose GOPROXY reaches only a static copy
// of a store that TeamFill filled, does all a build needs with it, verifying against the
// checksum database: download, build and verify the project, install the tool, download the
// shaped modules, resolve example.com/lib@latest to wantLib and example.com/pseudo@latest; and
// that a version never filled (example.com/lib@v1.0.0) fails as not found, never with a 403 or a
// security error.
func CheckStaticGoProxy(tb testing.TB, g *GoEnv, shaped []*Module, wantLib string) {
	tb.Helper()
	project := CopyProject(tb)
	g.MustRun(project, "mod", "download")
	g.MustRun(project, "build", "-o", tb.TempDir()+"/project", ".")
	if out := g.MustRun(project, "mod", "verify"); !strings.Contains(out, "all modules verified") {
		tb.Errorf("go mod verify: %s", out)
	}
	g.MustRun(tb.TempDir(), "install", "example.com/tool/cmd/hello@v1.0.0")
	g.MustRun(tb.TempDir(), append([]string{"mod", "download"}, moduleArgs(shaped)...)...)
	if out := g.MustRun(tb.TempDir(), "list", "-m", "example.com/lib@latest"); strings.TrimSpace(out) != "example.com/lib "+wantLib {
		tb.Errorf("go list -m example.com/lib@latest = %q; want %s", out, wantLib)
	}
	if out := g.MustRun(tb.TempDir(), "list", "-m", "example.com/pseudo@latest"); !strings.Contains(out, "example.com/pseudo v0.0.0-20240102030405-abcdef123456") {
		tb.Errorf("go list -m example.com/pseudo@latest = %q; want its only pseudo-version", out)
	}
	// Through "dead|static" the go command reports the first proxy's refused connection: it
	// ranks that above the static copy's 404.
	out, err := g.Run(tb.TempDir(), "mod", "download", "example.com/lib@v1.0.0")
	notFound := strings.Contains(out, "404 Not Found") || strings.Contains(out, "no such file") || strings.Contains(out, "connection refused")
	if err == nil || !notFound || strings.Contains(out, "403 Forbidden") || strings.Contains(out, "SECURITY") {
		tb.Errorf("download of a version never filled: %v\n%s\nwant the go command's not-found", err, out)
	}
}

// moduleArgs returns "path@version" for each module.
func moduleArgs(mods []*Module) []string {
	var args []string
	for _, m := range mods {
		args = append(args, m.String())
	}
	return args
}
