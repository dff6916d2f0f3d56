package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modmirror/modmirror/shared/testkit"
)

// TestMain keeps the user's private-module settings out of the generator's go env defaults.
func TestMain(m *testing.M) {
	for _, k := range []string{"GOPRIVATE", "GONOSUMDB", "GOFLAGS"} {
		os.Unsetenv(k)
	}
	os.Exit(m.Run())
}

// fixture is a fake upstream serving the fixture modules, with its own checksum database.
type fixture struct {
	up   *testkit.Upstream
	mods []*testkit.Module
	root string // the repository
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	root, err := testkit.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	mods := testkit.MustLoadFixtures(t)
	return &fixture{up: testkit.NewUpstream(t, testkit.Options{Modules: mods}), mods: mods, root: root}
}

// projectSum is the fixture project's go.sum.
func (f *fixture) projectSum() string { return filepath.Join(f.root, "testdata", "project", "go.sum") }

// outcome is one run of the command.
type outcome struct {
	code           int
	stdout, stderr string
}

func (o outcome) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", o.code, o.stdout, o.stderr)
}

// runCmd runs the command in-process with args, with no MODMIRROR_ variables.
func runCmd(t *testing.T, args ...string) outcome {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, func(string) string { return "" }, &stdout, &stderr)
	return outcome{code, stdout.String(), stderr.String()}
}

// generate runs the generator against the fixture upstream into dir.
func (f *fixture) generate(t *testing.T, dir string, args ...string) outcome {
	t.Helper()
	base := []string{"-o", dir, "-upstream", f.up.URL, "-sumdb", f.up.SumDBKey, "-progress", "lines", "-j", "4"}
	return runCmd(t, append(base, args...)...)
}

// mustGenerate is generate that fails the test unless the command succeeds.
func (f *fixture) mustGenerate(t *testing.T, dir string, args ...string) outcome {
	t.Helper()
	o := f.generate(t, dir, args...)
	if o.code != 0 {
		t.Fatalf("generator failed: %v", o)
	}
	return o
}

// requireUnshare fails the test, saying why, if network namespaces are unavailable.
func requireUnshare(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("unshare", "-n", "sh", "-c", "ip link set lo up").CombinedOutput(); err != nil {
		t.Fatalf("this test proves the mirror works with no network inside `unshare -n`, which needs root (or user namespaces) and the ip command: %v\n%s", err, out)
	}
}

// buildServer builds functions/server into a temporary directory.
func buildServer(t *testing.T, root string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "server")
	cmd := exec.Command("go", "build", "-o", bin, "./functions/server")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./functions/server: %v\n%s", err, out)
	}
	return bin
}

// offlineScript runs the go command, as the air-gapped side does, inside a network namespace of
// its own: no network but its own loopback. With server set it first starts functions/server
// -offline on the mirror and points GOPROXY at it.
const offlineScript = `
if [ -n "${SERVER:-}" ]; then
	"$SERVER" -offline -store "$MIRROR" -sumdb "$GOSUMDB" -listen 127.0.0.1:8080 2>"$WORK/server.log" &
	server=$!
	trap 'kill $server' EXIT
	i=0
	until grep -q '"msg":"serving"' "$WORK/server.log"; do
		i=$((i+1)); [ $i -lt 200 ] || { cat "$WORK/server.log"; exit 1; }
		sleep 0.05
	done
	export GOPROXY=http://127.0.0.1:8080
fi
# Nothing can be reached but loopback: no route leads out of the namespace.
if [ -n "$(ip route show)" ]; then echo "a route leads out: $(ip route show)"; exit 1; fi

echo "== go build (project, with go.sum)"
cd "$WORK/project"
go build -o "$WORK/project.bin" .
"$WORK/project.bin"

echo "== go build -mod=mod (project without go.sum: every module verified by the checksum database)"
cd "$WORK/nosum"
rm -f go.sum
go build -mod=mod -o "$WORK/nosum.bin" .

echo "== go install tool@version"
cd "$WORK"
go install example.com/tool/cmd/hello@v1.0.0
"$GOPATH/bin/hello" offline

# The go command looked every module up in the checksum database, through the mirror.
echo "lookups: $(find "$GOMODCACHE/cache/download/sumdb" -path '*/lookup/*' -type f | wc -l)"
`

// offline runs offlineScript under unshare -n with the fixture project.
func offline(t *testing.T, f *fixture, mirrorDir, server string) string {
	t.Helper()
	work := t.TempDir()
	project := testkit.CopyProject(t)
	if err := os.CopyFS(filepath.Join(work, "project"), os.DirFS(project)); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(work, "nosum"), os.DirFS(project)); err != nil {
		t.Fatal(err)
	}
	g := offlineEnv(t, f.up, mirrorDir)
	g.Set("WORK", work)
	g.Set("MIRROR", mirrorDir)
	g.Set("SERVER", server)
	return inNamespace(t, g, work, offlineScript)
}

// offlineEnv is the go command with a fresh GOPATH and module cache, GOPROXY=file://mirrorDir,
// and GOSUMDB the database's key alone: it reaches the database through GOPROXY, the mirror.
func offlineEnv(t *testing.T, up *testkit.Upstream, mirrorDir string) *testkit.GoEnv {
	g := testkit.NewGoEnv(t, "file://"+mirrorDir, up)
	g.Set("GOSUMDB", up.SumDBKey)
	return g
}

// inNamespace runs a bash script under unshare -n (no network but its own loopback) with the go
// command's environment g, in dir, and fails the test if it fails.
func inNamespace(t *testing.T, g *testkit.GoEnv, dir, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-n", "bash", "-c", "set -eu\nip link set lo up\n"+script)
	cmd.Env = g.Env()
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("offline script failed: %v\n%s", err, out)
	}
	return string(out)
}

func TestOfflineBuild(t *testing.T) {
	requireUnshare(t)
	f := newFixture(t)
	server := buildServer(t, f.root)
	dir := filepath.Join(t.TempDir(), "mirror")
	o := f.mustGenerate(t, dir, f.projectSum(), "example.com/tool/cmd/hello@v1.0.0")
	if !strings.Contains(o.stdout, "resolved example.com/tool/cmd/hello@v1.0.0: example.com/tool@v1.0.0") {
		t.Errorf("the package path was not resolved to its module:\n%v", o)
	}
	for _, tc := range []struct {
		name   string
		server string
	}{
		{"file", ""},
		{"server-offline", server},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := offline(t, f, dir, tc.server)
			for _, want := range []string{"lib v1.1.0", "hello, offline (major v2)", "lookups: 7"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// tree describes every file under dir: content and, for the no-op check, identity.
type fileState struct {
	data  string
	mtime time.Time
	ino   uint64
}

func tree(t *testing.T, dir string) map[string]fileState {
	t.Helper()
	files := map[string]fileState{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = fileState{string(data), fi.ModTime(), inode(fi)}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
