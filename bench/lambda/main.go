// Command lambda benchmarks the AWS Lambda host and prints a markdown table:
//
//   - the bootstrap's time from process start to its first answered invocation (goal under
//     50 ms), under the Runtime API emulator, the answer a stored .info read from S3;
//   - the bootstrap's size as deployed (linux/arm64) and as run here (goal under 20 MiB);
//   - `go mod download` of the fixture project (testdata/project: six modules, one of them
//     +incompatible) with a fresh module cache, through the emulated function and through the
//     self-hosted server on the same S3 store (versitygw on 127.0.0.1): cold (empty store, every
//     module filled from the fake upstream and verified) and warm (the store full).
//
// Run it from the repository:
//
//	go run ./bench/lambda [-runs 10] [-downloads 3]
//
// It needs versitygw (`make deps`). Figures are medians; the machine's other load shows in them.
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
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/modmirror/modmirror/functions/lambda/lambdaemu"
	"github.com/modmirror/modmirror/shared/store/s3store/s3test"
	"github.com/modmirror/modmirror/shared/testkit"
)

func main() {
	runs := flag.Int("runs", 10, "cold starts to time")
	downloads := flag.Int("downloads", 3, "go mod download runs per cell")
	flag.Parse()
	if err := run(*runs, *downloads, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench/lambda:", err)
		os.Exit(1)
	}
}

// figures are the results.
type figures struct {
	start, startClient     []time.Duration
	sizeDeploy, sizeHere   int64
	serverSize             int64
	fnCold, fnWarm         []time.Duration
	serverCold, serverWarm []time.Duration
	invocationsPerDownload int
}

// run benchmarks inside testing.Benchmark, which lends the test kit (fake upstream, versitygw,
// go command) a testing.B; it runs the work once.
func run(runs, downloads int, stdout, stderr io.Writer) error {
	var (
		f                 figures
		err               error
		started, measured bool
	)
	testing.Benchmark(func(b *testing.B) {
		if started {
			return
		}
		started = true
		err = measure(b, runs, downloads, &f, stderr)
		measured = true // not reached if the test kit failed b
	})
	if !measured {
		return errors.New("the test kit failed (is versitygw installed? `make deps`; `go test ./functions/lambda` shows why)")
	}
	if err != nil {
		return err
	}
	report(stdout, f, runs, downloads)
	return nil
}

