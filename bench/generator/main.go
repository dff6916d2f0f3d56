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
	if len(os.Args) > 3 && os.Args[1] == rusageCommand {
		os.Exit(rusage(os.Args[2], os.Args[3], os.Args[4:]))
	}
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

// rusageCommand makes the benchmark's binary run a command and report its wall time and peak
// resident set: a small process starting the measured one, because a process started straight
// from the benchmark's (whose fake upstream holds every module in memory) would be charged with
// the benchmark's memory, shared with it until exec.
const rusageCommand = "-rusage-of"

// rusage runs name with args and writes "WALL_NANOSECONDS MAXRSS_BYTES" to the file report.
func rusage(report, name string, args []string) int {
	cmd := exec.Command(name, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if cmd.ProcessState == nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = int64(ru.Maxrss) * 1024 // kilobytes on Linux
	}
	if err := os.WriteFile(report, fmt.Appendf(nil, "%d %d\n", wall.Nanoseconds(), rss), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return cmd.ProcessState.ExitCode()
}

// runTimed runs cmd, after flushing what earlier runs left to write to the disk, and measures
// its wall time and peak resident set.
func runTimed(cmd *exec.Cmd) (measure, error) {
	self, err := os.Executable()
	if err != nil {
		return measure{}, err
	}
	report, err := os.CreateTemp("", "rusage-")
	if err != nil {
		return measure{}, err
	}
	report.Close()
	defer os.Remove(report.Name())
	wrapped := exec.Command(self, append([]string{rusageCommand, report.Name(), cmd.Path}, cmd.Args[1:]...)...)
	wrapped.Env, wrapped.Dir = cmd.Env, cmd.Dir
	syscall.Sync()
	if out, err := wrapped.CombinedOutput(); err != nil {
		return measure{}, fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	data, err := os.ReadFile(report.Name())
	if err != nil {
		return measure{}, err
	}
	var ns, rss int64
	if _, err := fmt.Sscan(string(data), &ns, &rss); err != nil {
		return measure{}, fmt.Errorf("%s: rusage report %q: %v", strings.Join(cmd.Args, " "), data, err)
	}
	return measure{wall: time.Duration(ns), maxRSS: rss}, nil
}

func median(ms []measure, f func(measure) float64) float64 {
	v := make([]float64, len(ms))
	for i, m := range ms {
		v[i] = f(m)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// set is one pinned set of modules and the figures measured on it.
type set struct {
	name            string
	mods            []*testkit.Module
	ref, cold, noop []measure
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
	shapes, err := testkit.LoadShapes()
	if err != nil {
		return false, err
	}
	fmt.Fprintf(os.Stderr, "synthesizing %d modules of real shapes...\n", len(shapes))
	sets := []*set{
		{name: "shaped", mods: testkit.Shaped(shapes)},
		{name: "tiny", mods: testkit.Synthetic(n)},
	}
	for _, s := range sets {
		if err := s.measure(tb, gen, runs, jobs); err != nil {
			return false, err
		}
	}

	secs := func(m measure) float64 { return m.wall.Seconds() }
	mib := func(m measure) float64 { return float64(m.maxRSS) / (1 << 20) }
	mark := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	shaped, tiny := sets[0], sets[1]
	refWall, coldWall, noopWall := median(shaped.ref, secs), median(shaped.cold, secs), median(shaped.noop, secs)
	refRSS, coldRSS, noopRSS := median(shaped.ref, mib), median(shaped.cold, mib), median(shaped.noop, mib)
	speedup := refWall / coldWall
	tinyRef, tinyCold, tinyNoop := median(tiny.ref, secs), median(tiny.cold, secs), median(tiny.noop, secs)
	met := speedup >= 3 && coldRSS <= 128 && noopRSS <= 128 && noopWall < 1

	files, zipBytes := testkit.Weigh(shaped.mods)
	fmt.Fprintf(out, "### Generator: %d modules of real shapes, median of %d runs\n\n", len(shaped.mods), runs)
	fmt.Fprintf(out, "| measure | generator | `go mod download all` | ratio | goal | |\n")
	fmt.Fprintf(out, "|---|---|---|---|---|---|\n")
	fmt.Fprintf(out, "| cold run, wall time | %.3f s | %.3f s | %.1fx faster | >= 3x faster | %s |\n",
		coldWall, refWall, speedup, mark(speedup >= 3))
	fmt.Fprintf(out, "| cold run, peak RSS | %.1f MiB | %.1f MiB | %.2fx | <= 128 MiB | %s |\n",
		coldRSS, refRSS, coldRSS/refRSS, mark(coldRSS <= 128))
	fmt.Fprintf(out, "| no-op re-run, wall time | %.3f s | | %.1f%% of the cold run | < 1 s | %s |\n",
		noopWall, 100*noopWall/coldWall, mark(noopWall < 1))
	fmt.Fprintf(out, "| no-op re-run, peak RSS | %.1f MiB | | | <= 128 MiB | %s |\n", noopRSS, mark(noopRSS <= 128))
	fmt.Fprintf(out, "| context: %d tiny modules (one 600-byte file each), cold | %.3f s | %.3f s | %.1fx faster | | |\n",
		len(tiny.mods), tinyCold, tinyRef, tinyRef/tinyCold)
	fmt.Fprintf(out, "| context: %d tiny modules, no-op re-run | %.3f s | | | | |\n", len(tiny.mods), tinyNoop)
	fmt.Fprintf(out, "\nThe pinned set: %d synthetic modules (`testkit.Shaped`), each with the file count, total size and zip size of one of %d real module zips (`testdata/bench/shapes.txt`, measured from a module cache holding modmirror's dependencies and versitygw's): %d files, %.0f MiB of zips. ", len(shaped.mods), len(shapes), files, float64(zipBytes)/(1<<20))
	fmt.Fprintf(out, "Both from one local fake upstream (testkit, serving from memory, with its own checksum database); `go mod download all` into an empty module cache with a complete go.sum (no checksum-database lookups); the generator with its default -j, checking every module against go.sum and the checksum database and writing the lookups, tiles, lists, manifest. The no-op re-runs made no upstream request. ")
	fmt.Fprintf(out, "The tiny set measures per-module overhead alone: there the go command has almost nothing to extract, and the generator does more (the checksum database, the manifest) than it.\n")
	return met, nil
}

// measure runs the reference, a cold generation and a no-op re-run, runs times, on s's modules.
func (s *set) measure(tb *testkit.Harness, gen string, runs, jobs int) error {
	up := testkit.NewUpstream(tb, testkit.Options{Modules: s.mods})
	defer up.Close()
	project := testkit.NewProject(tb, s.mods)

	for i := range runs {
		fmt.Fprintf(os.Stderr, "%s set, run %d of %d...\n", s.name, i+1, runs)
		g := testkit.NewGoEnv(tb, up.URL, up)
		g.Set("GOSUMDB", up.SumDBKey)
		m, err := runTimed(g.Command(project, "mod", "download", "all"))
		if err != nil {
			return err
		}
		s.ref = append(s.ref, m)

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
			return err
		}
		s.cold = append(s.cold, m)
		fmt.Fprintf(os.Stderr, "%s set, run %d: go mod download all %.3f s, generator %.3f s (%.1fx faster)\n",
			s.name, i+1, s.ref[i].wall.Seconds(), m.wall.Seconds(), s.ref[i].wall.Seconds()/m.wall.Seconds())
		up.ResetRequests()
		if m, err = runTimed(genCmd()); err != nil {
			return err
		}
		if r := up.Requests(); len(r) > 0 {
			return fmt.Errorf("the no-op re-run made %d upstream requests", len(r))
		}
		s.noop = append(s.noop, m)
	}
	return nil
}
