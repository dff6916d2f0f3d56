package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fastOptions keep every test well under a second.
func fastOptions() Options {
	return Options{
		Attempts:      3,
		BaseBackoff:   time.Millisecond,
		HeaderTimeout: 2 * time.Second,
		Timeout:       4 * time.Second,
	}
}

func newClient(t *testing.T, list string, o Options) *Client {
	t.Helper()
	c, err := New(list, o)
	if err != nil {
		t.Fatalf("New(%q): %v", list, err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func newServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// refusedURL returns an http URL on 127.0.0.1 where nothing listens.
func refusedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// statusServer answers every request with status and a text body naming it, counting hits.
func statusServer(t *testing.T, status int, hits *atomic.Int32) *httptest.Server {
	return newServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, "answer %d for %s\n", status, r.URL.Path)
	})
}

func getString(t *testing.T, c *Client, path string) (string, error) {
	t.Helper()
	resp, err := c.Get(context.Background(), path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestParseList(t *testing.T) {
	tests := []struct {
		list    string
		want    []Proxy
		wantErr string // substring; "" means no error
	}{
		{list: "https://a.example,https://b.example", want: []Proxy{{"https://a.example", false}, {"https://b.example", false}}},
		{list: "https://a.example|https://b.example,https://c.example", want: []Proxy{{"https://a.example", true}, {"https://b.example", false}, {"https://c.example", false}}},
		{list: " https://a.example/ | http://b.example:8080/x// ", want: []Proxy{{"https://a.example", true}, {"http://b.example:8080/x", false}}},
		{list: "https://a.example,direct", want: []Proxy{{"https://a.example", false}}},
		{list: "direct|https://a.example,off", want: []Proxy{{"https://a.example", false}}},
		{list: "https://a.example||,https://b.example", want: []Proxy{{"https://a.example", true}, {"https://b.example", false}}},
		{list: "proxy.example.com", want: []Proxy{{"https://proxy.example.com", false}}},
		{list: "file:///srv/mirror/", want: []Proxy{{"file:///srv/mirror", false}}},
		{list: "https://alice:s3cret@a.example", want: []Proxy{{"https://alice:s3cret@a.example", false}}},
		{list: "", wantErr: `no upstream proxy in ""`},
		{list: "off", wantErr: `no upstream proxy in "off"`},
		{list: "direct,off", wantErr: "no upstream proxy"},
		{list: " , | ", wantErr: "no upstream proxy"},
		{list: "ftp://a.example", wantErr: `unsupported scheme "ftp"`},
		{list: "https://a.example,gopher://b.example", wantErr: "unsupported scheme"},
		{list: "/srv/mirror", wantErr: "missing scheme"},
		{list: "file://host/srv/mirror", wantErr: "only an absolute path"},
		{list: "https://a.example/?x=1", wantErr: "query or fragment"},
		{list: "https://", wantErr: "no host"},
		{list: "ftp://alice:s3cret@a.example", wantErr: "unsupported scheme"},
		{list: "https://alice:s3cret@a.example/%zz", wantErr: "invalid proxy URL"},
	}
	for _, tt := range tests {
		t.Run(tt.list, func(t *testing.T) {
			got, err := ParseList(tt.list)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseList = %v, want error containing %q", got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error leaks the password: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseList: %v", err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) || len(got) != len(tt.want) {
				t.Fatalf("ParseList = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("entry %d = %#v, want %#v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestProxyStringRedacts(t *testing.T) {
	p := Proxy{URL: "https://alice:s3cret@a.example"}
	if s := fmt.Sprint(p); strings.Contains(s, "s3cret") || !strings.Contains(s, "alice:xxxxx@a.example") {
		t.Errorf("fmt.Sprint(Proxy) = %q, want the password redacted", s)
	}
}

func TestFallThrough(t *testing.T) {
	tests := []struct {
		name        string
		firstStatus int // 0: connection refused
		sep         string
		wantOK      bool
		wantStatus  int   // of the error, when !wantOK
		wantFirst   int32 // hits on the first proxy (Attempts is 2)
	}{
		{"comma 404", 404, ",", true, 0, 1},
		{"comma 410", 410, ",", true, 0, 1},
		{"comma 500", 500, ",", false, 500, 2},
		{"comma 403", 403, ",", false, 403, 1},
		{"comma refused", 0, ",", false, 0, 0},
		{"pipe 404", 404, "|", true, 0, 1},
		{"pipe 500", 500, "|", true, 0, 2},
		{"pipe 403", 403, "|", true, 0, 1},
		{"pipe refused", 0, "|", true, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var firstHits, secondHits atomic.Int32
			first := refusedURL(t)
			if tt.firstStatus != 0 {
				first = statusServer(t, tt.firstStatus, &firstHits).URL
			}
			second := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				secondHits.Add(1)
				io.WriteString(w, "from second")
			})
			o := fastOptions()
			o.Attempts = 2
			c := newClient(t, first+tt.sep+second.URL, o)
			got, err := getString(t, c, "example.com/m/@v/list")
			if tt.wantOK {
				if err != nil || got != "from second" {
					t.Fatalf("Get = %q, %v; want the second proxy's answer", got, err)
				}
			} else {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("Get = %q, %v; want an *Error", got, err)
				}
				if e.Status != tt.wantStatus {
					t.Errorf("Status = %d, want %d (%v)", e.Status, tt.wantStatus, err)
				}
				if !strings.HasPrefix(e.URL, first+"/") {
					t.Errorf("error URL %q is not under the first proxy %q", e.URL, first)
				}
				if secondHits.Load() != 0 {
					t.Errorf("second proxy was consulted %d times, want 0", secondHits.Load())
				}
				if IsNotFound(err) {
					t.Errorf("IsNotFound(%v) = true", err)
				}
			}
			if n := firstHits.Load(); n != tt.wantFirst {
				t.Errorf("first proxy hit %d times, want %d", n, tt.wantFirst)
			}
		})
	}
}

func TestExhaustedListError(t *testing.T) {
	tests := []struct {
		name         string
		statuses     []int
		seps         string // separators between entries
		wantStatus   int
		wantNotFound bool
	}{
		{"all 404", []int{404, 404}, ",", 404, true},
		{"404 then 410", []int{404, 410}, ",", 410, true},
		{"500 then 404", []int{500, 404}, "|", 500, false},
		{"404 then 503", []int{404, 503}, ",", 503, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var urls []string
			var hits atomic.Int32
			for _, s := range tt.statuses {
				urls = append(urls, statusServer(t, s, &hits).URL)
			}
			o := fastOptions()
			o.Attempts = 1
			c := newClient(t, strings.Join(urls, tt.seps), o)
			_, err := c.Get(context.Background(), "example.com/m/@v/v1.0.0.info")
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Get error = %v, want an *Error", err)
			}
			if e.Status != tt.wantStatus {
				t.Errorf("Status = %d, want %d", e.Status, tt.wantStatus)
			}
			if got := IsNotFound(err); got != tt.wantNotFound {
				t.Errorf("IsNotFound = %v, want %v (%v)", got, tt.wantNotFound, err)
			}
			if got := errors.Is(err, fs.ErrNotExist); got != tt.wantNotFound {
				t.Errorf("errors.Is(err, fs.ErrNotExist) = %v, want %v", got, tt.wantNotFound)
			}
			if int(hits.Load()) != len(tt.statuses) {
				t.Errorf("%d proxies consulted, want %d", hits.Load(), len(tt.statuses))
			}
		})
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name       string
		statuses   []int // answers in order; the last repeats
		attempts   int
		wantHits   int32
		wantStatus int // 200 for success
	}{
		{"503 twice then 200", []int{503, 503, 200}, 3, 3, 200},
		{"429 then 200", []int{429, 200}, 3, 2, 200},
		{"502 exhausts attempts", []int{502}, 3, 3, 502},
		{"single attempt", []int{500, 200}, 1, 1, 500},
		{"404 never retried", []int{404, 200}, 3, 1, 404},
		{"410 never retried", []int{410, 200}, 3, 1, 410},
		{"400 never retried", []int{400, 200}, 3, 1, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				n := int(hits.Add(1))
				s := tt.statuses[min(n, len(tt.statuses))-1]
				w.WriteHeader(s)
				fmt.Fprintf(w, "try %d", n)
			})
			o := fastOptions()
			o.Attempts = tt.attempts
			c := newClient(t, srv.URL, o)
			got, err := getString(t, c, "example.com/m/@v/v1.0.0.mod")
			if tt.wantStatus == 200 {
				if err != nil || got != fmt.Sprintf("try %d", tt.wantHits) {
					t.Errorf("Get = %q, %v; want the answer of try %d", got, err, tt.wantHits)
				}
			} else {
				var e *Error
				if !errors.As(err, &e) || e.Status != tt.wantStatus {
					t.Errorf("Get error = %v, want status %d", err, tt.wantStatus)
				}
			}
			if n := hits.Load(); n != tt.wantHits {
				t.Errorf("%d attempts, want %d", n, tt.wantHits)
			}
		})
	}
}

