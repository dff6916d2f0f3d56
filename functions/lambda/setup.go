package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"golang.org/x/mod/module"

	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/config"
	"github.com/modmirror/modmirror/shared/goproxy"
	"github.com/modmirror/modmirror/shared/proxy"
	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/store/s3store"
	"github.com/modmirror/modmirror/shared/upstream"
)

// DefaultInlineMax is the largest object the function streams itself; larger immutable objects
// are redirected to the CDN or to a presigned S3 URL. A Lambda response streams its first 6 MB
// at full speed and the rest at a capped rate, and every byte costs function time.
const DefaultInlineMax = 1 << 20

// options are the function's settings.
type options struct {
	store, upstreamList, sumdb string
	private, privateUpstream   string
	publicURL, spoolDir        string
	inlineMax                  int64
}

// parseOptions reads the settings from args (none, on Lambda) and MODMIRROR_* variables.
func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("lambda", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.store, "store", "", "s3://bucket/prefix that holds the mirror")
	fs.StringVar(&o.upstreamList, "upstream", "", "upstream proxies in GOPROXY syntax")
	fs.StringVar(&o.sumdb, "sumdb", "", "checksum database NAME[+KEY [URL]], or off (default: the go command's)")
	fs.StringVar(&o.private, "private", "", "module path patterns (GOPRIVATE syntax) that skip the checksum database")
	fs.StringVar(&o.privateUpstream, "private-upstream", "", "upstream for private modules (default: -upstream)")
	fs.StringVar(&o.publicURL, "public-url", "", "CDN base URL that large hits are redirected to (default: presigned S3 URLs)")
	fs.Int64Var(&o.inlineMax, "inline-max", DefaultInlineMax, "largest object served inline; negative: never redirect")
	fs.StringVar(&o.spoolDir, "spool-dir", os.TempDir(), "directory where zips are verified")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := config.ApplyEnv(fs, getenv); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(o.store, "s3://") {
		return nil, fmt.Errorf("%s must be s3://bucket/prefix, not %q", config.EnvName("store"), o.store)
	}
	if config.UpstreamList(o.upstreamList) == "" {
		return nil, fmt.Errorf("%s names no upstream proxy", config.EnvName("upstream"))
	}
	if o.privateUpstream != "" && o.private == "" {
		return nil, fmt.Errorf("%s is set but %s, which says which modules are private, is not",
			config.EnvName("private-upstream"), config.EnvName("private"))
	}
	return o, nil
}

// setup builds the function's http.Handler: the proxy core on the S3 store. It reads
// configuration only; nothing here touches the network.
func setup(ctx context.Context, args []string, getenv func(string) string, logger *slog.Logger, stderr io.Writer) (http.Handler, error) {
	o, err := parseOptions(args, getenv, stderr)
	if err != nil {
		return nil, err
	}
	var storeOpts []s3store.Option
	if o.publicURL != "" {
		storeOpts = append(storeOpts, s3store.WithPublicURL(o.publicURL))
	}
	st, err := s3store.New(ctx, o.store, storeOpts...)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	upOpts := upstream.Options{Logger: logger}
	up, err := upstream.New(config.UpstreamList(o.upstreamList), upOpts)
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	cfg := proxy.Config{
		Store:    st,
		Upstream: up,
		Logger:   logger,
		Spool:    proxy.TempFileSpool(o.spoolDir),
		Redirect: redirectLarge(st, o.inlineMax),
	}
	if o.private != "" && o.privateUpstream != "" {
		priv, err := upstream.New(config.UpstreamList(o.privateUpstream), upOpts)
		if err != nil {
			return nil, fmt.Errorf("private upstream: %w", err)
		}
		cfg.Upstream = &routedUpstream{public: up, private: priv, patterns: o.private}
	}
	db, err := config.ParseSumDB(o.sumdb)
	if err != nil {
		return nil, err
	}
	if db != nil {
		cfg.Checksums, err = checksum.NewDB(checksum.DBConfig{
			Name:    db.Name,
			Key:     db.Key,
			Store:   st,
			Remote:  config.SumDBRemote(up, db, upOpts),
			Logger:  logger,
			NoSumDB: o.private,
		})
		if err != nil {
			return nil, err
		}
	}
	h, err := proxy.New(cfg)
	if err != nil {
		return nil, err
	}
	logger.Info("configured", "store", o.store, "upstream", redacted(up), "sumdb", o.sumdb,
		"private", o.private, "public_url", o.publicURL, "inline_max", o.inlineMax)
	return h, nil
}

// redirectLarge is the proxy's Redirect policy: objects up to inlineMax bytes are served inline,
// larger ones redirected to the store's URL for them (the CDN's, or a presigned one). A negative
// inlineMax serves everything inline.
func redirectLarge(u store.URLer, inlineMax int64) func(context.Context, store.Info) (string, error) {
	return func(ctx context.Context, info store.Info) (string, error) {
		if inlineMax < 0 || info.Size <= inlineMax {
			return "", nil
		}
		return u.URL(ctx, info.Key)
	}
}

// routedUpstream sends requests for private modules (patterns in GOPRIVATE syntax) to the private
// upstream and all others to the public one.
type routedUpstream struct {
	public, private proxy.Upstream
	patterns        string
}

// Get implements proxy.Upstream.
func (r *routedUpstream) Get(ctx context.Context, path string) (*upstream.Response, error) {
	if r.isPrivate(path) {
		return r.private.Get(ctx, path)
	}
	return r.public.Get(ctx, path)
}

// isPrivate reports whether path, an upstream request path, names a private module.
func (r *routedUpstream) isPrivate(path string) bool {
	req, err := goproxy.Parse("/" + strings.TrimPrefix(path, "/"))
	if err != nil || req.Path == "" {
		return false
	}
	return module.MatchPrefixPatterns(r.patterns, req.Path)
}

func redacted(up *upstream.Client) []string {
	var urls []string
	for _, p := range up.Proxies() {
		urls = append(urls, p.String())
	}
	return urls
}