func measure(b *testing.B, runs, downloads int, f *figures, progress io.Writer) error {
	ctx := b.Context()
	root, err := testkit.RepoRoot()
	if err != nil {
		return err
	}
	bin := b.TempDir()
	bootstrap := filepath.Join(bin, "bootstrap")
	fmt.Fprintln(progress, "building the bootstrap and the server...")
	if err := lambdaemu.Build(ctx, root, "./functions/lambda", bootstrap); err != nil {
		return err
	}
	deploy := filepath.Join(bin, "bootstrap-arm64")
	cmd := exec.CommandContext(ctx, "go", append(append([]string{"build"}, lambdaemu.BuildFlags()...), "-o", deploy, "./functions/lambda")...)
	cmd.Dir, cmd.Env = root, append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build for arm64: %v\n%s", err, out)
	}
	server := filepath.Join(bin, "server")
	cmd = exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", server, "./functions/server")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build server: %v\n%s", err, out)
	}
	for p, size := range map[string]*int64{deploy: &f.sizeDeploy, bootstrap: &f.sizeHere, server: &f.serverSize} {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		*size = fi.Size()
	}

	srv := s3test.Start(b)
	bucket := srv.NewBucket(b)
	up := testkit.NewUpstream(b, testkit.Options{Modules: testkit.MustLoadFixtures(b)})
	env := func(prefix string) []string {
		return append(srv.Env(),
			"MODMIRROR_STORE=s3://"+bucket+"/"+prefix,
			"MODMIRROR_UPSTREAM="+up.URL,
			"MODMIRROR_SUMDB="+up.SumDBKey,
			"TMPDIR="+b.TempDir(),
			"HOME="+b.TempDir(),
		)
	}
	download := func(proxyURL string) (time.Duration, error) {
		g := testkit.NewGoEnv(b, proxyURL, up)
		g.Set("GOSUMDB", up.SumDBKey)
		cmd := g.Command(testkit.CopyProject(b), "mod", "download")
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("go mod download through %s: %v\n%s", proxyURL, err, out)
		}
		return time.Since(start), nil
	}

	// go mod download, cold then warm, through the function and through the server.
	for i := range downloads {
		fmt.Fprintf(progress, "go mod download, round %d of %d...\n", i+1, downloads)
		prefix := fmt.Sprintf("fn-%d", i)
		fn, err := lambdaemu.Start(ctx, lambdaemu.Options{Bootstrap: bootstrap, Env: env(prefix)})
		if err != nil {
			return err
		}
		cold, err := download(fn.URL)
		if err == nil {
			f.fnCold = append(f.fnCold, cold)
			before := fn.Invocations()
			var warm time.Duration
			if warm, err = download(fn.URL); err == nil {
				f.fnWarm = append(f.fnWarm, warm)
				f.invocationsPerDownload = fn.Invocations() - before
			}
		}
		fn.Close()
		if err != nil {
			return err
		}

		sp, spURL, err := startServer(ctx, b, server, env(fmt.Sprintf("server-%d", i)))
		if err != nil {
			return err
		}
		cold, err = download(spURL)
		if err == nil {
			f.serverCold = append(f.serverCold, cold)
			var warm time.Duration
			if warm, err = download(spURL); err == nil {
				f.serverWarm = append(f.serverWarm, warm)
			}
		}
		sp.Stop()
		if err != nil {
			return err
		}
	}

	// Cold starts: a fresh process per run, its first invocation queued before it asks.
	fmt.Fprintf(progress, "timing %d cold starts...\n", runs)
	const hit = "/example.com/lib/@v/v1.1.0.info"
	for range runs {
		began := time.Now()
		fn, err := lambdaemu.Start(ctx, lambdaemu.Options{Bootstrap: bootstrap, Env: env("fn-0")})
		if err != nil {
			return err
		}
		resp, err := http.Get(fn.URL + hit)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("GET %s: %s", hit, resp.Status)
			}
		}
		client := time.Since(began)
		// The emulator notes the answer just after passing its last byte on, which the
		// client may have read a moment before.
		for deadline := time.Now().Add(time.Second); fn.FirstAnswer().IsZero() && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		if err == nil && fn.FirstAnswer().IsZero() {
			err = errors.New("the emulator noted no answer")
		}
		first := fn.FirstAnswer().Sub(fn.Started())
		fn.Close()
		if err != nil {
			return err
		}
		f.start = append(f.start, first)
		f.startClient = append(f.startClient, client)
	}
	return nil
}

// startServer runs the self-hosted server on 127.0.0.1 with env, waits for its "serving" line
// and returns it with its URL; it is stopped when b ends, if Stop did not.
func startServer(ctx context.Context, b *testing.B, bin string, env []string) (*testkit.Process, string, error) {
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), env...)
	p := testkit.StartProcess(b, cmd)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	url, err := p.WaitServing(ctx)
	if err != nil {
		p.Stop()
		return nil, "", fmt.Errorf("server did not start: %w", err)
	}
	return p, url, nil
}

func report(w io.Writer, f figures, runs, downloads int) {
	fmt.Fprintf(w, "Lambda host (`go run ./bench/lambda`), %s/%s, %d CPUs, %s; store: versitygw on 127.0.0.1.\n\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	fmt.Fprintln(w, "| measure | Lambda function (emulated) | self-hosted server | goal |")
	fmt.Fprintln(w, "|---|---|---|---|")
	fmt.Fprintf(w, "| process start to first answered invocation (median of %d; min–max) | %s (%s–%s) | | < 50 ms |\n",
		runs, ms(median(f.start)), ms(slices.Min(f.start)), ms(slices.Max(f.start)))
	fmt.Fprintf(w, "| client's wait for that first answer, process start included (median) | %s | | |\n", ms(median(f.startClient)))
	fmt.Fprintf(w, "| binary size, linux/arm64 as deployed | %s | | < 20 MiB |\n", mib(f.sizeDeploy))
	fmt.Fprintf(w, "| binary size, %s/%s as run here | %s | %s | |\n", "linux", runtime.GOARCH, mib(f.sizeHere), mib(f.serverSize))
	fmt.Fprintf(w, "| `go mod download` of the fixture project, cold store (median of %d) | %s | %s | |\n",
		downloads, ms(median(f.fnCold)), ms(median(f.serverCold)))
	fmt.Fprintf(w, "| `go mod download` of the fixture project, warm store (median of %d) | %s | %s | |\n",
		downloads, ms(median(f.fnWarm)), ms(median(f.serverWarm)))
	fmt.Fprintf(w, "| invocations per warm download | %d | | |\n", f.invocationsPerDownload)
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
