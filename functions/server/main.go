// Command server is modmirror's self-hosted host: the GOPROXY protocol over net/http, storing in
// a local directory by default, filling misses from the toolchain's own upstream and verifying
// them against its checksum database.
//
//	server [-listen 127.0.0.1:8080] [-store DIR|s3://bucket/prefix] [-upstream LIST] [-sumdb NAME[+KEY [URL]]|off] [-offline]
//
// Every flag can also be set as MODMIRROR_<FLAG> in the environment (-public-url is
// MODMIRROR_PUBLIC_URL); unset, the upstream and checksum database come from `go env`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/modmirror/modmirror/shared/buildinfo"
	"github.com/modmirror/modmirror/shared/config"
	"github.com/modmirror/modmirror/shared/proxy"
	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/store/dirstore"
	"github.com/modmirror/modmirror/shared/store/storeurl"
	"github.com/modmirror/modmirror/shared/upstream"
)

func main() {
	tuneGC(os.Getenv)
	tuneProcs(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	var usage usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, &usage):
		fmt.Fprintln(os.Stderr, "modmirror:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "modmirror:", err)
		os.Exit(1)
	}
}

// usageError is a mistake on the command line (exit status 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// synopsis heads -h.
const synopsis = `usage: server [flags]

modmirror's self-hosted Go module proxy: the GOPROXY protocol on -listen, storing in -store,
filling misses from -upstream and verifying them against -sumdb (both from go env by default).`

// options are the server's settings after flags, environment and go env.
type options struct {
	config.Settings
	version               bool
	listen, storeDir      string
	tlsCert, tlsKey       string
	shutdownTimeout       time.Duration
	rateLimit             float64
	rateBurst, maxFills   int
	authFailures          int
	fillTimeout           time.Duration
	maxRequestHeaderBytes int
	readHeaderTimeout     time.Duration
	directGOPATH          string
	directJobs            int
}

func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { config.PrintUsage(stderr, fs, synopsis) }
	fs.BoolVar(&o.version, config.VersionFlag, false, "print the version and exit")
	o.Register(fs)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to serve on")
	fs.StringVar(&o.storeDir, "store", defaultStoreDir(), "directory that holds the mirror, or s3://bucket/prefix")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate file (serve HTTPS)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "TLS key file")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a shutdown waits for requests and fills in flight")
	fs.Float64Var(&o.rateLimit, "rate-limit", 0, "requests per second each client address may make (0: no limit)")
	fs.IntVar(&o.rateBurst, "rate-burst", 200, "requests a client may make at once before -rate-limit applies")
	fs.IntVar(&o.authFailures, "auth-failures", 20, "failed authentications a client address may make in a minute before it is answered 429 (negative: no limit)")
	fs.IntVar(&o.maxFills, "max-fills", 32, "fills from the upstream running at once")
	fs.DurationVar(&o.fillTimeout, "fill-timeout", 10*time.Minute, "how long one fill may take")
	fs.IntVar(&o.maxRequestHeaderBytes, "max-header-bytes", 64<<10, "largest request header accepted")
	fs.DurationVar(&o.readHeaderTimeout, "read-header-timeout", 10*time.Second, "how long a client may take to send its request header")
	fs.StringVar(&o.directGOPATH, "direct-gopath", "", "with -private-upstream direct: the private GOPATH the go command fetches into (default: a temporary one)")
	fs.IntVar(&o.directJobs, "direct-jobs", 4, "with -private-upstream direct: go commands running at once")
	if err := config.Parse(fs, args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err}
	}
	if o.version {
		return o, nil
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, usageError{errors.New("-tls-cert and -tls-key go together")}
	}
	if err := o.ResolveGoEnv(config.ReadGoEnv); err != nil {
		return nil, err
	}
	return o, nil
}

// tuneGC makes the garbage collector run less often than Go's default, unless GOGC or GOMEMLIMIT
// says otherwise: a request allocates a few KiB that die at once, the live heap is small (the
// memory cache is at most 32 MiB), and collecting at 5x it instead of 2x gives a hit-heavy load
// about a tenth more requests a second. A soft limit keeps the heap bounded all the same.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" && getenv("GOMEMLIMIT") == "" {
		debug.SetGCPercent(400)
		debug.SetMemoryLimit(256 << 20)
	}
}

// tuneProcs runs Go code on half as many threads again as Go's default, unless GOMAXPROCS says
// otherwise. Serving hits, the server spends most of its time in network system calls, during
// which a thread holds its P; an extra P keeps a CPU busy meanwhile. On 2 CPUs shared with the
// clients (bench/core), 3 Ps served about 15% more cached requests a second than 2.
func tuneProcs(getenv func(string) string) {
	if getenv("GOMAXPROCS") == "" {
		n := runtime.GOMAXPROCS(0)
		runtime.GOMAXPROCS(n + (n+1)/2)
	}
}

