// Package proxy is the http.Handler every host serves: it answers the GOPROXY protocol from a
// store, fills misses from an upstream after verifying them against the checksum database, keeps
// the mutable endpoints (list, @latest) fresh, and proxies the checksum database.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/modmirror/modmirror/shared/auth"
	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/goproxy"
	"github.com/modmirror/modmirror/shared/spool"
	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/upstream"
)

// Upstream is where misses are filled from.
type Upstream interface {
	Get(ctx context.Context, path string) (*upstream.Response, error)
}

// Checksums verifies fills and serves the checksum database's endpoints.
type Checksums interface {
	Name() string
	VerifyModHash(ctx context.Context, path, version, hash string) error
	VerifyZipHash(ctx context.Context, path, version, hash string) error
	Fetch(ctx context.Context, path string) (data []byte, hit bool, err error)
}

// Config configures a Handler.
type Config struct {
	Store store.Store
	// Upstream fills misses; nil serves the store only (offline).
	Upstream Upstream
	// Checksums verifies every fill; nil turns verification off (-sumdb off) and the
	// /sumdb/ endpoints answer 404.
	Checksums Checksums
	Logger    *slog.Logger
	// Spool says where a zip is held while it is verified. Default: in memory up to 4 MiB while
	// the zips in memory take at most 16 MiB together, else in a temporary file in os.TempDir().
	Spool spool.Options
	// FreshFor is how long a list or @latest fetched from the upstream is served before the
	// upstream is asked again. Default goproxy.ShortTTL.
	FreshFor time.Duration
	// NotFoundFor is how long an upstream 404 is remembered. Default goproxy.ShortTTL.
	NotFoundFor time.Duration
	// FillTimeout bounds one fill, whoever waits for it. Default 10 minutes.
	FillTimeout time.Duration
	// RetryFailedAfter is how long a failed fill's error (other than not found) is the answer for
	// that object without another upstream try: a burst of requests for a module the upstream
	// fails on costs one try. Default 5s; negative: every request tries again.
	RetryFailedAfter time.Duration
	// Now returns the time; default time.Now.
	Now func() time.Time
	// Redirect, if set, lets a host answer a request for an immutable object (.info, .mod,
	// .zip) that the store holds, or has just filled, with a redirect instead of the content.
	// It is given the object's Info (from Store.Stat) and returns the URL to send the client to
	// (302 Found, Cache-Control: no-store, since such a URL may expire or point back at a cache
	// in front of this handler), or "" to serve the content itself, as for small objects. An
	// error is logged and the content served.
	Redirect func(ctx context.Context, info store.Info) (url string, err error)

	// Auth decides who may read what; nil lets anyone read public modules and nobody private ones.
	Auth *auth.Authenticator
	// AuthFailures is how many failed authentications a client address may make in a minute
	// before it is answered 429 until the minute is over. Default 20; negative: no limit.
	AuthFailures int
	// Admit, if set, is asked about every request first (a host's rate limit): a Refusal is
	// answered 429 with its Retry-After and reason, and logged as every request is.
	Admit func(r *http.Request) *Refusal
	// Private lists the private module path patterns (GOPRIVATE syntax). Private modules come
	// only from PrivateUpstream (never from Upstream), skip the checksum database, are checked
	// against PrivateGoSum where it has a line, and are served only to callers whose token has a
	// read scope for them, with Cache-Control private.
	Private         string
	PrivateUpstream Upstream
	PrivateGoSum    []checksum.Line
	// MaxFills bounds the fills running at once; more wait for a slot. Default 32.
	MaxFills int
	// MemoryCache is how many bytes of small immutable objects (.info, .mod, zips up to 64 KiB)
	// are kept in memory to answer hits without the store. Default 32 MiB; negative: off.
	MemoryCache int64
	// RequestLog, if set, receives each request's log line directly (safe for concurrent
	// writes, one Write a line), in the JSON shape of slog's JSONHandler; otherwise the lines go
	// through Logger.
	RequestLog io.Writer
	// Prefetch makes a fill start, in the background, the fills the go command asks for next
	// (after an .info its .mod and .zip, after a .mod its .info), for hosts whose process
	// outlives the response (not Lambda or Workers).
	Prefetch bool
	// WarmInRequest makes POST /_mirror/warm fill before it answers, for hosts whose work ends
	// with the response (Lambda, Workers); otherwise it answers 202 and fills in the background.
	WarmInRequest bool
}

