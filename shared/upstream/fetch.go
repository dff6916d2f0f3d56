package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

const (
	maxReasonRunes = 200      // Error.Reason is at most this long
	maxReasonRead  = 4 << 10  // bytes of an error body searched for the reason
	maxDrain       = 64 << 10 // further bytes of an error body read so the connection is reused
	maxBackoff     = 30 * time.Second
)

// getHTTP fetches path from one http(s) proxy, retrying transient failures. On success the
// Response's Body.Close calls cancel.
func (c *Client) getHTTP(ctx context.Context, p *entry, path string, cancel context.CancelFunc) (*Response, error) {
	target, err := url.Parse(p.base.String() + "/" + path)
	if err != nil {
		return nil, fmt.Errorf("upstream: invalid path %q for %s: %w", path, p.shown, err)
	}
	shown := p.shown + "/" + path
	for attempt := 1; ; attempt++ {
		resp, retry, err := c.attempt(ctx, p, target, shown, attempt, cancel)
		if err == nil {
			return resp, nil
		}
		if !retry || attempt >= c.attempts || ctx.Err() != nil {
			return nil, err
		}
		if werr := sleep(ctx, c.backoff(attempt)); werr != nil {
			return nil, &Error{URL: shown, Reason: fmt.Sprintf("%v (while retrying after: %s)", werr, reasonOf(err)), Err: werr}
		}
	}
}

// reasonOf summarizes an *Error for another error's message, without the URL.
func reasonOf(err error) string {
	var e *Error
	if !errors.As(err, &e) {
		return err.Error()
	}
	return strings.TrimPrefix(e.Error(), "GET "+e.URL+": ")
}

// attempt makes one request. retry reports whether a failure is worth another attempt.
func (c *Client) attempt(ctx context.Context, p *entry, target *url.URL, shown string, n int, cancel context.CancelFunc) (_ *Response, retry bool, _ error) {
	actx, acancel := context.WithCancelCause(ctx)
	req, err := http.NewRequestWithContext(actx, http.MethodGet, target.String(), nil)
	if err != nil {
		acancel(nil)
		return nil, false, fmt.Errorf("upstream: GET %s: %w", shown, err)
	}
	req.Header.Set("User-Agent", c.userAgent)
	if p.user != nil {
		password, _ := p.user.Password()
		req.SetBasicAuth(p.user.Username(), password)
	}

	start := time.Now()
	headerTimeout := &timeoutError{what: "response header", d: c.headerTO}
	timer := time.AfterFunc(c.headerTO, func() { acancel(headerTimeout) })
	resp, err := c.hc.Do(req)
	if err == nil && resp.StatusCode == http.StatusOK && !timer.Stop() {
		// The header timeout fired as the headers arrived: the body is already cut off.
		resp.Body.Close()
		resp, err = nil, headerTimeout
	}
	if err != nil {
		timer.Stop()
		if actx.Err() != nil {
			err = context.Cause(actx)
		}
		acancel(nil)
		reason := err.Error()
		var ue *url.Error
		if errors.As(err, &ue) {
			reason = ue.Err.Error() // without the URL, which the Error names anyway
		}
		c.logAttempt(ctx, shown, n, 0, start, reason)
		var cve *tls.CertificateVerificationError
		retry = ctx.Err() == nil && !errors.As(err, &cve)
		return nil, retry, &Error{URL: shown, Reason: reason, Err: err}
	}

	if resp.StatusCode != http.StatusOK {
		// The header timer, if still running, also bounds reading the error body.
		reason := readReason(resp)
		_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
		resp.Body.Close()
		timer.Stop()
		acancel(nil)
		c.logAttempt(ctx, shown, n, resp.StatusCode, start, reason)
		e := &Error{URL: shown, Status: resp.StatusCode, Reason: reason}
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), c.now())
		}
		// A proxy that says when to come back is not asked again before then.
		retry = e.RetryAfter == 0 && (resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests)
		return nil, retry, e
	}

	c.logAttempt(ctx, shown, n, resp.StatusCode, start, "")
	idleTimeout := &timeoutError{what: "body idle", d: c.idleTO}
	idle := time.AfterFunc(c.idleTO, func() { acancel(idleTimeout) })
	return &Response{
		Body: &body{
			rc:     resp.Body,
			ctx:    actx,
			size:   resp.ContentLength,
			url:    shown,
			idle:   idle,
			idleTO: c.idleTO,
			close: func() {
				idle.Stop()
				acancel(nil)
				cancel()
			},
		},
		Size:   resp.ContentLength,
		Header: resp.Header,
		URL:    shown,
	}, false, nil
}

