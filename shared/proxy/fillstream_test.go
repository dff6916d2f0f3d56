package proxy_test

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/config"
	"github.com/modmirror/modmirror/shared/proxy"
	"github.com/modmirror/modmirror/shared/spool"
	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/store/memstore"
	"github.com/modmirror/modmirror/shared/testkit"
	"github.com/modmirror/modmirror/shared/upstream"
)

// streamingStore is a store.StreamStager over a memstore, as R2's multipart uploads are one:
// a pending object is invisible until committed. It counts commits and aborts.
type streamingStore struct {
	store.Store
	mu                    sync.Mutex
	open, commits, aborts int
}

func (s *streamingStore) StageStream(ctx context.Context, key string, o store.PutOptions) (store.Pending, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open++
	return &pendingObject{s: s, key: key, o: o}, nil
}

func (s *streamingStore) counts() (open, commits, aborts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open, s.commits, s.aborts
}

type pendingObject struct {
	s    *streamingStore
	key  string
	o    store.PutOptions
	buf  bytes.Buffer
	done bool
}

func (p *pendingObject) Write(b []byte) (int, error) { return p.buf.Write(b) }

func (p *pendingObject) Commit(ctx context.Context) (store.Info, error) {
	info, err := p.s.Put(ctx, p.key, &p.buf, int64(p.buf.Len()), p.o)
	if err != nil {
		return info, err
	}
	p.done = true
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	p.s.open--
	p.s.commits++
	return info, nil
}

func (p *pendingObject) Close() error {
	if p.done {
		return nil
	}
	p.done = true
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	p.s.open--
	p.s.aborts++
	return nil
}

// newStreamingEnv is a proxy with no file system and no memory for zips (as a Worker with a zip
// over its spool limit), on a streamingStore, in front of faulty (or up itself).
func newStreamingEnv(t *testing.T, up *testkit.Upstream, upURL string) (*httptest.Server, *streamingStore, *testkit.Buffer) {
	return newStreamingEnvMemory(t, up, upURL, 1) // not 0: the zero Options mean the default
}