func TestBackoffRespectsContext(t *testing.T) {
	var hits atomic.Int32
	srv := statusServer(t, http.StatusServiceUnavailable, &hits)

	t.Run("cancel", func(t *testing.T) {
		hits.Store(0)
		o := fastOptions()
		o.BaseBackoff = 10 * time.Second // a retry would outlast the test
		c := newClient(t, srv.URL, o)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		_, err := c.Get(ctx, "example.com/m/@v/list")
		if d := time.Since(start); d > time.Second {
			t.Errorf("Get took %v after cancel", d)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Get error = %v, want context.Canceled", err)
		}
		if err != nil && !strings.Contains(err.Error(), "503") {
			t.Errorf("error %q does not mention the last answer", err)
		}
		if n := hits.Load(); n != 1 {
			t.Errorf("%d attempts, want 1", n)
		}
	})

	t.Run("total timeout", func(t *testing.T) {
		hits.Store(0)
		o := fastOptions()
		o.BaseBackoff = 10 * time.Second
		o.Timeout = 50 * time.Millisecond
		c := newClient(t, srv.URL+"|"+srv.URL, o)
		start := time.Now()
		_, err := c.Get(context.Background(), "example.com/m/@v/list")
		if d := time.Since(start); d > time.Second {
			t.Errorf("Get took %v with a 50ms timeout", d)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Get error = %v, want context.DeadlineExceeded", err)
		}
		if n := hits.Load(); n != 1 {
			t.Errorf("%d attempts, want 1 (no fall-through after the deadline)", n)
		}
	})
}

