package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/modmirror/modmirror/shared/config"
)

// DefaultSpoolLimit is the largest zip a Worker holds in memory while it verifies it, then
// stores it with one put. A larger zip (or one of unknown size) is verified as it streams into
// an R2 multipart upload, completed only once the zip is verified, in bounded memory (a part of
// r2store.PartSize and the hasher's state), up to the go command's limit of 500 MiB; beyond
// that it is refused with 502 and not stored. The isolate has 128 MB for everything (the Go
// heap, the wasm runtime, other requests in flight in the same isolate), so a zip in memory is
// kept small.
const DefaultSpoolLimit = 16 << 20

// options are the Worker's settings, from its vars and secrets (MODMIRROR_<FLAG>): the ones
// every host shares and the Worker's own. Settings that name a file elsewhere (-tokens,
// -private-gosum, -netrc) hold the file's content here: a Worker has no files, so put it in a
// secret (wrangler secret put MODMIRROR_TOKENS < tokens).
type options struct {
	config.Settings
	spoolLimit int64
}

// parseOptions reads the settings through getenv, which returns "" for a variable that is not
// set. The Worker has no go command to ask, so the upstream must be configured unless offline.
func parseOptions(getenv func(string) string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.Register(fs)
	fs.Int64Var(&o.spoolLimit, "spool-limit", DefaultSpoolLimit, "largest zip, in bytes, verified in memory (larger ones stream into a multipart upload)")
	if err := config.Parse(fs, nil, getenv); err != nil {
		return nil, err
	}
	if !o.Offline {
		o.Upstream = config.UpstreamList(o.Upstream)
		if o.Upstream == "" {
			return nil, errors.New(config.EnvName("upstream") + " is not set: set it to the upstream proxy list (as GOPROXY) in wrangler.toml [vars] or with wrangler deploy --var, or set " + config.EnvName("offline") + "=true")
		}
	}
	if o.spoolLimit <= 0 {
		return nil, fmt.Errorf("%s=%d: want a positive number of bytes", config.EnvName("spool-limit"), o.spoolLimit)
	}
	return o, nil
}

// secretContent is the Worker's readFile: a setting that names a file elsewhere holds the
// content itself.
func secretContent(value string) ([]byte, error) { return []byte(value), nil }
