// Package upstream fetches GOPROXY protocol paths from a list of proxies in GOPROXY syntax:
// entries separated by ',' fall through to the next only on 404 or 410; entries separated by '|'
// fall through on any error. Each request has connect and total timeouts and is retried with
// exponential backoff and jitter on transport errors and 5xx answers, never on 404/410.
//
// Credentials may be given in a proxy URL's userinfo; they are sent as HTTP Basic
// authentication and never appear in errors or logs (URLs there are redacted with
// [url.URL.Redacted]). A file:// entry reads a static mirror directory: a missing file is a 404.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Defaults for the zero fields of Options.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultHeaderTimeout  = 30 * time.Second
	DefaultTimeout        = 10 * time.Minute
	DefaultIdleTimeout    = 30 * time.Second
	DefaultAttempts       = 3
	DefaultBaseBackoff    = 100 * time.Millisecond
	DefaultUserAgent      = "modmirror"
)

// Options tune a Client. The zero value is usable: every field has a default.
type Options struct {
	// Transport to use; default: a keep-alive http.Transport with ConnectTimeout on dial and TLS,
	// up to 64 idle connections per host, and the proxy from HTTPS_PROXY/HTTP_PROXY/NO_PROXY.
	// On js/wasm the default uses the host's Fetch API.
	Transport http.RoundTripper
	// ConnectTimeout bounds dialing and the TLS handshake. Default 5s. Used only by the default
	// Transport.
	ConnectTimeout time.Duration
	// HeaderTimeout bounds the wait for response headers of one attempt. Default 30s.
	HeaderTimeout time.Duration
	// IdleTimeout bounds the wait for each next byte of a body: an upstream that stops sending
	// half-way is abandoned after it, long before Timeout. Default 30s.
	IdleTimeout time.Duration
	// Timeout bounds one whole request, retries and reading the body included. Default 10m
	// (a large zip over a slow link). It spans every proxy of the list that Get consults.
	Timeout time.Duration
	// Attempts is how many times a request is tried against one proxy. Default 3.
	Attempts int
	// BaseBackoff is the first retry's delay before jitter; it doubles each retry. Default 100ms.
	// A negative value retries without delay.
	BaseBackoff time.Duration
	// UserAgent sent with every request. Default "modmirror".
	UserAgent string
	// Logger receives a debug record per attempt (redacted URL, status, duration). Default: none.
	Logger *slog.Logger
	// BreakerFailures is how many consecutive failed requests (transport errors, 5xx, 429, after
	// their retries) open a proxy's circuit breaker; negative disables it. Default 5.
	BreakerFailures int
	// BreakerCooldown is how long an open breaker fails requests at once before it lets one
	// probe through. Default 30s.
	BreakerCooldown time.Duration
	// Now returns the time, for the breaker; default time.Now.
	Now func() time.Time
}

// Proxy is one entry of a GOPROXY list.
type Proxy struct {
	URL string // base URL without a trailing slash
	// FallThroughOnAnyError is true when the entry is followed by '|': any error moves to the next
	// entry. Otherwise (',' or the last entry) only 404 and 410 do.
	FallThroughOnAnyError bool
}

// String returns the proxy's URL with any password redacted, so that printing a Proxy never
// leaks credentials. Proxy.URL itself keeps them.
func (p Proxy) String() string { return redactRaw(p.URL) }

// ParseList parses GOPROXY syntax. "direct" and "off" entries are dropped (modmirror only talks to
// proxies); file:// URLs are kept. An empty result is an error.
//
// As in the go command, an entry without a scheme that looks like a host name
// ("proxy.example.com") means https://; entries are trimmed of spaces and trailing slashes.
// Only http, https and file URLs are accepted; a file URL must be a bare absolute path.
func ParseList(list string) ([]Proxy, error) {
	var proxies []Proxy
	rest := list
	for rest != "" {
		var entry string
		fallThrough := false
		if i := strings.IndexAny(rest, ",|"); i >= 0 {
			entry, fallThrough, rest = rest[:i], rest[i] == '|', rest[i+1:]
		} else {
			entry, rest = rest, ""
		}
		entry = strings.TrimSpace(entry)
		if entry == "" || entry == "direct" || entry == "off" {
			continue
		}
		// The go command's rule: anything containing ":/" or looking like an absolute path must
		// be a full URL; other host-like words get an implicit https://.
		if strings.ContainsAny(entry, ".:/") && !strings.Contains(entry, ":/") &&
			!filepath.IsAbs(entry) && !strings.HasPrefix(entry, "/") {
			entry = "https://" + entry
		}
		entry = strings.TrimRight(entry, "/")
		if _, err := parseProxyURL(entry); err != nil {
			return nil, err
		}
		proxies = append(proxies, Proxy{URL: entry, FallThroughOnAnyError: fallThrough})
	}
	if len(proxies) == 0 {
		return nil, fmt.Errorf("upstream: no upstream proxy in %q", list)
	}
	return proxies, nil
}

