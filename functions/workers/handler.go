package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/modmirror/modmirror/shared/proxy"
	"github.com/modmirror/modmirror/shared/spool"
	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/upstream"
)

// buildHandler wires the proxy core: st for objects and checksum-database state, the upstream
// and checksum database from o, reached through transport. A warm fills before it answers: the
// Worker's work ends with its response.
func buildHandler(st store.Store, o *options, transport http.RoundTripper, logger *slog.Logger) (http.Handler, error) {
	cfg, _, err := o.Proxy(context.Background(), st, logger, secretContent, upstream.Options{Logger: logger, Transport: transport})
	if err != nil {
		return nil, err
	}
	// No file system: a zip up to the limit is verified in memory; a larger one streams into an
	// R2 multipart upload as it is verified (r2store is a store.StreamStager).
	cfg.Spool = spool.Options{MemoryMax: o.spoolLimit}
	cfg.WarmInRequest = true
	// A Worker's Go instance serves one request: an object kept in memory is never asked for
	// again, and reading it into memory would copy through Go a body that R2 can hand to the
	// response as a stream.
	cfg.MemoryCache = -1
	h, err := proxy.New(cfg)
	if err != nil {
		return nil, err
	}
	return proxy.WithHealth(h), nil
}