// defaultStoreDir is where the mirror lives when -store is not given: the user's cache directory.
func defaultStoreDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "modmirror"
	}
	return filepath.Join(dir, "modmirror")
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, getenv, stderr)
	if err != nil {
		return err
	}
	if o.version {
		_, err := fmt.Fprintln(stdout, buildinfo.Read())
		return err
	}
	logs := newLogWriter(stderr, 100*time.Millisecond)
	defer logs.Close()
	logger := slog.New(slog.NewJSONHandler(logs, nil))

	st, err := storeurl.Open(ctx, o.storeDir)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	sweepStaged(ctx, st, logger)
	// "direct" for private modules means their version control, through the go command.
	direct := o.PrivateUpstream == "direct"
	if direct {
		o.PrivateUpstream = ""
	}
	cfg, parts, err := o.Proxy(ctx, st, logger, os.ReadFile, upstream.Options{})
	if err != nil {
		return err
	}
	if direct && !o.Offline {
		gopath := o.directGOPATH
		if gopath == "" {
			gopath = filepath.Join(os.TempDir(), fmt.Sprintf("modmirror-direct-%d", os.Getpid()))
			defer os.RemoveAll(gopath)
		}
		if cfg.PrivateUpstream, err = newDirectUpstream(o.Private, gopath, o.directJobs); err != nil {
			return err
		}
	}
	cfg.MaxFills, cfg.FillTimeout, cfg.Prefetch = o.maxFills, o.fillTimeout, true
	cfg.RequestLog = logs // request lines skip slog's per-attribute cost: most of a hit's
	if o.PublicURL != "" {
		cfg.Redirect = redirectTo(o.PublicURL)
	}
	if o.rateLimit > 0 {
		cfg.Admit = newRateLimiter(o.rateLimit, o.rateBurst, time.Now).admit
	}
	cfg.AuthFailures = o.authFailures
	h, err := proxy.New(cfg)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           proxy.WithHealth(h),
		ReadHeaderTimeout: o.readHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    o.maxRequestHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if o.tlsCert != "" {
		scheme = "https"
	}
	logger.Info("serving", "url", scheme+"://"+ln.Addr().String(), "store", o.storeDir,
		"upstream", redactedList(parts.Upstream), "sumdb", o.SumDB, "offline", o.Offline,
		"private", o.Private, "anonymous", o.Anonymous)

	errc := make(chan error, 1)
	go func() {
		if o.tlsCert != "" {
			errc <- srv.ServeTLS(ln, o.tlsCert, o.tlsKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	return shutdown(srv, h, o.shutdownTimeout, logger)
}

// abandonGrace is how long a shutdown past its timeout waits for the fills it ended to unwind and
// for their requests to be answered.
const abandonGrace = 5 * time.Second

// shutdown stops srv: no new connections, then up to timeout for the requests and the fills in
// flight (fills outlive the requests that started them) to finish and store what they got. Past
// it, the fills still running are ended (h.Abort): the requests waiting on them are answered 503
// with a Retry-After and their staged bytes removed, so that nothing is left half done.
func shutdown(srv *http.Server, h *proxy.Handler, timeout time.Duration, logger *slog.Logger) error {
	logger.Info("shutting down", "timeout", timeout.String())
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := srv.Shutdown(ctx)
	if err == nil {
		err = h.Wait(ctx)
	}
	if err != nil {
		logger.Warn("shutting down: ending the fills still running", "timeout", timeout.String(), "err", err)
		h.Abort()
		actx, acancel := context.WithTimeout(context.Background(), abandonGrace)
		defer acancel()
		if err := srv.Shutdown(actx); err != nil {
			srv.Close()
			return fmt.Errorf("shutdown: requests still running %s after the fills were ended: %w", abandonGrace, err)
		}
		if err := h.Wait(actx); err != nil {
			return fmt.Errorf("shutdown: fills still running %s after they were ended: %w", abandonGrace, err)
		}
	}
	logger.Info("stopped")
	return nil
}

// sweeper is a store that can remove what fills of an earlier process left staged.
type sweeper interface {
	Sweep(ctx context.Context, now time.Time) (dirstore.Swept, error)
}

// sweepStaged removes the staged bytes of fills that no process will finish (a crash, a shutdown
// that ended them), within a few seconds, and logs what it freed.
func sweepStaged(ctx context.Context, st store.Store, logger *slog.Logger) {
	sw, ok := st.(sweeper)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	swept, err := sw.Sweep(ctx, time.Now())
	if err != nil {
		logger.Warn("sweep staged files", "err", err)
	}
	if swept.Files > 0 {
		logger.Info("removed staged files no fill will finish", "files", swept.Files, "bytes", swept.Bytes)
	}
}

// redirectTo sends hits to base + "/" + key, with '+' escaped for an S3-backed CDN.
func redirectTo(base string) func(context.Context, store.Info) (string, error) {
	base = strings.TrimRight(base, "/")
	return func(_ context.Context, info store.Info) (string, error) {
		return base + "/" + strings.ReplaceAll(info.Key, "+", "%2B"), nil
	}
}

func redactedList(up *upstream.Client) []string {
	if up == nil {
		return nil
	}
	var urls []string
	for _, p := range up.Proxies() {
		urls = append(urls, p.String()) // redacted: a private upstream's URL may hold a token
	}
	return urls
}