// parseProxyURL checks one (trimmed) entry and returns its parsed URL. Errors never contain the
// entry's password.
func parseProxyURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the raw URL, password included
		}
		return nil, fmt.Errorf("upstream: invalid proxy URL %q: %w", redactRaw(raw), err)
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return nil, fmt.Errorf("upstream: invalid proxy URL %q: no host", u.Redacted())
		}
		if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
			return nil, fmt.Errorf("upstream: invalid proxy URL %q: query or fragment not allowed", u.Redacted())
		}
	case "file":
		if *u != (url.URL{Scheme: u.Scheme, Path: u.Path, RawPath: u.RawPath}) || u.Path == "" {
			return nil, fmt.Errorf("upstream: invalid file:// proxy URL %q: only an absolute path is allowed", u.Redacted())
		}
	case "":
		return nil, fmt.Errorf("upstream: invalid proxy URL %q: missing scheme", redactRaw(raw))
	default:
		return nil, fmt.Errorf("upstream: invalid proxy URL %q: unsupported scheme %q (want http, https or file)", u.Redacted(), u.Scheme)
	}
	return u, nil
}

// redactRaw hides the password in a URL string that may not parse.
func redactRaw(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	i := strings.Index(raw, "://")
	if i < 0 {
		return raw
	}
	auth := raw[i+3:]
	if j := strings.IndexAny(auth, "/?#"); j >= 0 {
		auth = auth[:j]
	}
	at := strings.LastIndex(auth, "@")
	if at < 0 {
		return raw
	}
	user, _, hasPassword := strings.Cut(auth[:at], ":")
	if !hasPassword {
		return raw
	}
	return raw[:i+3] + user + ":xxxxx" + raw[i+3+at:]
}

// entry is a parsed Proxy.
type entry struct {
	Proxy
	base    *url.URL // without userinfo; nil for file://
	user    *url.Userinfo
	shown   string // redacted base URL, for errors and logs
	dir     string // file:// only: the OS directory
	isFile  bool
	brk     *breaker // nil for file://
	backoff *backoff // nil for file://
}

// Client fetches from a GOPROXY list. Safe for concurrent use; reuses connections.
type Client struct {
	proxies     []entry
	hc          *http.Client
	headerTO    time.Duration
	idleTO      time.Duration
	timeout     time.Duration
	attempts    int
	baseBackoff time.Duration
	userAgent   string
	log         *slog.Logger
	now         func() time.Time // Options.Now
}