func TestHeaderTimeout(t *testing.T) {
	var hits atomic.Int32
	release := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before srv.Close

	o := fastOptions()
	o.HeaderTimeout = 50 * time.Millisecond
	o.Attempts = 2
	c := newClient(t, srv.URL, o)
	start := time.Now()
	_, err := c.Get(context.Background(), "example.com/m/@v/v1.0.0.zip")
	d := time.Since(start)
	if d < 100*time.Millisecond || d > time.Second {
		t.Errorf("Get took %v, want about 2×50ms", d)
	}
	var e *Error
	if !errors.As(err, &e) || e.Status != 0 {
		t.Fatalf("Get error = %v, want a transport *Error", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "response header timeout") {
		t.Errorf("Get error = %v, want a response header timeout", err)
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("%d attempts, want 2 (a header timeout is retried)", n)
	}
}

func TestTotalTimeoutWhileReadingBody(t *testing.T) {
	release := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		for range 1000 {
			w.Write([]byte{'x'})
			w.(http.Flusher).Flush()
			select {
			case <-time.After(10 * time.Millisecond):
			case <-r.Context().Done():
				return
			case <-release:
				return
			}
		}
	})
	t.Cleanup(func() { close(release) })

	o := fastOptions()
	o.Timeout = 150 * time.Millisecond
	c := newClient(t, srv.URL, o)
	start := time.Now()
	resp, err := c.Get(context.Background(), "example.com/m/@v/v1.0.0.zip")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer resp.Body.Close()
	if resp.Size != 1000 {
		t.Errorf("Size = %d, want 1000", resp.Size)
	}
	b, err := io.ReadAll(resp.Body)
	if d := time.Since(start); d > time.Second {
		t.Errorf("reading took %v with a 150ms timeout", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ReadAll error = %v, want context.DeadlineExceeded", err)
	}
	if len(b) == 0 || len(b) >= 1000 {
		t.Errorf("read %d bytes before the deadline, want some but not all", len(b))
	}
	if _, err := resp.Body.Read(make([]byte, 1)); err == nil || err == io.EOF {
		t.Errorf("Read after the deadline = %v, want an error", err)
	}
}