// Handler serves the GOPROXY protocol. Create it with New.
type Handler struct {
	cfg   Config
	log   *slog.Logger
	fills singleflight.Group
	// notFound remembers upstream 404s (the negative cache).
	notFound *expiringSet
	// throttle limits failed authentications per client address.
	throttle *authThrottle
	// failed remembers, briefly, why an object's fill failed: requests for it meanwhile get the
	// same answer without another upstream try, and no other module is affected.
	failed *expiring[error]
	// fresh remembers which lists and @latest answers were fetched from the upstream recently.
	fresh *expiringSet
	// prefetched remembers the objects whose followers were prefetched already.
	prefetched *expiringSet
	// listed remembers versions known to be in their module's stored list.
	listed *expiringSet
	// privateSums holds PrivateGoSum by "path version" and "path version/go.mod".
	privateSums map[string]string
	// small keeps small immutable objects in memory; nil when off.
	small *memCache
	// fillSlots bounds concurrent fills; inFlight counts them so a shutdown can wait.
	fillSlots chan struct{}
	// prefetchSlots bounds the prefetches running at once, to a few: they start in the order the
	// go command will ask for the objects and keep a little ahead of it. Unbounded, a go mod
	// download's .info requests started every zip's fill at once, and the requests that kept
	// coming queued behind all that hashing (its .info answers took 0.5-0.8 s in all, against
	// 0.1 s bounded).
	prefetchSlots chan struct{}
	// hasher verifies zips on at most as many goroutines as there are CPUs, and one fewer than
	// Ps: a burst of fills leaves a P free for the requests that keep arriving.
	hasher   *checksum.Hasher
	inFlight sync.WaitGroup
	// aborted ends every fill when a host gives up waiting for them (Abort).
	aborted context.Context
	abort   context.CancelFunc
	// lineBuffers recycles the buffers request lines are built in.
	lineBuffers *sync.Pool
}

