// Command core benchmarks modmirror's self-hosted server (functions/server) against its
// references and prints the figures as a markdown table on standard output, progress on standard
// error. bench/run.sh (make bench) runs it and puts its output in docs/BENCHMARKS.md.
//
//	go run ./bench/core [-modules 100] [-requests 50000] [-conns 32] [-zip-mib 200] [-runs 1]
//	                    [-latency 10ms] [-server BIN] [-keep]
//
// Everything is hermetic and on 127.0.0.1: a fake upstream with its own checksum database
// (shared/testkit) serves two pinned sets, modules of real shapes (testkit.Shaped, from
// testdata/bench/shapes.txt) and -modules one-file modules, and one big module; the server is the
// binary `go build ./functions/server` makes, run as a user runs it (its JSON request log written
// to a file). It measures, each from one run (requests/s and go mod download: the median of -runs):
//
//   - cached .mod requests per second through the server, against nginx serving the same store
//     directory as static files, with the same load generator (goal: at least 0.9x nginx);
//   - `go mod download` of a module requiring every module of the real-shaped set, with a fresh
//     module cache, through the server with a filled store (warm; goal at most 1.1x) and with an
//     empty store (cold; goal at most 1.3x), against downloading straight from the upstream, with
//     the CPU time the go command and the server spend in the cold runs beside the go command's in
//     the direct ones (on 2 CPUs, the server's share is what cold costs beyond direct); and,
//     for context, the same for the one-file set, where only round trips count, and once more
//     with every upstream answer delayed by -latency, as from an upstream across a network
//     rather than in the same process;
//   - the server's peak resident set size (VmHWM) while it fills and serves a -zip-mib MiB zip
//     (goal at most 64 MiB).
//
// A missed goal is reported in the table, not as an error; the exit status is 1 only when a
// measurement could not be made.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/modmirror/modmirror/shared/testkit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench/core:", err)
		os.Exit(1)
	}
}

// config holds the benchmark's parameters.
type config struct {
	modules      int
	requests     int
	warmup       int
	conns        int
	zipMiB       int64
	runs         int
	nginxWorkers int
	timeout      time.Duration
	latency      time.Duration
	serverBin    string
	keep         bool
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("bench/core", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.modules, "modules", 100, "one-file modules in the context set")
	fs.IntVar(&c.requests, "requests", 50000, "requests per requests-per-second measurement")
	fs.IntVar(&c.warmup, "warmup", 5000, "requests sent, and not counted, before each such measurement")
	fs.IntVar(&c.conns, "conns", 32, "concurrent keep-alive connections of the load generator")
	fs.Int64Var(&c.zipMiB, "zip-mib", 200, "size of the big module's zip, in MiB")
	fs.IntVar(&c.runs, "runs", 1, "runs of each requests/s and go mod download measurement (the median is reported)")
	fs.IntVar(&c.nginxWorkers, "nginx-workers", runtime.NumCPU(), "nginx worker processes")
	fs.DurationVar(&c.timeout, "timeout", 20*time.Minute, "limit for the whole benchmark")
	fs.DurationVar(&c.latency, "latency", 10*time.Millisecond, "upstream delay of the context measurement of cold go mod download (0: skip it)")
	fs.StringVar(&c.serverBin, "server", "", "server binary to measure (default: go build ./functions/server)")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary directory (stores, logs) for inspection")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	case c.modules < 1 || c.modules > 1000:
		return nil, errors.New("-modules must be 1 to 1000")
	case c.requests < 1 || c.requests > 10_000_000 || c.warmup < 0 || c.warmup > 10_000_000:
		return nil, errors.New("-requests must be 1 to 10,000,000 and -warmup 0 to 10,000,000")
	case c.conns < 1 || c.conns > 1000:
		return nil, errors.New("-conns must be 1 to 1000")
	case c.zipMiB < 1 || c.zipMiB > 450:
		return nil, errors.New("-zip-mib must be 1 to 450 (module zips are limited to 500 MiB)")
	case c.runs < 1 || c.runs > 20:
		return nil, errors.New("-runs must be 1 to 20")
	case c.nginxWorkers < 1 || c.nginxWorkers > 64:
		return nil, errors.New("-nginx-workers must be 1 to 64")
	case c.latency < 0 || c.latency > time.Second:
		return nil, errors.New("-latency must be 0 to 1s")
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

	root, err := os.MkdirTemp("", "modmirror-bench-")
	if err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	if c.keep {
		fmt.Fprintln(stderr, "bench/core: keeping", root)
	} else {
		defer os.RemoveAll(root)
	}
	// nginx's workers run as an unprivileged user when it is started as root: they must be able
	// to read the store directories under root.
	if err := os.Chmod(root, 0o755); err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	tb := testkit.NewHarness(ctx, root)
	defer tb.Close()

	b := &bench{cfg: c, tb: tb, root: root, progress: stderr, loadStart: loadAvg()}
	if err := tb.Catch(b.setup); err != nil {
		return err
	}
	rows := b.measure(ctx)
	b.report(stdout, rows)
	var errs []error
	for _, r := range rows {
		if r.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.metric, r.err))
		}
	}
	return errors.Join(errs...)
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