// TestIdleTimeout checks that a body that stops half-way is abandoned after IdleTimeout, long
// before the total Timeout, while a slow body that keeps coming is not.
func TestIdleTimeout(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		gap := 20 * time.Millisecond // slow, but never idle for long
		if strings.Contains(r.URL.Path, "stall") {
			gap = time.Hour
		}
		for i := range 10 {
			w.Write(bytes.Repeat([]byte{'x'}, 100))
			w.(http.Flusher).Flush()
			if i == 4 {
				select {
				case <-time.After(gap):
				case <-r.Context().Done():
					return
				case <-release:
					return
				}
			}
		}
	})
	o := fastOptions()
	o.IdleTimeout = 200 * time.Millisecond
	o.Timeout = time.Minute
	c := newClient(t, srv.URL, o)
	for _, tt := range []struct {
		path    string
		wantErr bool
	}{
		{"example.com/slow/@v/v1.0.0.zip", false},
		{"example.com/stall/@v/v1.0.0.zip", true},
	} {
		start := time.Now()
		resp, err := c.Get(context.Background(), tt.path)
		if err != nil {
			t.Fatalf("Get %s: %v", tt.path, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: reading took %v with a 200ms idle timeout", tt.path, d)
		}
		switch {
		case tt.wantErr && (!errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "idle") || len(b) != 500):
			t.Errorf("%s: read %d bytes, %v; want 500, then the idle timeout", tt.path, len(b), err)
		case !tt.wantErr && (err != nil || len(b) != 1000):
			t.Errorf("%s: read %d bytes, %v; want all 1000", tt.path, len(b), err)
		}
	}
}

// roundTripFunc is an http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestBodyLengthMismatch(t *testing.T) {
	// A server that declares 100 bytes, sends 10 and hangs up.
	hijack := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
		buf.Flush()
	})
	// Transports that do not check Content-Length themselves.
	fake := func(declared int64, body string) Options {
		o := fastOptions()
		o.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{
				StatusCode:    http.StatusOK,
				Header:        http.Header{},
				ContentLength: declared,
				Body:          io.NopCloser(strings.NewReader(body)),
				Request:       r,
			}, nil
		})
		return o
	}
	tests := []struct {
		name    string
		list    string
		o       Options
		wantErr error // nil: any error
	}{
		{"server hangs up early", hijack.URL, fastOptions(), io.ErrUnexpectedEOF},
		{"transport short body", "http://fake.test", fake(100, "0123456789"), io.ErrUnexpectedEOF},
		{"transport long body", "http://fake.test", fake(5, "0123456789"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, tt.list, tt.o)
			resp, err := c.Get(context.Background(), "example.com/m/@v/v1.0.0.zip")
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				t.Fatal("ReadAll of a body that does not match its Content-Length succeeded")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("ReadAll error = %v, want %v", err, tt.wantErr)
			}
			if _, err := c.GetBytes(context.Background(), "example.com/m/@v/v1.0.0.zip", 1<<20); err == nil {
				t.Error("GetBytes of a mismatched body succeeded")
			}
		})
	}
}

