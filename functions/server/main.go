// Command server is modmirror's self-hosted host: the GOPROXY protocol over net/http, storing in
// a local directory by default, filling misses from the toolchain's own upstream and verifying
// them against its checksum database.
//
//	server [-listen 127.0.0.1:8080] [-store DIR] [-upstream LIST] [-sumdb NAME[+KEY [URL]]|off] [-offline]
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
	"syscall"
	"time"

	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/config"
	"github.com/modmirror/modmirror/shared/proxy"
	"github.com/modmirror/modmirror/shared/store/dirstore"
	"github.com/modmirror/modmirror/shared/upstream"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "modmirror:", err)
		os.Exit(1)
	}
}

// options are the server's settings after flags, environment and go env.
type options struct {
	listen, storeDir, upstreamList, sumdb string
	offline                               bool
	tlsCert, tlsKey                       string
	shutdownTimeout                       time.Duration
}

func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to serve on")
	fs.StringVar(&o.storeDir, "store", defaultStoreDir(), "directory that holds the mirror")
	fs.StringVar(&o.upstreamList, "upstream", "", "upstream proxies in GOPROXY syntax (default: go env GOPROXY)")
	fs.StringVar(&o.sumdb, "sumdb", "", "checksum database NAME[+KEY [URL]], or off (default: go env GOSUMDB)")
	fs.BoolVar(&o.offline, "offline", false, "serve the store only, never the upstream")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate file (serve HTTPS)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "TLS key file")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a shutdown waits for requests in flight")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := config.ApplyEnv(fs, getenv); err != nil {
		return nil, err
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, errors.New("-tls-cert and -tls-key go together")
	}
	if o.upstreamList == "" || o.sumdb == "" {
		goenv, err := config.ReadGoEnv()
		if err != nil && !o.offline {
			return nil, fmt.Errorf("no -upstream given and %w", err)
		}
		if o.upstreamList == "" {
			o.upstreamList = config.UpstreamList(goenv.GOPROXY)
		}
		if o.sumdb == "" {
			o.sumdb = goenv.GOSUMDB
		}
	}
	return o, nil
}

// defaultStoreDir is where the mirror lives when -store is not given: the user's cache directory.
func defaultStoreDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "modmirror"
	}
	return filepath.Join(dir, "modmirror")
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	o, err := parseOptions(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stderr, nil))

	st, err := dirstore.New(o.storeDir)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	cfg := proxy.Config{Store: st, Logger: logger}
	upOpts := upstream.Options{Logger: logger}
	var up *upstream.Client
	if !o.offline {
		if o.upstreamList == "" {
			return errors.New("no upstream proxy: set -upstream or GOPROXY, or serve the store with -offline")
		}
		if up, err = upstream.New(o.upstreamList, upOpts); err != nil {
			return err
		}
		cfg.Upstream = up
	}
	db, err := config.ParseSumDB(o.sumdb)
	if err != nil {
		return err
	}
	if db != nil {
		dbc := checksum.DBConfig{Name: db.Name, Key: db.Key, Store: st, Logger: logger}
		if up != nil {
			dbc.Remote = config.SumDBRemote(up, db, upOpts)
		}
		if cfg.Checksums, err = checksum.NewDB(dbc); err != nil {
			return err
		}
	}
	h, err := proxy.New(cfg)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           withHealth(h),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if o.tlsCert != "" {
		scheme = "https"
	}
	logger.Info("serving", "url", scheme+"://"+ln.Addr().String(), "store", o.storeDir,
		"upstream", redactedList(up), "sumdb", o.sumdb, "offline", o.offline)

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
	logger.Info("shutting down", "timeout", o.shutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// withHealth answers /healthz itself and everything else with the proxy. It avoids
// http.ServeMux, which would clean and redirect the hostile paths the proxy must refuse.
func withHealth(proxy http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			io.WriteString(w, "ok\n")
			return
		}
		proxy.ServeHTTP(w, r)
	})
}

func redactedList(up *upstream.Client) []string {
	if up == nil {
		return nil
	}
	var urls []string
	for _, p := range up.Proxies() {
		urls = append(urls, p.URL)
	}
	return urls
}
