package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/modmirror/modmirror/shared/config"
)

// DefaultSpoolLimit is the largest zip a Worker verifies: it is held in memory while it is
// hashed, and the isolate has 128 MB for everything (the Go heap, the wasm runtime, other
// requests in flight in the same isolate). A larger zip is refused with 502 and not stored.
const DefaultSpoolLimit = 64 << 20

// options are the Worker's settings, from its vars and secrets (MODMIRROR_<FLAG>).
type options struct {
	upstreamList string
	sumdb        string
	offline      bool
	spoolLimit   int64
}

// parseOptions reads the settings through getenv, which returns "" for a variable that is not
// set. The Worker has no go command to ask, so the upstream must be configured unless offline.
func parseOptions(getenv func(string) string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.upstreamList, "upstream", "", "upstream proxies in GOPROXY syntax")
	fs.StringVar(&o.sumdb, "sumdb", "", "checksum database NAME[+KEY [URL]], or off (default: "+config.DefaultSumDBName+")")
	fs.BoolVar(&o.offline, "offline", false, "serve the bucket only, never the upstream")
	fs.Int64Var(&o.spoolLimit, "spool-limit", DefaultSpoolLimit, "largest zip, in bytes, verified in memory")
	if err := fs.Parse(nil); err != nil {
		return nil, err
	}
	if err := config.ApplyEnv(fs, getenv); err != nil {
		return nil, err
	}
	if !o.offline {
		o.upstreamList = config.UpstreamList(o.upstreamList)
		if o.upstreamList == "" {
			return nil, errors.New(config.EnvName("upstream") + " is not set: set it to the upstream proxy list (as GOPROXY) in wrangler.toml [vars] or with wrangler deploy --var, or set " + config.EnvName("offline") + "=true")
		}
	}
	if o.spoolLimit <= 0 {
		return nil, fmt.Errorf("%s=%d: want a positive number of bytes", config.EnvName("spool-limit"), o.spoolLimit)
	}
	return o, nil
}
