package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/mod/module"

	"github.com/modmirror/modmirror/shared/testkit"
)

// bigPath and bigVersion name the big module of the peak-RSS measurement.
const (
	bigPath    = "example.com/big"
	bigVersion = "v1.0.0"
)

// bench is one benchmark run: its fixtures and the commands it ran, for the report.
type bench struct {
	cfg       *config
	tb        *testkit.Harness
	root      string
	progress  io.Writer
	loadStart string

	repo     string // the repository's root
	server   string // the server binary
	nginx    string // the nginx binary, or "" with nginxErr
	nginxErr error
	shaped   *pinned // the goal set: modules of real shapes
	tiny     *pinned // one-file modules: the requests/s targets, and context
	big      *testkit.BigModule
	up       *testkit.Upstream
	commands []string
}

// pinned is a set of modules and the module requiring them all, whose go mod download is
// measured.
type pinned struct {
	mods    []*testkit.Module
	project string
}

// row is one line of the results table.
type row struct {
	metric, ours, ref, ratio, goal string
	pass                           bool
	// context marks a row that is not one of the goals, only there to explain another.
	context bool
	// byRun holds the ratio of each run (the table's ratio is of the medians), when there are several.
	byRun []float64
	err   error
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.progress, "bench/core: "+format+"\n", args...)
}

// setup builds the server and the fixtures. It reports failures through b.tb, so run it
// under b.tb.Catch.
func (b *bench) setup() error {
	var err error
	if b.repo, err = testkit.RepoRoot(); err != nil {
		return err
	}
	b.nginx, b.nginxErr = findNginx()

	if b.cfg.serverBin != "" {
		if b.server, err = filepath.Abs(b.cfg.serverBin); err != nil {
			return fmt.Errorf("-server: %w", err)
		}
		b.commands = append(b.commands, "# server binary given with -server "+b.cfg.serverBin)
	} else {
		b.logf("building the server")
		b.server = filepath.Join(b.root, "server")
		build := exec.CommandContext(b.tb.Context(), "go", "build", "-o", b.server, "./functions/server")
		build.Dir = b.repo
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./functions/server: %w\n%s", err, out)
		}
		b.commands = append(b.commands, "go build -o $TMP/server ./functions/server")
	}

	shapes, err := testkit.LoadShapes()
	if err != nil {
		return err
	}
	b.logf("making %d modules of real shapes, %d one-file modules and a %d MiB module zip", len(shapes), b.cfg.modules, b.cfg.zipMiB)
	b.shaped = &pinned{mods: testkit.Shaped(shapes)}
	b.tiny = &pinned{mods: testkit.Synthetic(b.cfg.modules)}
	b.big = testkit.NewBig(b.tb, bigPath, bigVersion, b.cfg.zipMiB<<20)
	b.up = testkit.NewUpstream(b.tb, testkit.Options{
		Modules: slices.Concat(b.shaped.mods, b.tiny.mods),
		Big:     []*testkit.BigModule{b.big},
	})
	if err := b.fillSumDB(); err != nil {
		return err
	}
	for _, p := range []*pinned{b.shaped, b.tiny} {
		p.project = testkit.NewProject(b.tb, p.mods)
	}
	return nil
}

// fillSumDB looks every module up in the upstream's checksum database once. The test database
// adds a record to its tree at a module's first lookup, so without this every fill through the
// server would see a new tree head (a tile to fetch, a tree head to replace); the public database
// already holds every public module and its tree head moves every few seconds, not at every lookup.
func (b *bench) fillSumDB() error {
	var paths []string
	for _, m := range slices.Concat(b.shaped.mods, b.tiny.mods) {
		paths = append(paths, m.Path+"@"+m.Version)
	}
	paths = append(paths, b.big.Path+"@"+b.big.Version)
	for _, p := range paths {
		mod, vers, _ := strings.Cut(p, "@")
		esc, err := module.EscapePath(mod)
		if err != nil {
			return fmt.Errorf("checksum database: %w", err)
		}
		url := b.up.URL + "/sumdb/" + b.up.SumDBName + "/lookup/" + esc + "@" + vers
		if err := b.fetchSize(b.tb.Context(), url, -1); err != nil {
			return fmt.Errorf("checksum database: %w", err)
		}
	}
	return nil
}