func TestKeepAlive(t *testing.T) {
	var conns atomic.Int32
	big := strings.Repeat("not found\n", 1000)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".missing") {
			http.Error(w, big, http.StatusNotFound)
			return
		}
		io.WriteString(w, "content of "+r.URL.Path)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	c := newClient(t, srv.URL, fastOptions())
	for i := range 20 {
		path := fmt.Sprintf("example.com/m/@v/v1.0.%d.mod", i)
		if i%2 == 1 {
			path = fmt.Sprintf("example.com/m/@v/v1.0.%d.missing", i)
			if _, err := c.Get(context.Background(), path); !IsNotFound(err) {
				t.Fatalf("Get(%s) = %v, want not found", path, err)
			}
			continue
		}
		b, err := c.GetBytes(context.Background(), path, 1<<10)
		if err != nil || string(b) != "content of /"+path {
			t.Fatalf("GetBytes(%s) = %q, %v", path, b, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("20 sequential requests used %d connections, want 1", n)
	}
}

func TestCredentials(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user != "alice" || pass != "s3cret" {
			http.Error(w, "bad credentials", http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/fail" {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "private")
	})
	var logs bytes.Buffer
	o := fastOptions()
	o.Attempts = 2
	o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	list := strings.Replace(srv.URL, "http://", "http://alice:s3cret@", 1)
	c := newClient(t, list, o)

	resp, err := c.Get(context.Background(), "ok")
	if err != nil {
		t.Fatalf("Get with credentials: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "private" {
		t.Errorf("body = %q, want %q (Basic auth not sent?)", b, "private")
	}

	_, err = c.Get(context.Background(), "fail")
	if err == nil {
		t.Fatal("Get(fail) succeeded")
	}
	for what, s := range map[string]string{
		"error":        err.Error(),
		"Response.URL": resp.URL,
		"log":          logs.String(),
		"Proxies":      fmt.Sprint(c.Proxies()),
	} {
		if strings.Contains(s, "s3cret") {
			t.Errorf("%s leaks the password: %s", what, s)
		}
	}
	want := "GET http://alice:xxxxx@" + strings.TrimPrefix(srv.URL, "http://") + "/fail: 500 Internal Server Error: boom"
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	if !strings.Contains(logs.String(), "status=500") || !strings.Contains(logs.String(), "attempt=2") {
		t.Errorf("debug log lacks the attempts:\n%s", logs.String())
	}
}

func TestErrorReason(t *testing.T) {
	long := strings.Repeat("a", 300)
	tests := []struct {
		name        string
		contentType string
		body        string
		wantReason  string
	}{
		{"first line", "text/plain; charset=utf-8", "upstream says no\nsecond line\n", "upstream says no"},
		{"leading blank lines", "text/plain", "\r\n\n  not here either \r\nmore", "not here either"},
		{"cut to 200", "text/plain", long, long[:200]},
		{"control characters", "text/plain", "bad\x1b[31m red", "bad [31m red"},
		{"not text", "application/json", `{"error":"x"}`, ""},
		{"empty", "text/plain", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, tt.body)
			})
			o := fastOptions()
			o.Attempts = 1
			c := newClient(t, srv.URL, o)
			_, err := c.Get(context.Background(), "x/@v/v1.0.0.zip")
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Get error = %v, want *Error", err)
			}
			if e.Reason != tt.wantReason {
				t.Errorf("Reason = %q, want %q", e.Reason, tt.wantReason)
			}
			want := "GET " + srv.URL + "/x/@v/v1.0.0.zip: 503 Service Unavailable"
			if tt.wantReason != "" {
				want += ": " + tt.wantReason
			}
			if err.Error() != want {
				t.Errorf("Error() = %q, want %q", err, want)
			}
		})
	}
}

func TestFileUpstream(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"example.com/!m/@v/list":                    "v1.0.0\n",
		"example.com/!m/@v/v1.0.0+incompatible.mod": "module example.com/M\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	var httpHits atomic.Int32
	fallback := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		httpHits.Add(1)
		io.WriteString(w, "from http")
	})
	fileURL := "file://" + filepath.ToSlash(dir)
	if !strings.HasPrefix(filepath.ToSlash(dir), "/") {
		fileURL = "file:///" + filepath.ToSlash(dir)
	}

	tests := []struct {
		name         string
		list         string
		path         string
		want         string
		wantNotFound bool
		wantHTTPHits int32
	}{
		{"file", fileURL, "example.com/!m/@v/list", "v1.0.0\n", false, 0},
		{"plus in name", fileURL, "example.com/!m/@v/v1.0.0+incompatible.mod", "module example.com/M\n", false, 0},
		{"missing", fileURL, "example.com/!m/@v/v2.0.0.mod", "", true, 0},
		{"directory", fileURL, "example.com/!m/@v", "", true, 0},
		{"missing falls through", fileURL + "," + fallback.URL, "example.com/!m/@v/v2.0.0.mod", "from http", false, 1},
		{"present wins", fileURL + "," + fallback.URL, "example.com/!m/@v/list", "v1.0.0\n", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			httpHits.Store(0)
			c := newClient(t, tt.list, fastOptions())
			resp, err := c.Get(context.Background(), tt.path)
			if tt.wantNotFound {
				var e *Error
				if !IsNotFound(err) || !errors.As(err, &e) || e.Status != http.StatusNotFound {
					t.Fatalf("Get = %v, want a 404 *Error", err)
				}
				if !strings.HasPrefix(e.URL, fileURL+"/") {
					t.Errorf("error URL = %q, want it under %q", e.URL, fileURL)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil || string(b) != tt.want {
				t.Errorf("body = %q, %v; want %q", b, err, tt.want)
			}
			if tt.wantHTTPHits == 0 && resp.Size != int64(len(tt.want)) {
				t.Errorf("Size = %d, want %d", resp.Size, len(tt.want))
			}
			if n := httpHits.Load(); n != tt.wantHTTPHits {
				t.Errorf("http fallback hit %d times, want %d", n, tt.wantHTTPHits)
			}
		})
	}
}

