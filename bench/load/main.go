// Command load measures the self-hosted server (functions/server) under the mixed load of
// issue 6 and prints its requests per second and latencies as a markdown section on standard
// output, progress on standard error. bench/run.sh (make bench) runs it and puts its output in
// docs/BENCHMARKS.md.
//
//	go run ./bench/load [-requests 10000] [-clients 256] [-modules 60] [-timeout 5m]
//
// The load is that of functions/server's TestMixedLoad: -requests requests from -clients
// concurrent clients sharing one keep-alive http.Client (a connection each) on 127.0.0.1, mixing
// hits (stored .info, .mod and .zip), misses (modules not yet stored, filled from the upstream
// and verified against its checksum database), module lists, missing versions (404) and bad
// requests (404, 414). Everything is hermetic: a fake upstream with its own checksum database (shared/testkit)
// serves -modules synthetic modules, and the server is the binary `go build ./functions/server`
// makes, run as a user runs it, its JSON request log written to a file. A third of the requests'
// modules are fetched once before the load, so that it mixes hits with misses. Every latency is
// recorded, from sending the request to reading the whole answer.
//
// Each request class has the status it must be answered with; the answers that differ are
// counted and must be 0. That count is reported, not an error: the exit status is 1 only when
// the measurement could not be made.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/mod/module"

	"github.com/modmirror/modmirror/shared/testkit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench/load:", err)
		os.Exit(1)
	}
}

// config holds the benchmark's parameters.
type config struct {
	requests, clients, modules int
	timeout                    time.Duration
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("bench/load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.requests, "requests", 10000, "requests of the mixed load")
	fs.IntVar(&c.clients, "clients", 256, "concurrent clients")
	fs.IntVar(&c.modules, "modules", 60, "synthetic modules the upstream serves")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Minute, "limit for the whole benchmark")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	case c.requests < 1 || c.requests > 1_000_000:
		return nil, errors.New("-requests must be 1 to 1,000,000")
	case c.clients < 1 || c.clients > 1000:
		return nil, errors.New("-clients must be 1 to 1000")
	case c.modules < 3 || c.modules > 1000:
		return nil, errors.New("-modules must be 3 to 1000")
	case c.timeout <= 0:
		return nil, errors.New("-timeout must be positive")
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	loadStart := loadAvg()

	dir, err := os.MkdirTemp("", "bench-load-")
	if err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	h := testkit.NewHarness(ctx, dir)
	defer h.Close()
	return h.Catch(func() error {
		res, err := measure(ctx, h, c, dir, stderr)
		if err != nil {
			return err
		}
		report(stdout, c, res, loadStart)
		return nil
	})
}

// A class is a kind of request of the mixed load and the status it must be answered with.
type class struct {
	name   string
	status int
}

var (
	hit     = &class{"stored `.info`, `.mod`, `.zip` (hit)", http.StatusOK}
	miss    = &class{"`.info`, `.mod`, `.zip` not stored before the load (miss, then hits)", http.StatusOK}
	list    = &class{"`@v/list`", http.StatusOK}
	missing = &class{"missing version (404)", http.StatusNotFound}
	bad     = &class{"bad request (404, 414)", 0} // each request has its own status
	classes = []*class{hit, miss, list, missing, bad}
)

// A request is one request of the mixed load.
type request struct {
	path   string
	status int
	class  *class
}

