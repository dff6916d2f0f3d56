package main

import (
	"io"
	"log/slog"
	"net/http"

	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/config"
	"github.com/modmirror/modmirror/shared/proxy"
	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/upstream"
)

// buildHandler wires the proxy core: st for objects and checksum-database state, the upstream
// and checksum database from o, reached through transport.
func buildHandler(st store.Store, o *options, transport http.RoundTripper, logger *slog.Logger) (http.Handler, error) {
	cfg := proxy.Config{Store: st, Logger: logger, Spool: memSpooler{limit: o.spoolLimit}}
	upOpts := upstream.Options{Logger: logger, Transport: transport}
	var up *upstream.Client
	if !o.offline {
		var err error
		if up, err = upstream.New(o.upstreamList, upOpts); err != nil {
			return nil, err
		}
		cfg.Upstream = up
	}
	db, err := config.ParseSumDB(o.sumdb)
	if err != nil {
		return nil, err
	}
	if db != nil {
		dbc := checksum.DBConfig{Name: db.Name, Key: db.Key, Store: st, Logger: logger}
		if up != nil {
			dbc.Remote = config.SumDBRemote(up, db, upOpts)
		}
		if cfg.Checksums, err = checksum.NewDB(dbc); err != nil {
			return nil, err
		}
	}
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
