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

	"github.com/modmirror/modmirror/shared/config"
	"github.com/modmirror/modmirror/shared/proxy"
	"github.com/modmirror/modmirror/shared/spool"
	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/store/s3store"
	"github.com/modmirror/modmirror/shared/upstream"
)

// DefaultInlineMax is the largest object the function streams itself; larger immutable objects
// are redirected to the CDN or to a presigned S3 URL. A Lambda response streams its first 6 MB
// at full speed and the rest at a capped rate, and every byte costs function time.
const DefaultInlineMax = 1 << 20

// options are the function's settings: the shared ones (config.Settings) and its own.
type options struct {
	config.Settings
	store, spoolDir string
	inlineMax       int64
}

// parseOptions reads the settings from args (none, on Lambda) and MODMIRROR_* variables. Unlike
// the self-hosted server it takes nothing from go env: a function has no toolchain.
func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("lambda", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.Register(fs)
	fs.StringVar(&o.store, "store", "", "s3://bucket/prefix that holds the mirror")
	fs.Int64Var(&o.inlineMax, "inline-max", DefaultInlineMax, "largest object served inline; negative: never redirect")
	fs.StringVar(&o.spoolDir, "spool-dir", os.TempDir(), "directory where zips are verified")
	if err := config.Parse(fs, args, getenv); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(o.store, "s3://") {
		return nil, fmt.Errorf("%s must be s3://bucket/prefix, not %q", config.EnvName("store"), o.store)
	}
	o.Upstream = config.UpstreamList(o.Upstream)
	if o.Upstream == "" && !o.Offline {
		return nil, fmt.Errorf("%s names no upstream proxy", config.EnvName("upstream"))
	}
	if o.PrivateUpstream != "" && o.Private == "" {
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
	if o.PublicURL != "" {
		storeOpts = append(storeOpts, s3store.WithPublicURL(o.PublicURL))
	}
	st, err := s3store.New(ctx, o.store, storeOpts...)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	cfg, parts, err := o.Proxy(ctx, st, logger, config.FileOrContent(os.ReadFile), upstream.Options{Logger: logger})
	if err != nil {
		return nil, err
	}
	cfg.Spool = spool.Options{Dir: o.spoolDir, MemoryMax: 1 << 20}
	cfg.Redirect = redirectLarge(st, o.inlineMax)
	cfg.WarmInRequest = true // the function's work ends with its response
	h, err := proxy.New(cfg)
	if err != nil {
		return nil, err
	}
	logger.Info("configured", "store", o.store, "upstream", redacted(parts.Upstream), "sumdb", o.SumDB,
		"private", o.Private, "public_url", o.PublicURL, "inline_max", o.inlineMax, "anonymous", o.Anonymous)
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

func redacted(up *upstream.Client) []string {
	if up == nil {
		return nil
	}
	var urls []string
	for _, p := range up.Proxies() {
		urls = append(urls, p.String())
	}
	return urls
}
