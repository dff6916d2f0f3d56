// Command generator benchmarks the mirror generator against its reference, `go mod download all`
// of the same pinned set into an empty module cache, both from one local fake upstream (with its
// own checksum database) in one run, and prints a markdown table of the figures, the ratios and
// the goals:
//
//   - a cold generation of at least 100 modules at least 3x faster than the go command;
//   - the generator's peak RSS at most 128 MiB;
//   - a no-op re-run under 1 s.
//
// Run it from the repository: go run ./bench/generator [-n 100] [-runs 3]. It exits 0 once it has
// measured, whether or not the goals are met (-strict makes a missed goal exit 1).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/modmirror/modmirror/shared/testkit"
)

func main() {
	n := flag.Int("n", 100, "synthetic modules in the pinned set")
	runs := flag.Int("runs", 3, "measurements of each, the median reported")
	jobs := flag.Int("j", 0, "the generator's -j (0: its default)")
	strict := flag.Bool("strict", false, "exit 1 if a goal is missed")
	flag.Parse()
	met, err := harnessed(func(tb *testkit.Harness) (bool, error) { return run(tb, os.Stdout, *n, *runs, *jobs) })
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/generator:", err)
		os.Exit(1)
	}
	if *strict && !met {
		os.Exit(1)
	}
}

// harnessed runs fn with a testkit.Harness whose temporary directories live under one directory
// removed at the end, and returns what fn returned or the failure it reported through the
// harness.
func harnessed(fn func(*testkit.Harness) (bool, error)) (met bool, err error) {
	dir, err := os.MkdirTemp("", "bench-generator-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tb := testkit.NewHarness(ctx, dir)
	defer tb.Close()
	err = tb.Catch(func() error {
		var err error
		met, err = fn(tb)
		return err
	})
	return met, err
}

// measure is one run of a command.
type measure struct {
	wall   time.Duration
	maxRSS int64 // bytes
}

// runTimed runs cmd and measures its wall time and peak resident set.
func runTimed(cmd *exec.Cmd) (measure, error) {
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	if err != nil {
		return measure{}, fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = int64(ru.Maxrss) * 1024 // kilobytes on Linux
	}
	return measure{wall: wall, maxRSS: rss}, nil
}

func median(ms []measure, f func(measure) float64) float64 {
	v := make([]float64, len(ms))
	for i, m := range ms {
		v[i] = f(m)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func run(tb *testkit.Harness, out io.Writer, n, runs, jobs int) (bool, error) {
	root, err := testkit.RepoRoot()
	if err != nil {
		return false, err
	}
	work := tb.TempDir()

	fmt.Fprintf(os.Stderr, "building the generator...\n")
	gen := filepath.Join(work, "generator")
	build := exec.Command("go", "build", "-o", gen, "./generator")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return false, fmt.Errorf("go build ./generator: %v\n%s", err, out)
	}

	mods := testkit.Synthetic(n)
	up := testkit.NewUpstream(tb, testkit.Options{Modules: mods})
	project := filepath.Join(work, "project")
	if err := os.MkdirAll(project, 0o755); err != nil {
		return false, err
	}
	var gomod strings.Builder
	gomod.WriteString("module example.com/bench\n\ngo 1.21\n\nrequire (\n")
	for _, m := range mods {
		fmt.Fprintf(&gomod, "\t%s %s\n", m.Path, m.Version)
	}
	gomod.WriteString(")\n")
	if err := os.WriteFile(filepath.Join(project, "go.mod"), []byte(gomod.String()), 0o644); err != nil {
		return false, err
	}
	if err := os.WriteFile(filepath.Join(project, "go.sum"), testkit.GoSumFile(mods...), 0o644); err != nil {
		return false, err
	}

	var ref, cold, noop []measure
	for i := range runs {
		fmt.Fprintf(os.Stderr, "run %d of %d...\n", i+1, runs)
		g := testkit.NewGoEnv(tb, up.URL, up)
		g.Set("GOSUMDB", up.SumDBKey)
		m, err := runTimed(g.Command(project, "mod", "download", "all"))
		if err != nil {
			return false, err
		}
		ref = append(ref, m)

		dir := filepath.Join(tb.TempDir(), "mirror")
		args := []string{"-o", dir, "-upstream", up.URL, "-sumdb", up.SumDBKey, "-progress", "off", filepath.Join(project, "go.sum")}
		if jobs > 0 {
			args = append(args, "-j", fmt.Sprint(jobs))
		}
		genCmd := func() *exec.Cmd {
			c := exec.Command(gen, args...)
			c.Env = g.Env()
			return c
		}
		if m, err = runTimed(genCmd()); err != nil {
			return false, err
		}
		cold = append(cold, m)
		up.ResetRequests()
		if m, err = runTimed(genCmd()); err != nil {
			return false, err
		}
		if r := up.Requests(); len(r) > 0 {
			return false, fmt.Errorf("the no-op re-run made %d upstream requests", len(r))
		}
		noop = append(noop, m)
	}

	secs := func(m measure) float64 { return m.wall.Seconds() }
	mib := func(m measure) float64 { return float64(m.maxRSS) / (1 << 20) }
	refWall, coldWall, noopWall := median(ref, secs), median(cold, secs), median(noop, secs)
	refRSS, coldRSS, noopRSS := median(ref, mib), median(cold, mib), median(noop, mib)
	speedup := refWall / coldWall
	mark := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	met := speedup >= 3 && coldRSS <= 128 && noopRSS <= 128 && noopWall < 1

	fmt.Fprintf(out, "### Generator: %d modules, median of %d runs\n\n", n, runs)
	fmt.Fprintf(out, "| measure | generator | `go mod download all` | ratio | goal | |\n")
	fmt.Fprintf(out, "|---|---|---|---|---|---|\n")
	fmt.Fprintf(out, "| cold run, wall time | %.3f s | %.3f s | %.1fx faster | >= 3x faster | %s |\n",
		coldWall, refWall, speedup, mark(speedup >= 3))
	fmt.Fprintf(out, "| cold run, peak RSS | %.1f MiB | %.1f MiB | %.2fx | <= 128 MiB | %s |\n",
		coldRSS, refRSS, coldRSS/refRSS, mark(coldRSS <= 128))
	fmt.Fprintf(out, "| no-op re-run, wall time | %.3f s | | %.1f%% of the cold run | < 1 s | %s |\n",
		noopWall, 100*noopWall/coldWall, mark(noopWall < 1))
	fmt.Fprintf(out, "| no-op re-run, peak RSS | %.1f MiB | | | <= 128 MiB | %s |\n", noopRSS, mark(noopRSS <= 128))
	fmt.Fprintf(out, "\nBoth from one local fake upstream (testkit, %d synthetic modules); `go mod download all` into an empty module cache with a complete go.sum (no checksum-database lookups); the generator with its default -j, checking every module against go.sum and the checksum database and writing the lookups, tiles, lists, manifest. The no-op re-run made no upstream request.\n", n)
	return met, nil
}