// requests returns the requests of functions/server's TestMixedLoad: for every module its .info,
// .mod, .zip and list, and for every tenth a missing version; warm, the first third of them, is
// sent before the load (its .info, .mod and .zip are hits). And hostile, the bad requests that
// make every fifth request of the load.
func requests(mods []*testkit.Module) (reqs, warm, hostile []request, err error) {
	for i, m := range mods {
		esc, err := module.EscapePath(m.Path)
		if err != nil {
			return nil, nil, nil, err
		}
		for _, ext := range []string{".info", ".mod", ".zip"} {
			reqs = append(reqs, request{"/" + esc + "/@v/" + m.Version + ext, http.StatusOK, miss})
		}
		reqs = append(reqs, request{"/" + esc + "/@v/list", http.StatusOK, list})
		if i%10 == 0 {
			reqs = append(reqs, request{"/" + esc + "/@v/v1.99.0.info", http.StatusNotFound, missing})
		}
	}
	warm = reqs[:len(reqs)/3] // the same requests: their .info, .mod and .zip are hits in reqs too
	for i := range warm {
		if warm[i].class == miss {
			warm[i].class = hit
		}
	}
	hostile = []request{
		{"/../../etc/passwd", 404, bad}, {"/%2e%2e/x/@v/list", 404, bad}, {"/example.com%2fx/@v/list", 404, bad},
		{"/example.com/X/@v/list", 404, bad}, {"/example.com/x/@v/v1.0.zip", 404, bad},
		{"/" + strings.Repeat("a", 3000), http.StatusRequestURITooLong, bad},
	}
	return reqs, warm, hostile, nil
}

// result is what one load measured.
type result struct {
	took      time.Duration
	latencies []time.Duration // of every request, in the order they were sent
	sent      []*class        // the class of every request
	failed    []bool          // whether every request had the answer its class expects
	warmBad   int             // unexpected answers during the warm-up
	upstream  int             // requests the upstream served during the load
	conns     int             // connections the clients opened during the load
	examples  []string        // some unexpected answers
}

func measure(ctx context.Context, h *testkit.Harness, c *config, dir string, progress io.Writer) (*result, error) {
	logf := func(format string, args ...any) { fmt.Fprintf(progress, "bench/load: "+format+"\n", args...) }
	repo, err := testkit.RepoRoot()
	if err != nil {
		return nil, err
	}
	logf("go build ./functions/server")
	bin := filepath.Join(dir, "server")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./functions/server")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./functions/server: %w\n%s", err, out)
	}

	logf("fake upstream with %d synthetic modules", c.modules)
	mods := testkit.Synthetic(c.modules)
	up := testkit.NewUpstream(h, testkit.Options{Modules: mods})
	reqs, warm, hostile, err := requests(mods)
	if err != nil {
		return nil, err
	}

	logFile := filepath.Join(dir, "server.log")
	url, err := startServer(ctx, h, bin, logFile,
		"-listen", "127.0.0.1:0", "-store", filepath.Join(dir, "store"), "-upstream", up.URL, "-sumdb", up.SumDBKey)
	if err != nil {
		return nil, err
	}

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	dial := tr.DialContext
	var dials atomic.Int64
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return dial(ctx, network, addr)
	}
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost, tr.MaxConnsPerHost = c.clients, c.clients, c.clients
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	defer tr.CloseIdleConnections()

	res := &result{
		latencies: make([]time.Duration, c.requests),
		sent:      make([]*class, c.requests),
		failed:    make([]bool, c.requests),
	}
	var mu sync.Mutex
	unexpected := func(r request, status int, err error) {
		mu.Lock()
		defer mu.Unlock()
		if len(res.examples) < 10 {
			res.examples = append(res.examples, fmt.Sprintf("%.80s: %d (%v); want %d", r.path, status, err, r.status))
		}
	}

	logf("warm-up: %d requests, one at a time", len(warm))
	for _, r := range warm {
		status, err := get(ctx, client, url+r.path)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if status != r.status {
			res.warmBad++
			unexpected(r, status, err)
		}
	}

	logf("load: %d requests from %d clients", c.requests, c.clients)
	up.ResetRequests()
	dials.Store(0)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range c.clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= c.requests || ctx.Err() != nil {
					return
				}
				r := reqs[i%len(reqs)]
				if i%5 == 0 {
					r = hostile[(i/5)%len(hostile)]
				}
				t0 := time.Now()
				status, err := get(ctx, client, url+r.path)
				res.latencies[i] = time.Since(t0)
				res.sent[i] = r.class
				if status != r.status {
					res.failed[i] = true
					unexpected(r, status, err)
				}
			}
		})
	}
	wg.Wait()
	res.took = time.Since(start)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("the load did not finish: %w", err)
	}
	res.upstream = len(up.Requests())
	res.conns = int(dials.Load())
	if n := res.unexpected() + res.warmBad; n > 0 {
		log, _ := os.ReadFile(logFile)
		logf("%d unexpected answers, e.g.:\n\t%s\nthe server log's last lines:\n%s",
			n, strings.Join(res.examples, "\n\t"), tail(string(log), 20))
	}
	return res, nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// unexpected returns how many answers of the load were not the one expected.