// newStreamingEnvMemory is newStreamingEnv with memory for zips up to memoryMax bytes.
func newStreamingEnvMemory(t *testing.T, up *testkit.Upstream, upURL string, memoryMax int64) (*httptest.Server, *streamingStore, *testkit.Buffer) {
	st := &streamingStore{Store: memstore.New()}
	logs := &testkit.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	client, err := upstream.New(upURL, upstream.Options{Attempts: 1, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	db, err := checksum.NewDB(checksum.DBConfig{Name: up.SumDBName, Key: up.SumDBKey, Store: st.Store, Logger: logger,
		Remote: config.SumDBRemote(client, &config.SumDB{Name: up.SumDBName, Key: up.SumDBKey}, upstream.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	h, err := proxy.New(proxy.Config{Store: st, Upstream: client, Checksums: db, Logger: logger,
		Spool:            spool.Options{MemoryMax: memoryMax},
		RetryFailedAfter: -1}) // every refusal below is a fill of its own
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Wait(ctx); err != nil {
			t.Errorf("background work still running: %v", err)
		}
	})
	return srv, st, logs
}

// With no room to spool, every zip streams into the store as it is verified, and the go
// command gets what it verifies.
func TestStreamedZips(t *testing.T) {
	mods := testkit.MustLoadFixtures(t)
	up := testkit.NewUpstream(t, testkit.Options{Modules: mods})
	srv, st, _ := newStreamingEnv(t, up, up.URL)
	g := testkit.NewGoEnv(t, srv.URL, up)
	g.Set("GOSUMDB", up.SumDBKey)
	g.MustRun(testkit.CopyProject(t), "mod", "download")
	open, commits, aborts := st.counts()
	if commits == 0 || open != 0 || aborts != 0 {
		t.Errorf("%d zips committed, %d open, %d aborted; want some committed, none open or aborted", commits, open, aborts)
	}
	m := testkit.Find(mods, "example.com/lib", "v1.1.0")
	obj, err := st.Open(t.Context(), "example.com/lib/@v/v1.1.0.zip")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	if data, _ := io.ReadAll(obj); !bytes.Equal(data, m.Zip()) {
		t.Errorf("the stored zip is not the upstream's")
	}
	// Serving it again fills nothing more.
	if resp, err := http.Get(srv.URL + "/example.com/lib/@v/v1.1.0.zip"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET the stored zip: %v %v", resp, err)
	}
	if _, commits2, _ := st.counts(); commits2 != commits {
		t.Errorf("a hit committed another upload")
	}
}

// With room in memory, a zip of known size is verified there and put; one of unknown size
// (a chunked answer) streams, as it may be of any size.
func TestStreamedZipUnknownSize(t *testing.T) {
	mods := testkit.MustLoadFixtures(t)
	up := testkit.NewUpstream(t, testkit.Options{Modules: mods})
	faulty := newFaultyUpstream(t, up)
	srv, st, _ := newStreamingEnvMemory(t, up, faulty.srv.URL, 64<<20)
	const chunked = "/example.com/lib/@v/v1.1.0.zip"
	want := testkit.Find(mods, "example.com/lib", "v1.1.0").Zip()
	faulty.inject(chunked, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush() // no Content-Length: the body goes chunked
		w.Write(want)
	})
	for _, tt := range []struct {
		path    string
		commits int
	}{
		{"/example.com/lib/@v/v1.0.0.zip", 0}, // known size: in memory, one Put
		{chunked, 1},
	} {
		resp, err := http.Get(srv.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d %q", tt.path, resp.StatusCode, body)
		}
		if open, commits, aborts := st.counts(); open != 0 || commits != tt.commits || aborts != 0 {
			t.Errorf("after %s: %d open, %d committed, %d aborted; want 0, %d, 0", tt.path, open, commits, aborts, tt.commits)
		}
	}
	obj, err := st.Open(t.Context(), strings.TrimPrefix(chunked, "/"))
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	if data, _ := io.ReadAll(obj); !bytes.Equal(data, want) {
		t.Errorf("the zip streamed from a chunked answer is not the upstream's")
	}
}

// A zip that is tampered with, invalid, cut short by the upstream or cut off mid-body is
// aborted: 502, nothing stored, nothing left pending.
func TestStreamedZipRefused(t *testing.T) {
	mods := testkit.MustLoadFixtures(t)
	up := testkit.NewUpstream(t, testkit.Options{Modules: mods})
	faulty := newFaultyUpstream(t, up)
	srv, st, logs := newStreamingEnv(t, up, faulty.srv.URL)
	zipOf := func(path, version string) []byte { return testkit.Find(mods, path, version).Zip() }
	serve := func(body []byte, announce int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(announce))
			w.WriteHeader(http.StatusOK)
			w.Write(body)
			if len(body) < announce {
				// Cut the connection mid-body.
				if hj, ok := w.(http.Hijacker); ok {
					if c, _, err := hj.Hijack(); err == nil {
						c.Close()
					}
				}
			}
		}
	}
	lib := zipOf("example.com/lib", "v1.0.0")
	other := zipOf("example.com/lib", "v1.1.0") // well-formed, but another version's files
	tests := []struct {
		name, path string
		fault      http.HandlerFunc
		want       string
	}{
		{"tampered", "/example.com/lib/@v/v1.0.0.zip", serve(rezipWith(t, lib, "// evil\n"), len(rezipWith(t, lib, "// evil\n"))), "SECURITY ERROR"},
		{"other version's zip", "/example.com/lib/@v/v1.1.0.zip", serve(lib, len(lib)), "does not have prefix"},
		{"truncated", "/example.com/lib/@v/v1.2.0.zip", serve(other[:len(other)/2], len(other)/2), "invalid zip"},
		{"cut off mid-body", "/example.com/lib/@v/v1.2.0.zip", serve(other[:len(other)/2], len(other)), ""},
		{"byte flipped", "/example.com/lib/@v/v1.1.0.zip", serve(flipped(other), len(other)), "invalid zip"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			faulty.inject(tt.path, tt.fault)
			defer faulty.inject(tt.path, nil)
			resp, err := http.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), tt.want) {
				t.Errorf("GET %s = %d %q; want 502 and %q", tt.path, resp.StatusCode, body, tt.want)
			}
			if _, err := st.Stat(t.Context(), strings.TrimPrefix(tt.path, "/")); err == nil {
				t.Errorf("%s was stored", tt.path)
			}
			if open, commits, aborts := st.counts(); open != 0 || commits != 0 || aborts != i+1 {
				t.Errorf("%d open, %d committed, %d aborted; want 0, 0, %d", open, commits, aborts, i+1)
			}
		})
	}
	if !strings.Contains(logs.String(), `"event":"security"`) {
		t.Errorf("no security event logged")
	}
}

// flipped returns data with its middle byte changed.
func flipped(data []byte) []byte {
	c := bytes.Clone(data)
	c[len(c)/2] ^= 0xff
	return c
}

// rezipWith rewrites a zip with text appended to each file: well-formed, with another hash.
func rezipWith(t *testing.T, orig []byte, text string) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(orig), int64(len(orig)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(rc)
		rc.Close()
		w, err := zw.Create(f.Name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		io.WriteString(w, text)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