func TestFileBodyAfterDeadline(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "list"), []byte("v1.0.0\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	o := fastOptions()
	o.Timeout = 30 * time.Millisecond
	c := newClient(t, "file:///"+strings.TrimPrefix(filepath.ToSlash(dir), "/"), o)
	resp, err := c.Get(context.Background(), "list")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer resp.Body.Close()
	time.Sleep(60 * time.Millisecond)
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ReadAll after the deadline = %v, want context.DeadlineExceeded", err)
	}
}

func TestGetBytesLimit(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			w.(http.Flusher).Flush() // no Content-Length
		} else {
			w.Header().Set("Content-Length", "100")
		}
		io.WriteString(w, strings.Repeat("z", 100))
	})
	c := newClient(t, srv.URL, fastOptions())
	tests := []struct {
		path    string
		limit   int64
		wantErr bool
	}{
		{"sized", 100, false},
		{"sized", 99, true},
		{"sized", -1, false},
		{"chunked", 100, false},
		{"chunked", 99, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.path, tt.limit), func(t *testing.T) {
			b, err := c.GetBytes(context.Background(), tt.path, tt.limit)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), srv.URL+"/"+tt.path) || !strings.Contains(err.Error(), "limit") {
					t.Errorf("GetBytes = %d bytes, %v; want a limit error naming the URL", len(b), err)
				}
				return
			}
			if err != nil || len(b) != 100 {
				t.Errorf("GetBytes = %d bytes, %v; want 100", len(b), err)
			}
		})
	}
}

func TestInvalidPath(t *testing.T) {
	var hits atomic.Int32
	srv := statusServer(t, 200, &hits)
	c := newClient(t, srv.URL, fastOptions())
	for _, p := range []string{"", "/abs", "a/../b", "a//b", "a?x=1", "a#f", "."} {
		if _, err := c.Get(context.Background(), p); err == nil || IsNotFound(err) {
			t.Errorf("Get(%q) = %v, want an invalid path error", p, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("invalid paths reached the server %d times", n)
	}
}

func TestConcurrentGets(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	})
	c := newClient(t, srv.URL, fastOptions())
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			path := fmt.Sprintf("m%d/@v/list", i)
			b, err := c.GetBytes(context.Background(), path, 1<<10)
			if err != nil || string(b) != "/"+path {
				t.Errorf("GetBytes(%s) = %q, %v", path, b, err)
			}
		})
	}
	wg.Wait()
}

func TestCircuitBreaker(t *testing.T) {
	var healthy atomic.Bool
	var hits atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if !healthy.Load() {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok")
	})
	var fallbackHits atomic.Int32
	fallback := statusServer(t, http.StatusOK, &fallbackHits)
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	c := newClient(t, srv.URL+"|"+fallback.URL, Options{Attempts: 1, BreakerFailures: 3, BreakerCooldown: time.Minute, Now: clock})

	// Three failures about three modules open the breaker; each fell through to the fallback.
	for i := range 3 {
		if _, err := getString(t, c, fmt.Sprintf("m%d/@v/list", i)); err != nil {
			t.Fatalf("fallback after a 503: %v", err)
		}
	}
	if hits.Load() != 3 {
		t.Fatalf("primary hit %d times; want 3", hits.Load())
	}
	// Open: the primary is skipped, the fallback answers at once.
	for range 5 {
		if _, err := getString(t, c, "m/@v/list"); err != nil {
			t.Fatal(err)
		}
	}
	if hits.Load() != 3 || fallbackHits.Load() != 8 {
		t.Fatalf("while open: primary %d hits (want 3), fallback %d (want 8)", hits.Load(), fallbackHits.Load())
	}
	// After the cooldown one probe goes through; it succeeds and closes the breaker.
	advance(2 * time.Minute)
	healthy.Store(true)
	for range 3 {
		if body, err := getString(t, c, "m/@v/list"); err != nil || body != "ok" {
			t.Fatalf("after recovery: %q %v; want the primary's ok", body, err)
		}
	}
	if hits.Load() != 6 {
		t.Fatalf("primary hit %d times after recovery; want 6", hits.Load())
	}

	// With ',' the open breaker fails at once, naming the circuit.
	healthy.Store(false)
	only := newClient(t, srv.URL, Options{Attempts: 1, BreakerFailures: 2, BreakerCooldown: time.Minute, Now: clock})
	for i := range 2 {
		getString(t, only, fmt.Sprintf("m%d/@v/list", i))
	}
	before := hits.Load()
	_, err := getString(t, only, "m/@v/list")
	if err == nil || !strings.Contains(err.Error(), "circuit open") || hits.Load() != before {
		t.Fatalf("open breaker: %v (primary hits %d -> %d); want a circuit-open error without a request", err, before, hits.Load())
	}
	// 404s are answers, not failures: they never open the breaker.
	var nfHits atomic.Int32
	nf := statusServer(t, http.StatusNotFound, &nfHits)
	c404 := newClient(t, nf.URL, Options{Attempts: 1, BreakerFailures: 2, Now: clock})
	for range 5 {
		if _, err := getString(t, c404, "m/@v/list"); !IsNotFound(err) {
			t.Fatalf("want not found, got %v", err)
		}
	}
	if nfHits.Load() != 5 {
		t.Fatalf("404 server hit %d times; want 5 (a 404 must not open the breaker)", nfHits.Load())
	}
}

