//go:build js && wasm

// Command workers is modmirror on Cloudflare Workers: the proxy core compiled to WebAssembly
// with github.com/syumai/workers, storing in the R2 bucket bound as MODULES, filling misses from
// the upstream in MODMIRROR_UPSTREAM through the Workers fetch API and verifying them against
// the checksum database in MODMIRROR_SUMDB (default: the go command's).
//
// Build it with `make worker` (wrangler.toml runs that); see docs/DEPLOY-CLOUDFLARE.md.
package main

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"syscall/js"

	"github.com/syumai/workers"
	"github.com/syumai/workers/cloudflare"
	"github.com/syumai/workers/cloudflare/fetch"

	"github.com/modmirror/modmirror/shared/store/r2store"
)

// bucketBinding is the name of the R2 binding in wrangler.toml.
const bucketBinding = "MODULES"

// memoryLimit is the Go heap's soft limit: the isolate has 128 MB for everything, so the
// collector works hard before the wasm memory grows near it.
const memoryLimit = 96 << 20

// memoryNotice is the wasm memory above which a request logs how much it used.
const memoryNotice = 16 << 20

func main() {
	// Each request runs a fresh Go instance: setting up is per request, and cheap.
	debug.SetMemoryLimit(memoryLimit)
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	h, err := newHandler(getenv, logger)
	if err != nil {
		logger.Error("configuration", "err", err)
		h = misconfigured(err)
	}
	workers.Serve(withHeadResponse(withMemoryLog(h, logger)))
}

// rawBodyWriter is syumai/workers' ResponseWriter: it takes a JavaScript body for the response.
type rawBodyWriter interface{ WriteRawJSBody(body js.Value) }

// withHeadResponse gives the answer to a HEAD request, and an empty answer, a null body.
// syumai/workers otherwise makes every response with a Content-Length a FixedLengthStream of
// that length, which a HEAD answer (headers only) never fills: workerd then fails the request
// with 500 ("FixedLengthStream did not see all expected bytes before close()"); and it sends an
// empty body as a chunked stream without "Content-Length: 0". With a null body the headers,
// Content-Length included, are sent as they are, as the server sends them.
func withHeadResponse(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		if r.Method == http.MethodHead || w.Header().Get("Content-Length") == "0" {
			if raw, ok := w.(rawBodyWriter); ok {
				raw.WriteRawJSBody(js.Null())
			}
		}
	})
}

// withMemoryLog logs, after a request that made the instance's memory grow past memoryNotice,
// how much memory the Go runtime holds: the figure to watch against the isolate's 128 MB.
func withMemoryLog(next http.Handler, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.Sys >= memoryNotice {
			logger.Info("instance memory", "path", r.URL.EscapedPath(), "sys_mib", ms.Sys>>20, "heap_inuse_mib", ms.HeapInuse>>20)
		}
	})
}

// getenv returns a Worker var or secret, or "" if it is not set (where cloudflare.Getenv
// would return "<undefined>").
func getenv(name string) string {
	v := cloudflare.GetBinding(name)
	if v.Type() != js.TypeString {
		return ""
	}
	return v.String()
}

// newHandler wires the proxy core to the R2 binding and the fetch API.
func newHandler(getenv func(string) string, logger *slog.Logger) (http.Handler, error) {
	o, err := parseOptions(getenv)
	if err != nil {
		return nil, err
	}
	subs := &subrequests{}
	bucket := subs.bucket(cloudflare.GetBinding(bucketBinding))
	st, err := r2store.New(bucket, r2store.Options{})
	if err != nil {
		return nil, err
	}
	transport := subs.transport(bodyTransport{fetch.NewClient().HTTPClient(fetch.RedirectModeFollow).Transport})
	h, err := buildHandler(st, o, transport, logger)
	if err != nil {
		return nil, err
	}
	h = withWarmBatches(withRanges(h, st, logger), warmBatch)
	if c := newWorkersCache(); c != nil {
		h = withEdgeCache(h, c, logger)
	} else {
		logger.Warn("no Cache API (caches.default): lists and @latest are not cached at the edge")
	}
	return withSubrequestLog(withStoreAPI(h, bucket), subs, logger), nil
}

// misconfigured answers every request with the configuration error, so that a deploy with a
// missing variable says what is missing instead of failing obscurely.
func misconfigured(err error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "modmirror is misconfigured: "+err.Error()+"\n")
	})
}