// New returns a client for the GOPROXY list.
func New(list string, o Options) (*Client, error) {
	proxies, err := ParseList(list)
	if err != nil {
		return nil, err
	}
	c := &Client{
		headerTO:    orDefault(o.HeaderTimeout, DefaultHeaderTimeout),
		idleTO:      orDefault(o.IdleTimeout, DefaultIdleTimeout),
		timeout:     orDefault(o.Timeout, DefaultTimeout),
		attempts:    o.Attempts,
		baseBackoff: o.BaseBackoff,
		userAgent:   o.UserAgent,
		log:         o.Logger,
	}
	if c.attempts <= 0 {
		c.attempts = DefaultAttempts
	}
	if c.baseBackoff == 0 {
		c.baseBackoff = DefaultBaseBackoff
	} else if c.baseBackoff < 0 {
		c.baseBackoff = 0
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	rt := o.Transport
	if rt == nil {
		rt = newDefaultTransport(orDefault(o.ConnectTimeout, DefaultConnectTimeout))
	}
	c.hc = &http.Client{Transport: rt}
	breakerFailures := o.BreakerFailures
	if breakerFailures == 0 {
		breakerFailures = DefaultBreakerFailures
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	c.now = now
	for _, p := range proxies {
		u, err := parseProxyURL(p.URL)
		if err != nil {
			return nil, err
		}
		e := entry{Proxy: p, shown: u.Redacted()}
		if u.Scheme == "file" {
			e.isFile = true
			e.dir = fileURLDir(u.Path)
		} else {
			e.user = u.User
			b := *u
			b.User = nil
			e.base = &b
			e.brk = newBreaker(breakerFailures, orDefault(o.BreakerCooldown, DefaultBreakerCooldown), now)
			e.backoff = &backoff{now: now}
		}
		c.proxies = append(c.proxies, e)
	}
	return c, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// fileURLDir turns the path of a file:// URL into an OS directory ("/C:/x" is "C:\x" on Windows).
func fileURLDir(p string) string {
	if runtime.GOOS == "windows" && len(p) >= 3 && p[0] == '/' && p[2] == ':' {
		p = p[1:]
	}
	return filepath.FromSlash(p)
}

// Proxies returns the parsed list.
func (c *Client) Proxies() []Proxy {
	out := make([]Proxy, len(c.proxies))
	for i, e := range c.proxies {
		out[i] = e.Proxy
	}
	return out
}

// CloseIdleConnections closes the idle keep-alive connections of the client's transport, if it
// supports that.
func (c *Client) CloseIdleConnections() {
	if c != nil && c.hc != nil {
		c.hc.CloseIdleConnections()
	}
}

// Response is a successful (200) answer. The caller must close Body. Reading Body is bounded by
// Options.Timeout; a body shorter than its Content-Length reads as an error, never as EOF.
type Response struct {
	Body   io.ReadCloser
	Size   int64 // Content-Length, or -1
	Header http.Header
	URL    string // the URL that answered (requested under the proxy's base, password redacted)
}

// Get fetches path (already escaped, no leading slash, e.g. "example.com/!m/@v/v1.0.0.zip" or
// "sumdb/sum.example/lookup/m@v1.0.0") following the list semantics. An error that is, or wraps,
// a 404 or 410 from every consulted proxy satisfies IsNotFound. Errors name the URL and what the
// upstream answered (status and the first line of its text body).
//
// When the list is exhausted, the error is the last one that was not a 404/410, or else the last
// 404/410, as the go command reports it.
func (c *Client) Get(ctx context.Context, path string) (*Response, error) {
	if c == nil || c.hc == nil || len(c.proxies) == 0 {
		return nil, errors.New("upstream: Client not created with New")
	}
	if !validPath(path) {
		return nil, fmt.Errorf("upstream: invalid path %q", path)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout, &timeoutError{what: "request", d: c.timeout})
	var best error
	bestNotFound := true
	for _, p := range c.proxies {
		resp, err := c.getFrom(ctx, &p, path, cancel)
		if err == nil {
			return resp, nil // resp.Body.Close calls cancel
		}
		if ctx.Err() != nil {
			cancel()
			return nil, err
		}
		notFound := IsNotFound(err)
		if !notFound || bestNotFound {
			best, bestNotFound = err, notFound
		}
		if !notFound && !p.FallThroughOnAnyError {
			break
		}
	}
	cancel()
	return nil, best
}

// getFrom fetches path from one proxy of the list, through its circuit breaker.
func (c *Client) getFrom(ctx context.Context, p *entry, path string, cancel context.CancelFunc) (*Response, error) {
	if p.isFile {
		return c.getFile(ctx, p, path, cancel)
	}
	if wait := p.backoff.remaining(); wait > 0 {
		return nil, &Error{URL: p.shown + "/" + path, Status: http.StatusTooManyRequests, RetryAfter: wait,
			Reason: fmt.Sprintf("%s asked to be left alone for %s more (Retry-After)", p.shown, wait.Round(time.Second))}
	}
	if !p.brk.allow() {
		return nil, &Error{URL: p.shown + "/" + path,
			Reason: fmt.Sprintf("circuit open: %s failed %d requests in a row about different modules; trying again after a cooldown", p.shown, p.brk.failures)}
	}
	resp, err := c.getHTTP(ctx, p, path, cancel)
	var e *Error
	switch {
	case err != nil && ctx.Err() != nil && !errors.As(context.Cause(ctx), new(*timeoutError)):
		p.brk.release() // the caller gave up: that says nothing about the proxy
	case errors.As(err, &e) && e.RetryAfter > 0:
		p.backoff.until(e.RetryAfter) // alive, and asking for a pause: the backoff, not the breaker
		p.brk.release()
	default:
		p.brk.record(err == nil || !proxyFailed(err), moduleOf(path))
	}
	return resp, err
}

// moduleOf returns the module a request path is about ("sumdb" for the checksum database), for
// telling one module's failures from a proxy's.
func moduleOf(path string) string {
	if strings.HasPrefix(path, "sumdb/") {
		return "sumdb"
	}
	if i := strings.Index(path, "/@"); i >= 0 {
		return path[:i]
	}
	return path
}

// validPath reports whether path is a relative, slash-separated path with no empty, "." or ".."
// elements and nothing that would change a URL's meaning.
func validPath(path string) bool {
	return fs.ValidPath(path) && path != "." && !strings.ContainsAny(path, "?#\\")
}

// GetBytes is Get plus reading the whole body, refusing bodies over limit bytes. A negative limit
// means no limit.
func (c *Client) GetBytes(ctx context.Context, path string, limit int64) ([]byte, error) {
	resp, err := c.Get(ctx, path)
	if err != nil {
		return nil, err
	}
	return resp.ReadAll(limit)
}

// ReadAll reads the whole body and closes it, refusing a body over limit bytes (negative: no
// limit). Its errors name the URL.
func (resp *Response) ReadAll(limit int64) ([]byte, error) {
	defer resp.Body.Close()
	if limit >= 0 && resp.Size > limit {
		return nil, fmt.Errorf("GET %s: body of %d bytes exceeds the limit of %d bytes", resp.URL, resp.Size, limit)
	}
	r := io.Reader(resp.Body)
	if limit >= 0 {
		r = io.LimitReader(resp.Body, limit+1)
	}
	var buf []byte
	if resp.Size > 0 {
		buf = make([]byte, 0, resp.Size)
	}
	buf, err := readAll(r, buf)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", resp.URL, err)
	}
	if limit >= 0 && int64(len(buf)) > limit {
		return nil, fmt.Errorf("GET %s: body exceeds the limit of %d bytes", resp.URL, limit)
	}
	return buf, nil
}

// readAll is io.ReadAll into buf.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// Error is an unsuccessful answer from one proxy, or a transport failure (Status 0).
type Error struct {
	URL    string
	Status int    // HTTP status, 0 for a transport error
	Reason string // first line of the text body, or the transport error's text
	Err    error  // the transport error, if any
	// RetryAfter is how long the proxy asked to be left alone (a 429 or 503 with Retry-After,
	// or the rest of such a pause): no request goes to it before then.
	RetryAfter time.Duration
}

// Error returns, for example,
// "GET https://host/x/@v/v1.0.0.zip: 503 Service Unavailable: upstream says ...".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("GET ")
	b.WriteString(e.URL)
	b.WriteString(": ")
	switch {
	case e.Status != 0:
		fmt.Fprintf(&b, "%d %s", e.Status, http.StatusText(e.Status))
		if e.Reason != "" {
			b.WriteString(": ")
			b.WriteString(e.Reason)
		}
	case e.Reason != "":
		b.WriteString(e.Reason)
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString("transport error")
	}
	return b.String()
}

// Unwrap returns the transport error, if any.
func (e *Error) Unwrap() error { return e.Err }

// Is reports a 404 or 410 answer as [fs.ErrNotExist], so errors.Is(err, fs.ErrNotExist) agrees
// with IsNotFound.
func (e *Error) Is(target error) bool {
	return target == fs.ErrNotExist && isNotFoundStatus(e.Status)
}

// proxyFailed reports whether err counts against a proxy's health: a transport error or a 5xx.
// Any other answer (404 and 429 included) is the proxy working.
func proxyFailed(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return true
	}
	return e.Status == 0 || e.Status >= 500
}

// RetryAfter returns how long the upstream asked to be left alone, if err says it did.
func RetryAfter(err error) (time.Duration, bool) {
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		return e.RetryAfter, true
	}
	return 0, false
}

// IsNotFound reports whether err says the upstream has no such path (404 or 410).
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && isNotFoundStatus(e.Status)
}

func isNotFoundStatus(code int) bool {
	return code == http.StatusNotFound || code == http.StatusGone
}

// timeoutError is the cause of a context that a timeout canceled. It satisfies
// errors.Is(err, context.DeadlineExceeded) and net.Error's Timeout.
type timeoutError struct {
	what string
	d    time.Duration
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("%s timeout of %v exceeded", e.what, e.d)
}
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }
func (e *timeoutError) Unwrap() error   { return context.DeadlineExceeded }
