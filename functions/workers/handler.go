package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"

	"github.com/modmirror/modmirror/shared/proxy"
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
	cfg.Spool = memSpooler{limit: o.spoolLimit}
	cfg.WarmInRequest = true
	h, err := proxy.New(cfg)
	if err != nil {
		return nil, err
	}
	return withHealth(h), nil
}

// withHealth answers /healthz itself and everything else with the proxy, as the self-hosted
// server does (no http.ServeMux: it would clean and redirect paths the proxy must refuse).
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