func (r *result) unexpected() int {
	n := 0
	for _, f := range r.failed {
		if f {
			n++
		}
	}
	return n
}

// get GETs url and reads the whole answer; it returns the status, or 0 and the error.
func get(ctx context.Context, c *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// startServer runs the server binary bin with args, its standard output and error written to
// logFile (a file, so that the busy server's log is not held in memory), waits for its "serving"
// log line and returns the URL in it. Closing h stops the server.
func startServer(ctx context.Context, h *testkit.Harness, bin, logFile string, args ...string) (string, error) {
	p := testkit.StartProcessLogging(h, exec.Command(bin, args...), logFile)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	url, err := p.WaitServing(ctx)
	if err != nil {
		return "", fmt.Errorf("the server did not start: %w", err)
	}
	return url, nil
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of sorted, which is not
// empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// thousands formats n with commas between groups of three digits.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func report(w io.Writer, c *config, r *result, loadStart string) {
	all := slices.Clone(r.latencies)
	slices.Sort(all)
	bad := r.unexpected()
	verdict := "✅"
	if bad > 0 {
		verdict = "❌ (must be 0)"
	}
	fmt.Fprintf(w, "### Mixed load (issue 6)\n\n")
	fmt.Fprintf(w, "| measure | value |\n|---|---|\n")
	fmt.Fprintf(w, "| requests | %s |\n", thousands(c.requests))
	fmt.Fprintf(w, "| concurrent clients | %d |\n", c.clients)
	fmt.Fprintf(w, "| duration | %.3f s |\n", r.took.Seconds())
	fmt.Fprintf(w, "| requests/s | %s |\n", thousands(int(math.Round(float64(c.requests)/r.took.Seconds()))))
	fmt.Fprintf(w, "| p50 latency | %s |\n", ms(percentile(all, 50)))
	fmt.Fprintf(w, "| p99 latency | %s |\n", ms(percentile(all, 99)))
	fmt.Fprintf(w, "| max latency | %s |\n", ms(all[len(all)-1]))
	fmt.Fprintf(w, "| unexpected answers | %d %s |\n", bad, verdict)

	fmt.Fprintf(w, "\n| request class | requests | p50 | p99 | max | unexpected |\n|---|---|---|---|---|---|\n")
	for _, cl := range classes {
		var lat []time.Duration
		n := 0
		for i, s := range r.sent {
			if s == cl {
				lat = append(lat, r.latencies[i])
				if r.failed[i] {
					n++
				}
			}
		}
		if len(lat) == 0 {
			continue
		}
		slices.Sort(lat)
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %d |\n", cl.name, thousands(len(lat)),
			ms(percentile(lat, 50)), ms(percentile(lat, 99)), ms(lat[len(lat)-1]), n)
	}

	fmt.Fprintf(w, "\nThe load of functions/server's TestMixedLoad, on 127.0.0.1: %s requests from %d concurrent "+
		"clients sharing one keep-alive `http.Client` (up to %d connections kept open; %d opened during the load), "+
		"every latency from sending the request to reading the whole answer, percentiles by nearest rank. ",
		thousands(c.requests), c.clients, c.clients, r.conns)
	fmt.Fprintf(w, "The server is `go build ./functions/server` run as `server -listen 127.0.0.1:0 -store DIR "+
		"-upstream http://127.0.0.1:PORT -sumdb sumdb.test+KEY 2>server.log` (one JSON log line a request); its fake "+
		"upstream (testkit, %d synthetic modules, its own checksum database) and the clients run in the benchmark's "+
		"process, on the same CPUs. Before the load, the first third of the modules' requests were sent once, one at "+
		"a time (%d unexpected answers then); during it the upstream served %d requests (fills, lists, checksum "+
		"database). Load average before the run: %s.\n",
		c.modules, r.warmBad, r.upstream, loadStart)
}

// loadAvg returns the first three fields of /proc/loadavg, or "unknown".
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