// New returns a Handler for c.
func New(c Config) (*Handler, error) {
	if c.Store == nil {
		return nil, errors.New("proxy: no store")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Spool == (spool.Options{}) {
		c.Spool = spool.Options{Dir: os.TempDir(), MemoryMax: 4 << 20, Shared: spool.NewBudget(16 << 20)}
	}
	if c.FreshFor <= 0 {
		c.FreshFor = goproxy.ShortTTL
	}
	if c.NotFoundFor <= 0 {
		c.NotFoundFor = goproxy.ShortTTL
	}
	if c.FillTimeout <= 0 {
		c.FillTimeout = 10 * time.Minute
	}
	if c.RetryFailedAfter == 0 {
		c.RetryFailedAfter = 5 * time.Second
	}
	if c.AuthFailures == 0 {
		c.AuthFailures = 20
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Auth == nil {
		c.Auth = auth.New(nil, true)
	}
	if c.MaxFills <= 0 {
		c.MaxFills = 32
	}
	if c.MemoryCache == 0 {
		c.MemoryCache = 32 << 20
	}
	h := &Handler{
		cfg:           c,
		log:           c.Logger,
		notFound:      newExpiringSet(10000, c.Now),
		failed:        newExpiring[error](10000, c.Now),
		fresh:         newExpiringSet(10000, c.Now),
		listed:        newExpiringSet(100000, c.Now),
		prefetched:    newExpiringSet(100000, c.Now),
		privateSums:   make(map[string]string),
		fillSlots:     make(chan struct{}, c.MaxFills),
		prefetchSlots: make(chan struct{}, min(c.MaxFills, max(2, runtime.NumCPU()))),
		hasher:        checksum.NewHasher(min(runtime.NumCPU(), runtime.GOMAXPROCS(0)-1)),
		small:         newMemCache(c.MemoryCache),
		lineBuffers:   newLineBuffers(),
	}
	for _, l := range c.PrivateGoSum {
		h.privateSums[sumKey(l.Path, l.Version, l.GoMod)] = l.Hash
	}
	if c.AuthFailures > 0 {
		h.throttle = newAuthThrottle(c.AuthFailures, time.Minute, c.Now, c.Logger)
	}
	h.aborted, h.abort = context.WithCancel(context.Background())
	return h, nil
}

// retryAfterShutdown is the Retry-After, in seconds, of an answer refused by a shutdown: about
// as long as a restart takes.
const retryAfterShutdown = "5"

// Abort ends every fill in flight and every fill to come: a host calls it when a shutdown has
// waited long enough. Each request waiting on a fill is answered 503 with a Retry-After, and each
// fill removes what it had staged, storing nothing. Wait then returns once they have unwound.
func (h *Handler) Abort() { h.abort() }

// Wait blocks until every fill in flight has finished or ctx ends: a host calls it after its
// server stopped accepting requests, so that a shutdown never abandons a fill half done.
func (h *Handler) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		h.inFlight.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func sumKey(path, version string, gomod bool) string {
	if gomod {
		return path + " " + version + "/go.mod"
	}
	return path + " " + version
}

// Cache outcomes, as logged.
const (
	cacheHit    = "hit"    // served from the store
	cacheMiss   = "miss"   // filled from the upstream, then served
	cacheStale  = "stale"  // the upstream failed; served the last stored copy
	cacheBypass = "bypass" // passed through from the upstream, not stored
	cacheNone   = "none"   // refused or failed before the store or the upstream was asked
)

// exchange is one request in flight: what it asks and what the log line will say about it.
type exchange struct {
	w        *countingWriter
	r        *http.Request
	path     string // r's escaped path, as the client sent it (computed once: it is not free)
	req      goproxy.Request
	cache    string
	upstream time.Duration

	caller   auth.Caller
	decision string   // the access decision, for the audit line
	private  bool     // the module is private
	up       Upstream // where this module's misses come from; nil: nowhere (offline)
}

// cacheControl adapts a Cache-Control value to who may see the answer: anything that needed
// credentials must not be kept by a shared cache.
func (h *Handler) cacheControl(x *exchange, base string) string {
	if x.private || !h.cfg.Auth.AnonymousReads() {
		return strings.Replace(base, "public", "private", 1)
	}
	return base
}

// ServeHTTP answers one GOPROXY request and logs one line about it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	x := &exchange{w: &countingWriter{ResponseWriter: w, status: http.StatusOK}, r: r, path: r.URL.EscapedPath()}
	h.serve(x)
	h.logRequest(r.Context(), x, start)
}

func (h *Handler) serve(x *exchange) {
	if h.cfg.Admit != nil {
		if refusal := h.cfg.Admit(x.r); refusal != nil {
			x.decision = decisionRateLimited
			h.refuse(x, refusal.RetryAfter, refusal.Reason)
			return
		}
	}
	if x.r.URL.Path == WarmPath {
		h.serveWarm(x)
		return
	}
	if x.r.Method != http.MethodGet && x.r.Method != http.MethodHead {
		x.w.Header().Set("Allow", "GET, HEAD")
		h.fail(x, http.StatusMethodNotAllowed, goproxy.CacheNoStore, fmt.Sprintf("method %s not allowed: a module proxy answers GET and HEAD", x.r.Method))
		return
	}
	raw := x.path
	// A hit on a small object kept in memory was parsed and validated when it was stored.
	if key, ok := memoryKey(raw); ok {
		if o, ok := h.small.get(key); ok {
			x.req = o.req
			if h.authorize(x) {
				x.cache = cacheHit
				h.serveCached(x, o)
			}
			return
		}
	}
	req, err := goproxy.Parse(raw)
	if err != nil {
		var perr *goproxy.Error
		if errors.As(err, &perr) {
			h.fail(x, perr.Status, goproxy.CacheNotFound, perr.Reason)
			return
		}
		h.fail(x, http.StatusBadRequest, goproxy.CacheNoStore, err.Error())
		return
	}
	x.req = req
	if !h.authorize(x) {
		return
	}
	switch req.Kind {
	case goproxy.Info, goproxy.Mod, goproxy.Zip:
		h.serveImmutable(x)
	case goproxy.List:
		h.serveList(x)
	case goproxy.Latest:
		h.serveLatest(x)
	case goproxy.Query:
		h.serveQuery(x)
	case goproxy.SumDB:
		h.serveSumDB(x)
	}
}

// memoryKey returns the store key a request path names, if it may be one of the memory cache's:
// the path as sent, without its leading slash, with %21 (as the go command sends the "!" of an
// upper-case letter) read as "!". Anything else escaped takes the long way, through Parse.
func memoryKey(raw string) (string, bool) {
	key, ok := strings.CutPrefix(raw, "/")
	if !ok {
		return "", false
	}
	if strings.Contains(key, "%") {
		key = strings.ReplaceAll(key, "%21", "!")
	}
	return key, true
}

// refuse answers 429 with a Retry-After of wait, in whole seconds (at least one).
func (h *Handler) refuse(x *exchange, wait time.Duration, reason string) {
	x.w.Header().Set("Retry-After", strconv.Itoa(int(max(wait+time.Second-1, time.Second)/time.Second)))
	h.fail(x, http.StatusTooManyRequests, goproxy.CacheNoStore, reason)
}

// fail answers an error with a text/plain reason for the go command to show.
func (h *Handler) fail(x *exchange, status int, cacheControl, reason string) {
	hdr := x.w.Header()
	hdr.Del("ETag")
	hdr.Del("Last-Modified")
	hdr.Set("Content-Type", "text/plain; charset=utf-8")
	hdr.Set("Cache-Control", h.cacheControl(x, cacheControl))
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Length", strconv.Itoa(len(reason)+1)) // HEAD says it as GET does
	x.w.WriteHeader(status)
	if x.r.Method != http.MethodHead {
		io.WriteString(x.w, reason+"\n")
	}
}

// countingWriter records the status and the number of body bytes written.
type countingWriter struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (w *countingWriter) WriteHeader(status int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = status, true
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.wroteHeader = true
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom lets io.Copy from a stored file (http.ServeContent's) reach net/http's ReadFrom, which
// sends the file with sendfile(2) instead of copying it through user space.
func (w *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	w.wroteHeader = true
	var (
		n   int64
		err error
	)
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
	}
	w.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