// TestBreakerBlastRadius checks that one module's failures, however many, never open the breaker
// that every other module's fills go through.
func TestBreakerBlastRadius(t *testing.T) {
	var hits atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if strings.HasPrefix(r.URL.Path, "/example.com/broken/") {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "ok")
	})
	c := newClient(t, srv.URL, Options{Attempts: 1})
	for i := range 8 {
		if _, err := getString(t, c, fmt.Sprintf("example.com/broken/@v/v1.0.%d.info", i)); err == nil {
			t.Fatal("the broken module answered")
		}
	}
	if body, err := getString(t, c, "example.com/healthy/@v/v1.0.0.info"); err != nil || body != "ok" {
		t.Errorf("a healthy module after eight failures of another: %q, %v; want the upstream's answer", body, err)
	}
	if n := hits.Load(); n != 9 {
		t.Errorf("upstream hit %d times; want 9: every request reaches it", n)
	}
}

// TestRetryAfter checks that a 429 or 503 with Retry-After pauses that proxy (no retry, no
// request before it ends, the next entry after '|' tried meanwhile) without opening its breaker,
// and that the error says how long.
func TestRetryAfter(t *testing.T) {
	var hits, fallbackHits atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Retry-After", "30")
		http.Error(w, "slow down", http.StatusTooManyRequests)
	})
	fallback := statusServer(t, http.StatusOK, &fallbackHits)
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	only := newClient(t, srv.URL, Options{Attempts: 3, BreakerFailures: 1, Now: clock})
	_, err := getString(t, only, "m/@v/list")
	if d, ok := RetryAfter(err); !ok || d != 30*time.Second || hits.Load() != 1 {
		t.Fatalf("429 with Retry-After: 30: %v (Retry-After %v, %d requests); want one request and 30s", err, d, hits.Load())
	}
	_, err = getString(t, only, "n/@v/list")
	if d, ok := RetryAfter(err); !ok || d != 30*time.Second || hits.Load() != 1 || strings.Contains(err.Error(), "circuit") {
		t.Fatalf("during the pause: %v (%v, %d requests); want no request and the rest of the pause", err, d, hits.Load())
	}
	mu.Lock()
	now = now.Add(31 * time.Second)
	mu.Unlock()
	getString(t, only, "o/@v/list")
	if hits.Load() != 2 {
		t.Fatalf("after the pause: %d requests; want the proxy asked again", hits.Load())
	}

	either := newClient(t, srv.URL+"|"+fallback.URL, Options{Attempts: 3, Now: clock})
	for range 3 {
		if _, err := getString(t, either, "m/@v/list"); err != nil {
			t.Fatalf("with '|': %v; want the fallback's answer", err)
		}
	}
	if hits.Load() != 3 || fallbackHits.Load() != 3 {
		t.Errorf("with '|': primary %d requests (want 3: one more), fallback %d (want 3)", hits.Load(), fallbackHits.Load())
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		v    string
		want time.Duration
	}{
		{"", 0}, {"soon", 0}, {"-5", 0},
		{"0", time.Second}, {"7", 7 * time.Second}, {"999999", maxRetryAfter},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), time.Second},
	} {
		if got := parseRetryAfter(tt.v, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v; want %v", tt.v, got, tt.want)
		}
	}
}