func (c *Client) logAttempt(ctx context.Context, shown string, n, status int, start time.Time, reason string) {
	if !c.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := []slog.Attr{
		slog.String("url", shown),
		slog.Int("attempt", n),
		slog.Int("status", status),
		slog.Duration("duration", time.Since(start)),
	}
	if reason != "" {
		attrs = append(attrs, slog.String("reason", reason))
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "upstream GET", attrs...)
}

// backoff returns the delay before attempt+1: full jitter over BaseBackoff doubled attempt-1
// times, capped at maxBackoff (or BaseBackoff, if larger).
func (c *Client) backoff(attempt int) time.Duration {
	if c.baseBackoff <= 0 {
		return 0
	}
	ceiling := max(maxBackoff, c.baseBackoff)
	d := c.baseBackoff
	for i := 1; i < attempt && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	return rand.N(d) + 1
}

// sleep waits for d or until ctx is done, returning ctx's cause then.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// readReason returns the first non-empty line of a text (or untyped) error body, cleaned of
// control characters and cut to maxReasonRunes.
func readReason(resp *http.Response) string {
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !strings.HasPrefix(mt, "text/") {
			return ""
		}
	}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, maxReasonRead))
	sc.Buffer(make([]byte, 0, 512), maxReasonRead)
	for sc.Scan() {
		if line := cleanLine(sc.Text()); line != "" {
			return line
		}
	}
	return ""
}

func cleanLine(s string) string {
	s = strings.ToValidUTF8(s, string(utf8.RuneError))
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > maxReasonRunes {
		s = string([]rune(s)[:maxReasonRunes])
	}
	return s
}

// getFile reads path from a file:// proxy. A missing file (or a directory) is a 404 *Error.
func (c *Client) getFile(ctx context.Context, p *entry, path string, cancel context.CancelFunc) (*Response, error) {
	shown := p.shown + "/" + path
	start := time.Now()
	fail := func(status int, reason string, err error) (*Response, error) {
		c.logAttempt(ctx, shown, 1, status, start, reason)
		return nil, &Error{URL: shown, Status: status, Reason: reason, Err: err}
	}
	local, err := filepath.Localize(path)
	if err != nil {
		return fail(http.StatusNotFound, "invalid path for a file system", err)
	}
	f, err := os.Open(filepath.Join(p.dir, local))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fail(http.StatusNotFound, "no such file", err)
		}
		return fail(0, err.Error(), err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fail(0, err.Error(), err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return fail(http.StatusNotFound, "not a regular file", nil)
	}
	c.logAttempt(ctx, shown, 1, http.StatusOK, start, "")
	h := http.Header{}
	h.Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
	h.Set("Last-Modified", fi.ModTime().UTC().Format(http.TimeFormat))
	return &Response{
		Body:   &body{rc: f, ctx: ctx, size: fi.Size(), url: shown, close: cancel},
		Size:   fi.Size(),
		Header: h,
		URL:    shown,
	}, nil
}

// body guards a response body: it fails reads once ctx is done, turns a body shorter than its
// declared size into io.ErrUnexpectedEOF, and cancels the request's context on Close.
type body struct {
	rc    io.ReadCloser
	ctx   context.Context
	size  int64 // declared size, or -1
	url   string
	close func()
	// idle ends the request when no byte arrives for idleTO; each read that brings some resets it.
	idle   *time.Timer
	idleTO time.Duration

	n    int64 // bytes read so far
	err  error // sticky read error
	once sync.Once
}

func (b *body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.ctx.Err() != nil {
		b.err = fmt.Errorf("GET %s: reading body: %w", b.url, context.Cause(b.ctx))
		return 0, b.err
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if n > 0 && b.idle != nil {
		b.idle.Reset(b.idleTO)
	}
	if b.size >= 0 && b.n > b.size {
		n -= int(b.n - b.size)
		b.n = b.size
		b.err = fmt.Errorf("GET %s: body longer than its Content-Length of %d bytes", b.url, b.size)
		return n, b.err
	}
	switch {
	case err == nil:
		return n, nil
	case err == io.EOF:
		if b.size >= 0 && b.n < b.size {
			b.err = fmt.Errorf("GET %s: body ended after %d of %d bytes: %w", b.url, b.n, b.size, io.ErrUnexpectedEOF)
			return n, b.err
		}
		return n, io.EOF
	default:
		if b.ctx.Err() != nil {
			err = context.Cause(b.ctx)
		}
		b.err = fmt.Errorf("GET %s: reading body: %w", b.url, err)
		return n, b.err
	}
}

// Close closes the body and releases the request's context and timers. Later calls do nothing.
func (b *body) Close() error {
	var err error
	b.once.Do(func() {
		err = b.rc.Close()
		b.close()
	})
	return err
}