// newStore returns a new, empty store directory that nginx's workers may read.
func (b *bench) newStore(name string) (string, error) {
	dir, err := os.MkdirTemp(b.root, name+"-")
	if err != nil {
		return "", fmt.Errorf("store: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", fmt.Errorf("store: %w", err)
	}
	return dir, nil
}

// startServer starts the server on a new empty store, filling from the fake upstream and
// verifying against its checksum database through the upstream's /sumdb/ endpoints.
func (b *bench) startServer(ctx context.Context, name string) (*server, error) {
	storeDir, err := b.newStore(name + "-store")
	if err != nil {
		return nil, err
	}
	dir, err := b.newStore(name)
	if err != nil {
		return nil, err
	}
	srv, err := startServer(ctx, b.tb, b.server, dir, storeDir, "-upstream", b.up.URL, "-sumdb", b.up.SumDBKey)
	if err != nil {
		return nil, err
	}
	return srv, nil
}

// measure takes every measurement in turn; a failed one becomes a row with its error.
func (b *bench) measure(ctx context.Context) []row {
	b.commands = append(b.commands,
		"$TMP/server -listen 127.0.0.1:0 -store $TMP/STORE -upstream http://127.0.0.1:UPSTREAM -sumdb sumdb.test+KEY 2>$TMP/server.log",
		"cd $TMP/project && GOPROXY=http://127.0.0.1:UPSTREAM GOSUMDB='sumdb.test+KEY http://127.0.0.1:UPSTREAM/sumdb/sumdb.test' GOMODCACHE=$(mktemp -d) GOFLAGS=-modcacherw go mod download   # direct",
		"cd $TMP/project && GOPROXY=http://127.0.0.1:SERVER GOSUMDB=sumdb.test+KEY GOMODCACHE=$(mktemp -d) GOFLAGS=-modcacherw go mod download   # cold: new server, empty store; warm: again",
	)
	shaped := []row{
		{metric: fmt.Sprintf("warm `go mod download`, %d modules of real shapes (s)", len(b.shaped.mods)), goal: "<= 1.1x"},
		{metric: fmt.Sprintf("cold `go mod download`, %d modules of real shapes, empty store (s)", len(b.shaped.mods)), goal: "<= 1.3x"},
		{metric: "CPU time of the cold `go mod download` just above (s, context)", context: true},
	}
	b.downloadRows(ctx, "modules of real shapes", b.shaped, shaped, true)
	tiny := []row{
		{metric: fmt.Sprintf("warm `go mod download`, %d one-file modules (context)", len(b.tiny.mods)), goal: "<= 1.1x", context: true},
		{metric: fmt.Sprintf("cold `go mod download`, %d one-file modules, empty store (context)", len(b.tiny.mods)), goal: "<= 1.3x", context: true},
	}
	srv := b.downloadRows(ctx, "one-file modules", b.tiny, tiny, false)
	var far []row
	if b.cfg.latency > 0 {
		far = append(far, row{
			metric:  fmt.Sprintf("cold `go mod download`, %d one-file modules, upstream %s away (context)", len(b.tiny.mods), b.cfg.latency),
			goal:    "<= 1.3x",
			context: true,
		})
		far[0].err = b.tb.Catch(func() error { return b.farDownloads(ctx, b.tiny, &far[0]) })
	}

	rps := row{metric: fmt.Sprintf("cached `.mod` requests/s (%d conns, %d requests)", b.cfg.conns, b.cfg.requests), goal: ">= 0.9x"}
	if srv != nil {
		rps.err = b.tb.Catch(func() error { return b.requestsPerSecond(ctx, srv, &rps) })
		srv.Stop()
	} else {
		rps.err = fmt.Errorf("not measured: no filled store (%v)", tiny[0].err)
	}
	rows := append([]row{rps}, shaped...)
	rows = append(rows, tiny...)
	rows = append(rows, far...)

	rss := row{metric: fmt.Sprintf("peak RSS filling and serving a %d MiB zip (MiB)", b.cfg.zipMiB), goal: "<= 64 MiB"}
	rss.err = b.tb.Catch(func() error { return b.peakRSS(ctx, &rss) })
	return append(rows, rss)
}

// downloadRows fills in rows (those of downloads) with the downloads of p, or with the error
// that stopped them. Unless stop is false, it returns the last server, still running with its
// store filled.
func (b *bench) downloadRows(ctx context.Context, name string, p *pinned, rows []row, stop bool) *server {
	var srv *server
	err := b.tb.Catch(func() error {
		var err error
		srv, err = b.downloads(ctx, name, p, rows)
		return err
	})
	if err != nil {
		for i := range rows {
			rows[i].err = err
		}
		return nil
	}
	if stop {
		srv.Stop()
		return nil
	}
	return srv
}

// downloads measures go mod download of p straight from the upstream, through a server with an
// empty store (cold) and through the same server again (warm), -runs times each, and fills in
// rows: warm, cold and, if there is a third, the CPU time the go command and the server spent in
// the cold runs against the go command's in the direct ones. It returns the last server, still
// running, with its store filled.
func (b *bench) downloads(ctx context.Context, name string, p *pinned, rows []row) (*server, error) {
	b.logf("go mod download of the %s: warming up (not counted)", name)
	if _, _, err := b.goModDownload(p, b.up.URL, false); err != nil {
		return nil, err
	}
	var direct, cold, warm, directGo, coldGo, coldServer []time.Duration
	var srv *server
	for i := range b.cfg.runs {
		if srv != nil {
			srv.Stop()
		}
		d, dGo, err := b.goModDownload(p, b.up.URL, false)
		if err != nil {
			return nil, err
		}
		if srv, err = b.startServer(ctx, "dl"); err != nil {
			return nil, err
		}
		c, cGo, cServer, err := b.downloadThrough(srv, p)
		if err != nil {
			srv.Stop()
			return nil, err
		}
		w, _, err := b.goModDownload(p, srv.url, true)
		if err != nil {
			srv.Stop()
			return nil, err
		}
		direct, cold, warm = append(direct, d), append(cold, c), append(warm, w)
		directGo, coldGo, coldServer = append(directGo, dGo), append(coldGo, cGo), append(coldServer, cServer)
		b.logf("go mod download of the %s, run %d: direct %.3fs, cold %.3fs, warm %.3fs; CPU: direct %.2fs, cold %.2fs (go) + %.2fs (server)",
			name, i+1, d.Seconds(), c.Seconds(), w.Seconds(), dGo.Seconds(), cGo.Seconds(), cServer.Seconds())
	}
	md, mc, mw := medianOf(direct), medianOf(cold), medianOf(warm)
	fillTimes(&rows[0], mw, md, 1.1)
	fillTimes(&rows[1], mc, md, 1.3)
	for i := range direct {
		rows[0].byRun = append(rows[0].byRun, warm[i].Seconds()/direct[i].Seconds())
		rows[1].byRun = append(rows[1].byRun, cold[i].Seconds()/direct[i].Seconds())
	}
	if len(rows) > 2 {
		goDirect, goCold, server := medianOf(directGo), medianOf(coldGo), medianOf(coldServer)
		rows[2].ours = fmt.Sprintf("%.2f (go) + %.2f (server)", goCold.Seconds(), server.Seconds())
		rows[2].ref = fmt.Sprintf("%.2f (go, direct)", goDirect.Seconds())
		rows[2].ratio = fmt.Sprintf("%.2fx", (goCold+server).Seconds()/goDirect.Seconds())
	}
	return srv, nil
}

// downloadThrough is goModDownload through srv, with the CPU time srv spent meanwhile.
func (b *bench) downloadThrough(srv *server, p *pinned) (elapsed, goCPU, serverCPU time.Duration, err error) {
	before, err := cpuTime(srv.Pid())
	if err != nil {
		return 0, 0, 0, err
	}
	if elapsed, goCPU, err = b.goModDownload(p, srv.url, true); err != nil {
		return 0, 0, 0, err
	}
	after, err := cpuTime(srv.Pid())
	return elapsed, goCPU, after - before, err
}

// fillTimes fills in a row comparing the time ours with the reference ref, whose goal is a
// ratio of at most limit.
func fillTimes(r *row, ours, ref time.Duration, limit float64) {
	ratio := ours.Seconds() / ref.Seconds()
	r.ours = fmt.Sprintf("%.2f", ours.Seconds())
	r.ref = fmt.Sprintf("%.2f (direct)", ref.Seconds())
	r.ratio = fmt.Sprintf("%.2fx", ratio)
	r.pass = ratio <= limit
}

// farDownloads measures go mod download straight from the upstream and through a server with
// an empty store once more, with every upstream answer (checksum database included) delayed by
// -latency, as from an upstream across a network: there the proxy's extra round trips to the
// checksum database count as they do in use, and its local work counts for less.
func (b *bench) farDownloads(ctx context.Context, p *pinned, r *row) error {
	b.up.Delay(b.cfg.latency)
	defer b.up.Delay(0)
	b.logf("go mod download with the upstream %s away", b.cfg.latency)
	direct, _, err := b.goModDownload(p, b.up.URL, false)
	if err != nil {
		return err
	}
	srv, err := b.startServer(ctx, "far")
	if err != nil {
		return err
	}
	defer srv.Stop()
	cold, _, err := b.goModDownload(p, srv.url, true)
	if err != nil {
		return err
	}
	b.logf("go mod download with the upstream %s away: direct %.3fs, cold %.3fs", b.cfg.latency, direct.Seconds(), cold.Seconds())
	fillTimes(r, cold, direct, 1.3)
	return nil
}

// goModDownload runs go mod download in p's project with a fresh module cache through
// proxyURL, checks that every module's zip arrived, and returns how long the command took and
// the CPU time (user and system) it used. It starts after sync(2), so that no run pays for the
// disk writes of the one before. viaProxy makes the go command reach the checksum database
// through the proxy (it needs it only if go.sum lacked a hash).
func (b *bench) goModDownload(p *pinned, proxyURL string, viaProxy bool) (elapsed, cpu time.Duration, err error) {
	env := testkit.NewGoEnv(b.tb, proxyURL, b.up)
	if viaProxy {
		env.Set("GOSUMDB", b.up.SumDBKey)
	}
	// The module cache stays until the benchmark ends: deleting thousands of files just before
	// the next run slows its file creation down (ext4 scans for recently deleted inodes).
	syscall.Sync()
	cpu0 := childrenCPU()
	start := time.Now()
	out, err := env.Run(p.project, "mod", "download")
	elapsed = time.Since(start)
	cpu = childrenCPU() - cpu0
	if err != nil {
		return 0, 0, fmt.Errorf("%w\n%s", err, out)
	}
	for _, m := range p.mods {
		esc, err := module.EscapePath(m.Path)
		if err != nil {
			return 0, 0, fmt.Errorf("go mod download: %w", err)
		}
		zip := filepath.Join(env.GOMODCACHE, "cache", "download", filepath.FromSlash(esc), "@v", m.Version+".zip")
		if _, err := os.Stat(zip); err != nil {
			return 0, 0, fmt.Errorf("go mod download through %s did not download %s: %w", proxyURL, m, err)
		}
	}
	return elapsed, cpu, nil
}

// requestsPerSecond measures cached .mod requests per second through srv, whose store holds
// every synthetic module, and through nginx serving the same directory.
func (b *bench) requestsPerSecond(ctx context.Context, srv *server, r *row) error {
	targets := make([]target, len(b.tiny.mods))
	for i, m := range b.tiny.mods {
		esc, err := module.EscapePath(m.Path)
		if err != nil {
			return fmt.Errorf("requests/s: %w", err)
		}
		targets[i] = target{path: "/" + esc + "/@v/" + m.Version + ".mod", size: int64(len(m.GoMod()))}
		if _, err := os.Stat(filepath.Join(srv.store, filepath.FromSlash(targets[i].path))); err != nil {
			return fmt.Errorf("requests/s: the store lacks %s: %w", targets[i].path, err)
		}
	}
	measure := func(name, addr string) (float64, error) {
		if b.cfg.warmup > 0 {
			if _, err := load(ctx, addr, targets, b.cfg.conns, b.cfg.warmup); err != nil {
				return 0, fmt.Errorf("%s: %w", name, err)
			}
		}
		res, err := load(ctx, addr, targets, b.cfg.conns, b.cfg.requests)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		b.logf("requests/s: %s: %d requests in %.3fs: %.0f/s", name, res.requests, res.elapsed.Seconds(), res.perSecond())
		return res.perSecond(), nil
	}

	addr, err := hostPort(srv.url)
	if err != nil {
		return err
	}
	if b.nginxErr != nil {
		return b.nginxErr
	}
	dir, err := b.newStore("nginx")
	if err != nil {
		return err
	}
	ng, ngAddr, err := startNginx(ctx, b.tb, b.nginx, dir, srv.store, b.cfg.nginxWorkers)
	if err != nil {
		return err
	}
	defer ng.Stop()
	b.commands = append(b.commands, "nginx -c $TMP/nginx.conf -p $TMP -e $TMP/error.log   # nginx.conf below")

	// Rounds alternate between the two servers, each going first in every other pair (ABBA), so
	// that what else the machine does, and what one round leaves behind for the next, weighs on
	// both alike; the medians are compared.
	var ours, ref []float64
	pair := []struct {
		name, addr string
		results    *[]float64
	}{{"modmirror", addr, &ours}, {"nginx", ngAddr, &ref}}
	for range b.cfg.runs {
		for _, s := range pair {
			v, err := measure(s.name, s.addr)
			if err != nil {
				return err
			}
			*s.results = append(*s.results, v)
		}
		slices.Reverse(pair)
	}
	for i := range ours {
		r.byRun = append(r.byRun, ours[i]/ref[i])
	}
	mo, mr := medianOf(ours), medianOf(ref)
	ratio := mo / mr
	r.ours = thousands(mo)
	r.ref = thousands(mr) + " (nginx)"
	r.ratio = fmt.Sprintf("%.2fx", ratio)
	r.pass = ratio >= 0.9
	return nil
}

// peakRSS starts a server on an empty store, asks it for the big module's zip (a fill, then a
// serve), then four times at once (served from the store), and reads the server's VmHWM.
func (b *bench) peakRSS(ctx context.Context, r *row) error {
	srv, err := b.startServer(ctx, "rss")
	if err != nil {
		return err
	}
	defer srv.Stop()
	start, err := peakRSS(srv.Pid())
	if err != nil {
		return err
	}
	esc, err := module.EscapePath(bigPath)
	if err != nil {
		return fmt.Errorf("peak RSS: %w", err)
	}
	zipURL := srv.url + "/" + esc + "/@v/" + bigVersion + ".zip"
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	t0 := time.Now()
	if err := b.fetchSize(ctx, zipURL, b.big.ZipSize); err != nil {
		return err
	}
	b.logf("peak RSS: cold zip (fill and serve) in %.2fs", time.Since(t0).Seconds())
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = b.fetchSize(ctx, zipURL, b.big.ZipSize) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	peak, err := peakRSS(srv.Pid())
	if err != nil {
		return err
	}
	b.logf("peak RSS: %.1f MiB after start, %.1f MiB after the zip", mib(start), mib(peak))
	b.commands = append(b.commands,
		fmt.Sprintf("curl -o /dev/null http://127.0.0.1:SERVER/%s/@v/%s.zip   # once on an empty store, then 4 at once; then grep VmHWM /proc/$SERVER_PID/status", esc, bigVersion))
	r.ours = fmt.Sprintf("%.1f", mib(peak))
	r.ref = fmt.Sprintf("%.1f (at start)", mib(start))
	r.ratio = "—"
	r.pass = peak <= 64<<20
	return nil
}

// fetchSize GETs url and checks that the answer is 200 with want bytes (any number if want is
// negative).
func (b *bench) fetchSize(ctx context.Context, url string, want int64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK || want >= 0 && n != want {
		return fmt.Errorf("GET %s: %s with %d bytes, want 200 with %d", url, resp.Status, n, want)
	}
	return nil
}

// report prints the results table and how they were made.
func (b *bench) report(w io.Writer, rows []row) {
	fmt.Fprintf(w, "### Self-hosted server (`go run ./bench/core`)\n\n")
	fmt.Fprintf(w, "| metric | modmirror | reference | ratio | goal | result |\n|---|---:|---:|---:|---|---|\n")
	for _, r := range rows {
		result := "pass"
		switch {
		case r.err != nil:
			result = "error: " + strings.ReplaceAll(firstLine(r.err.Error()), "|", `\|`)
		case r.context && r.goal == "":
			result = "(context)"
		case r.context && r.pass:
			result = "(would pass; not a goal)"
		case r.context:
			result = "(would fail; not a goal)"
		case !r.pass:
			result = "**FAIL**"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", r.metric, dash(r.ours), dash(r.ref), dash(r.ratio), dash(r.goal), result)
	}
	reportByRun(w, rows)
	files, zipBytes := testkit.Weigh(b.shaped.mods)
	runs := "one run"
	if b.cfg.runs > 1 {
		runs = fmt.Sprintf("one run, but for the requests/s and the warm and cold `go mod download` figures: the median of %d runs (for requests/s, rounds alternating between the two servers, each first in every other pair)", b.cfg.runs)
	}
	fmt.Fprintf(w, "\nRatios: modmirror / reference. Each figure is from %s. GOMAXPROCS %d; "+
		"load average %s at the start, %s at the end (other work on the machine makes figures noisy).\n\n",
		runs, runtime.GOMAXPROCS(0), b.loadStart, loadAvg())
	fmt.Fprintf(w, "Setup, all on 127.0.0.1: a fake upstream (`shared/testkit`, in the benchmark's process, "+
		"serving from memory) with its own checksum database serves two pinned sets and `%s@%s` (a %d MiB zip of "+
		"incompressible data). The goal set is %d synthetic modules of real shapes (`testkit.Shaped`: each with the file "+
		"count, size and zip size of one of the real module zips in `testdata/bench/shapes.txt`; %d files, %.0f MiB of zips), "+
		"so that the go command does what it does with a real pinned set: most of its time goes to extracting files. "+
		"The context set is %d one-file modules (`example.com/gen/mNNN`, 600 bytes each), where only round trips count. "+
		"The server logs one JSON line per request to a file, as a user runs it; nginx (%d workers, sendfile, "+
		"keep-alive) logs an access line per request to a file too. The requests/s load generator "+
		"(in `bench/core`) keeps %d HTTP/1.1 connections with one request in flight each, cycling over the "+
		"%d `.mod` files of the one-file set, after %d warm-up requests; the same for both servers. "+
		"`go mod download` runs in a module that requires every module of a set, with its go.sum "+
		"(so the go command itself never asks the checksum database, while the server verifies every fill), "+
		"a fresh GOMODCACHE each time, after sync(2). The checksum database holds every module before the first "+
		"measurement, as the public one holds every public module. The CPU row adds up the user and system time of "+
		"the go command (from getrusage) and of the server (from /proc/PID/stat) over each cold run, against the go "+
		"command's over the direct run before it (medians; the fake upstream's, in the benchmark's process, is in "+
		"neither): on a machine of 2 CPUs, what the server spends verifying and storing comes out of the go command's share.",
		bigPath, bigVersion, b.cfg.zipMiB, len(b.shaped.mods), files, mib(zipBytes), len(b.tiny.mods),
		b.cfg.nginxWorkers, b.cfg.conns, len(b.tiny.mods), b.cfg.warmup)
	if b.cfg.latency > 0 {
		fmt.Fprintf(w, " The context row delays every answer of the upstream (checksum database included) by %s "+
			"(`testkit.Upstream.Delay`), for one more direct and one more cold run.", b.cfg.latency)
	}
	fmt.Fprintf(w, "\n\n")
	fmt.Fprintf(w, "Commands (`$TMP` is the benchmark's temporary directory; ports and key are chosen at run time):\n\n```sh\n%s\n```\n\n",
		strings.Join(b.commands, "\n"))
	fmt.Fprintf(w, "<details><summary>nginx.conf</summary>\n\n```nginx\n%s```\n</details>\n",
		fmt.Sprintf(nginxConf, "$TMP", "127.0.0.1:PORT", "$TMP/STORE", b.cfg.nginxWorkers))
}

// reportByRun lists, under the table, the ratio of each run of the rows measured more than
// once: how far one run may land from the median on this machine.
func reportByRun(w io.Writer, rows []row) {
	header := false
	for _, r := range rows {
		if len(r.byRun) < 2 {
			continue
		}
		if !header {
			fmt.Fprintf(w, "\nRun by run, each ratio from the same run (for requests/s, the same pair of rounds):\n\n")
			header = true
		}
		ratios := make([]string, len(r.byRun))
		for i, x := range r.byRun {
			ratios[i] = fmt.Sprintf("%.2fx", x)
		}
		fmt.Fprintf(w, "- %s: %s\n", r.metric, strings.Join(ratios, ", "))
	}
}

// medianOf returns the median of xs (the lower middle one of an even count).
func medianOf[T int64 | float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// thousands formats a rate as an integer with thousands separators.
func thousands(f float64) string {
	s := fmt.Sprintf("%.0f", f)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
