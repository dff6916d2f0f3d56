// Package upstream fetches GOPROXY protocol paths from a list of proxies in GOPROXY syntax:
// entries separated by ',' fall through to the next only on 404 or 410; entries separated by '|'
// fall through on any error. Each request has connect and total timeouts and is retried with
// exponential backoff and jitter on transport errors and 5xx answers, never on 404/410.
package upstream

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// Options tune a Client. The zero value is usable: every field has a default.
type Options struct {
	// Transport to use; default: a keep-alive http.Transport with ConnectTimeout on dial and TLS.
	Transport http.RoundTripper
	// ConnectTimeout bounds dialing and the TLS handshake. Default 5s.
	ConnectTimeout time.Duration
	// HeaderTimeout bounds the wait for response headers of one attempt. Default 30s.
	HeaderTimeout time.Duration
	// Timeout bounds one whole request, retries and reading the body included. Default 10m
	// (a large zip over a slow link).
	Timeout time.Duration
	// Attempts is how many times a request is tried against one proxy. Default 3.
	Attempts int
	// BaseBackoff is the first retry's delay before jitter; it doubles each retry. Default 100ms.
	BaseBackoff time.Duration
	// UserAgent sent with every request. Default "modmirror".
	UserAgent string
	Logger    *slog.Logger
}

// Proxy is one entry of a GOPROXY list.
type Proxy struct {
	URL string // base URL without a trailing slash
	// FallThroughOnAnyError is true when the entry is followed by '|': any error moves to the next
	// entry. Otherwise (',' or the last entry) only 404 and 410 do.
	FallThroughOnAnyError bool
}

// ParseList parses GOPROXY syntax. "direct" and "off" entries are dropped (modmirror only talks to
// proxies); file:// URLs are kept. An empty result is an error.
func ParseList(list string) ([]Proxy, error) { panic("unimplemented") }

// Client fetches from a GOPROXY list. Safe for concurrent use; reuses connections.
type Client struct{}

// New returns a client for the GOPROXY list.
func New(list string, o Options) (*Client, error) { panic("unimplemented") }

// Proxies returns the parsed list.
func (c *Client) Proxies() []Proxy { panic("unimplemented") }

// Response is a successful (200) answer. The caller must close Body. Reading Body is bounded by
// Options.Timeout; a body shorter than its Content-Length reads as an error, never as EOF.
type Response struct {
	Body   io.ReadCloser
	Size   int64 // Content-Length, or -1
	Header http.Header
	URL    string // the URL that answered
}

// Get fetches path (already escaped, no leading slash, e.g. "example.com/!m/@v/v1.0.0.zip" or
// "sumdb/sum.example/lookup/m@v1.0.0") following the list semantics. An error that is, or wraps,
// a 404 or 410 from every consulted proxy satisfies IsNotFound. Errors name the URL and what the
// upstream answered (status and the first line of its text body).
func (c *Client) Get(ctx context.Context, path string) (*Response, error) { panic("unimplemented") }

// GetBytes is Get plus reading the whole body, refusing bodies over limit bytes.
func (c *Client) GetBytes(ctx context.Context, path string, limit int64) ([]byte, error) {
	panic("unimplemented")
}

// Error is an unsuccessful answer from one proxy, or a transport failure (Status 0).
type Error struct {
	URL    string
	Status int    // HTTP status, 0 for a transport error
	Reason string // first line of the text body, or the transport error's text
	Err    error  // the transport error, if any
}

func (e *Error) Error() string { panic("unimplemented") }
func (e *Error) Unwrap() error { return e.Err }

// IsNotFound reports whether err says the upstream has no such path (404 or 410).
func IsNotFound(err error) bool { panic("unimplemented") }
