package proxy_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/config"
	"github.com/modmirror/modmirror/shared/proxy"
	"github.com/modmirror/modmirror/shared/store/memstore"
	"github.com/modmirror/modmirror/shared/testkit"
	"github.com/modmirror/modmirror/shared/upstream"
)

// faultyUpstream sits in front of the fake upstream and misbehaves on the paths it is told to.
type faultyUpstream struct {
	srv     *httptest.Server
	real    http.Handler
	mu      sync.Mutex
	faults  map[string]http.HandlerFunc
	release chan struct{} // closed when the test ends, freeing hung handlers
}

func newFaultyUpstream(t *testing.T, up *testkit.Upstream) *faultyUpstream {
	target, err := url.Parse(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	f := &faultyUpstream{real: httputil.NewSingleHostReverseProxy(target), faults: map[string]http.HandlerFunc{}, release: make(chan struct{})}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		fault := f.faults[r.URL.Path]
		f.mu.Unlock()
		if fault != nil {
			fault(w, r)
			return
		}
		f.real.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		close(f.release)
		f.srv.CloseClientConnections()
		f.srv.Close()
	})
	return f
}

func (f *faultyUpstream) inject(path string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[path] = h
}

func TestUpstreamFaults(t *testing.T) {
	mods := testkit.MustLoadFixtures(t)
	up := testkit.NewUpstream(t, testkit.Options{Modules: mods})
	faulty := newFaultyUpstream(t, up)
	st := memstore.New()
	logs := &testkit.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	client, err := upstream.New(faulty.srv.URL, upstream.Options{
		HeaderTimeout: 300 * time.Millisecond, Timeout: 2 * time.Second, Attempts: 2, BaseBackoff: 10 * time.Millisecond,
		BreakerFailures: -1, // every fault below must be met by the client itself, not skipped
	})
	if err != nil {
		t.Fatal(err)
	}
	db, err := checksum.NewDB(checksum.DBConfig{Name: up.SumDBName, Key: up.SumDBKey, Store: st, Logger: logger,
		Remote: config.SumDBRemote(client, &config.SumDB{Name: up.SumDBName, Key: up.SumDBKey}, upstream.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	h, err := proxy.New(proxy.Config{Store: st, Upstream: client, Checksums: db, Logger: logger, FillTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	// A module stored before the faults begin must be served throughout.
	const stored = "/example.com/lib/@v/v1.0.0.zip"
	resp, err := http.Get(srv.URL + stored)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("prefill %s: %v %v", stored, resp, err)
	}
	storedBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	realMod := func(path string) []byte {
		m := testkit.Find(mods, "example.com/"+path, "v1.0.0")
		if m == nil {
			t.Fatalf("no fixture example.com/%s@v1.0.0", path)
		}
		return m.GoMod()
	}
	tests := []struct {
		name   string
		path   string
		fault  http.HandlerFunc
		status int
	}{
		{"hang", "/example.com/nogomod/@v/v1.0.0.mod", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-faulty.release:
			}
		}, http.StatusGatewayTimeout},
		{"slow trickle", "/example.com/nogomod/@v/v1.0.0.zip", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100000")
			for i := 0; i < 100000; i++ {
				if _, err := w.Write([]byte{'x'}); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-time.After(50 * time.Millisecond):
				case <-r.Context().Done():
					return
				case <-faulty.release:
					return
				}
			}
		}, http.StatusGatewayTimeout},
		{"500", "/example.com/!upper/!mod/@v/v1.0.0.mod", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "upstream exploded", http.StatusInternalServerError)
		}, http.StatusBadGateway},
		{"connection reset", "/example.com/!upper/!mod/@v/v1.0.0.zip", func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			if tc, ok := conn.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			conn.Close()
		}, http.StatusBadGateway},
		{"truncated body", "/example.com/tool/@v/v1.0.0.zip", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "5000")
			w.Write([]byte("PK\x03\x04 not all of it"))
		}, http.StatusBadGateway},
		{"wrong Content-Length", "/example.com/tool/@v/v1.0.0.mod", func(w http.ResponseWriter, r *http.Request) {
			mod := realMod("tool")
			w.Header().Set("Content-Length", fmt.Sprint(len(mod)/2))
			w.Write(mod)
		}, http.StatusBadGateway},
		{"corrupted zip", "/example.com/major/v2/@v/v2.1.0.zip", func(w http.ResponseWriter, r *http.Request) {
			w.Write(bytes.Repeat([]byte("garbage!"), 4096))
		}, http.StatusBadGateway},
		{"redirect loop", "/example.com/major/v2/@v/v2.1.0.mod", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.Path, http.StatusFound)
		}, http.StatusBadGateway},
		{"1 GiB .mod", "/example.com/lib/@v/v1.2.0.mod", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(1<<30))
			chunk := make([]byte, 1<<20)
			for range 1 << 10 {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}, http.StatusBadGateway},
		{"1 GiB .mod, chunked", "/example.com/lib/@v/v1.1.0.mod", func(w http.ResponseWriter, r *http.Request) {
			chunk := bytes.Repeat([]byte("// pad\n"), 1<<17)
			for range 1 << 30 / len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}, http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			faulty.inject(tt.path, tt.fault)
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			resp, err := http.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			took := time.Since(start)
			status := resp.StatusCode
			var after runtime.MemStats
			runtime.ReadMemStats(&after)

			if resp.StatusCode != tt.status || resp.Header.Get("Cache-Control") != "no-store" || len(body) == 0 {
				t.Errorf("GET %s = %d %q (Cache-Control %q); want %d no-store with a reason", tt.path, resp.StatusCode, body, resp.Header.Get("Cache-Control"), tt.status)
			}
			if took > 5*time.Second {
				t.Errorf("answered after %s; the timeouts should bound it to a few seconds", took)
			}
			if _, err := st.Stat(t.Context(), strings.TrimPrefix(tt.path, "/")); err == nil {
				t.Errorf("%s was stored despite the fault", tt.path)
			}
			if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 64<<20 {
				t.Errorf("heap grew by %d MiB during the fault; want it bounded", grew>>20)
			}
			resp, err = http.Get(srv.URL + stored)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !bytes.Equal(again, storedBody) {
				t.Errorf("stored module during the fault: %d, %d bytes; want 200 and the stored bytes", resp.StatusCode, len(again))
			}
			t.Logf("%s: %d in %s", tt.name, status, took.Round(time.Millisecond))
		})
	}
}
