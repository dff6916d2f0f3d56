//go:build !(js && wasm)

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/testkit"
)

// hugeSize is the big module's zip: far over what the isolate's 128 MB could hold.
const hugeSize = 300 << 20

// TestWorkerBigZip fills zips over the spool limit through the Worker under workerd: each is
// verified as it streams into an R2 multipart upload, completed only once its hash matches the
// checksum database's. A 300 MiB module is downloaded and verified by the go command against
// go.sum; a tampered, a truncated and a cut-off zip, each over the limit, answer 502 and leave
// no object in R2; a zip over the 500 MiB limit is refused before it is read.
func TestWorkerBigZip(t *testing.T) {
	tl := findTools(t)
	dir := t.TempDir()
	var huge, bad *testkit.BigModule
	parallel(
		func() { tl.buildWorker(t, dir, "modmirror_storeapi") },
		func() {
			huge = testkit.NewBig(t, "example.com/huge", "v1.0.0", hugeSize)
			// Over the spool limit, and three parts of a multipart upload.
			bad = testkit.NewBig(t, "example.com/bad", "v1.0.0", DefaultSpoolLimit+(4<<20))
		},
	)
	if t.Failed() {
		t.FailNow()
	}
	up := testkit.NewUpstream(t, testkit.Options{Big: []*testkit.BigModule{huge, bad}})
	front := newFront(t, up.URL)
	w := tl.startWorker(t, dir, t.TempDir(), map[string]string{
		"MODMIRROR_UPSTREAM": front.srv.URL,
		"MODMIRROR_SUMDB":    up.SumDBKey,
	})
	bucket := &apiStore{base: w.url, client: &http.Client{}}

	t.Run("MultipartStore", func(t *testing.T) {
		// r2store's multipart writer on the real binding: several equal parts and a shorter
		// last one; an upload closed before its commit leaves nothing; a create-only commit
		// over an object refuses and leaves that object as it was.
		ctx := t.Context()
		content := bytes.Repeat([]byte("0123456789abcdef"), (20<<20+12345)/16)
		info, err := streamPut(t, w.url, "multipart/a", content, true, true)
		if err != nil || info.Size != int64(len(content)) || info.ContentType != "application/zip" {
			t.Fatalf("committed upload: %+v, %v; want %d bytes, application/zip", info, err, len(content))
		}
		obj, err := bucket.Open(ctx, "multipart/a")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(obj)
		obj.Close()
		if err != nil || !bytes.Equal(got, content) {
			t.Errorf("stored object: %d bytes, %v; want the %d bytes written", len(got), err, len(content))
		}
		if _, err := streamPut(t, w.url, "multipart/b", content, false, true); err != nil {
			t.Fatalf("aborted upload: %v", err)
		}
		if _, err := bucket.Stat(ctx, "multipart/b"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("an aborted upload left an object: %v", err)
		}
		if _, err := streamPut(t, w.url, "multipart/a", content[:100], true, true); !errors.Is(err, store.ErrExist) {
			t.Errorf("create-only commit over an object: %v; want ErrExist", err)
		}
		if after, err := bucket.Stat(ctx, "multipart/a"); err != nil || after.ETag != info.ETag || after.Size != info.Size {
			t.Errorf("the object after a refused commit: %+v, %v; want %+v", after, err, info)
		}
	})

	t.Run("Huge", func(t *testing.T) {
		project := t.TempDir()
		gomod := "module example.com/user\n\ngo 1.21\n\nrequire " + huge.Path + " " + huge.Version + "\n"
		if err := os.WriteFile(filepath.Join(project, "go.mod"), []byte(gomod), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(project, "go.sum"), []byte(huge.GoSum()), 0o644); err != nil {
			t.Fatal(err)
		}
		g := testkit.NewGoEnv(t, w.url, up)
		g.Set("GOSUMDB", up.SumDBKey)
		start := time.Now()
		g.MustRun(project, "mod", "download", huge.Path)
		took := time.Since(start)
		// The go command checked the zip's hash against go.sum as it downloaded; verify
		// checks the extracted files again.
		if out := g.MustRun(project, "mod", "verify"); !strings.Contains(out, "all modules verified") {
			t.Errorf("go mod verify: %s", out)
		}
		if info, err := bucket.Stat(t.Context(), "example.com/huge/@v/v1.0.0.zip"); err != nil || info.Size != huge.ZipSize {
			t.Fatalf("stored zip: %+v, %v; want %d bytes", info, err, huge.ZipSize)
		}
		for _, line := range strings.Split(w.Output(), "\n") {
			if strings.Contains(line, `"path":"/example.com/huge/@v/v1.0.0.zip"`) || strings.Contains(line, `"msg":"zip streamed"`) {
				t.Log(line) // the request lines (fill time) and instance memory lines
			}
		}
		// The Go instance's memory as the fill logs it once the zip is through, and as the
		// Worker logs it after the request (only when over 16 MiB).
		m := streamedSysMiB.FindStringSubmatch(w.Output())
		if m == nil {
			t.Fatalf("no \"zip streamed\" line with sys_mib in the Worker's log")
		}
		peak, _ := strconv.ParseInt(m[1], 10, 64)
		peak = max(peak, peakSysMiB(w.Output(), "/example.com/huge/@v/v1.0.0.zip"))
		rss := workerdPeakRSS(t, w.Pid())
		t.Logf("a %d MiB zip filled, verified and served in %s: Go instance memory at most %d MiB; workerd peak RSS %d MiB",
			huge.ZipSize>>20, took.Round(time.Second), peak, rss>>20)
		if peak > 32 {
			t.Errorf("instance memory filling a %d MiB zip: %d MiB logged; want at most 32", huge.ZipSize>>20, peak)
		}
	})

	// Every refusal below leaves no object under the module's key, and no multipart upload
	// completed by mistake: the bucket holds nothing of the module's zip.
	refused := func(t *testing.T, path, want string) {
		t.Helper()
		resp, body := get(t, w.url+path, nil)
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), want) {
			t.Errorf("GET %s = %d %q; want 502 and %q", path, resp.StatusCode, body, want)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q; want no-store", cc)
		}
		key := strings.TrimPrefix(path, "/")
		if _, err := bucket.Stat(t.Context(), key); err == nil {
			t.Errorf("%s was stored although it was refused", key)
		}
		for _, k := range keys(t, bucket, "") {
			if strings.HasSuffix(k, ".zip") && strings.HasPrefix(k, "example.com/bad/") {
				t.Errorf("R2 holds %s after a refused fill", k)
			}
		}
	}
	const badZip = "/example.com/bad/@v/v1.0.0.zip"

	t.Run("Tampered", func(t *testing.T) {
		up.Tamper(badZip, rezip(t, "evil"))
		defer up.Tamper(badZip, nil)
		refused(t, badZip, "SECURITY ERROR")
		if !strings.Contains(w.Output(), `"event":"security"`) {
			t.Errorf("no security event in the Worker's log")
		}
	})

	t.Run("Truncated", func(t *testing.T) {
		// A shorter zip, announced as such: the end of its central directory is missing.
		up.Tamper(badZip, func(b []byte) []byte { return b[:len(b)*3/4] })
		defer up.Tamper(badZip, nil)
		refused(t, badZip, "invalid zip")
	})

	t.Run("CutOffMidBody", func(t *testing.T) {
		// The whole length announced, three quarters sent, then the connection dropped.
		front.inject(badZip, func(w http.ResponseWriter, r *http.Request) {
			data, err := os.ReadFile(bad.ZipFile)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.Header().Set("Content-Type", "application/zip")
			w.WriteHeader(http.StatusOK)
			w.Write(data[:len(data)*3/4])
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
		})
		defer front.inject(badZip, nil)
		refused(t, badZip, "")
	})

	t.Run("OverTheLimit", func(t *testing.T) {
		// 600 MiB announced: refused before a byte of it is read.
		const path = "/example.com/bad/@v/v1.0.1.zip"
		front.inject(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(600<<20))
			w.WriteHeader(http.StatusOK)
			w.Write([]byte("PK\x03\x04"))
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
		})
		defer front.inject(path, nil)
		resp, body := get(t, w.url+path, nil)
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "over the 524288000-byte limit") {
			t.Errorf("GET %s = %d %q; want 502, over the 524288000-byte limit", path, resp.StatusCode, body)
		}
	})

	t.Run("FillsOnceTheTruthIsBack", func(t *testing.T) {
		// The same module, served true again, fills: nothing of the refusals was in the way.
		g := testkit.NewGoEnv(t, w.url, up)
		g.Set("GOSUMDB", up.SumDBKey)
		g.MustRun(t.TempDir(), "mod", "download", bad.String())
		if info, err := bucket.Stat(t.Context(), strings.TrimPrefix(badZip, "/")); err != nil || info.Size != bad.ZipSize {
			t.Errorf("stored zip: %+v, %v; want %d bytes", info, err, bad.ZipSize)
		}
	})
}

// streamPut writes content through r2store's StageStream in the Worker (the test-only store
// API), committing it or closing it before its commit.
func streamPut(t *testing.T, base, key string, content []byte, commit, ifAbsent bool) (store.Info, error) {
	params := url.Values{"key": {key}, "ct": {"application/zip"}}
	if commit {
		params.Set("commit", "1")
	}
	if ifAbsent {
		params.Set("ifabsent", "1")
	}
	s := &apiStore{base: base, client: &http.Client{}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, s.url("stream", params), bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	return decode[store.Info](s.do(req))
}

// front stands between the Worker and the fixtures' upstream, passing requests through except
// on the paths it is told to answer itself.
type front struct {
	srv    *httptest.Server
	mu     sync.Mutex
	faults map[string]http.HandlerFunc
}

func newFront(t *testing.T, upstreamURL string) *front {
	target, err := url.Parse(upstreamURL)
	if err != nil {
		t.Fatal(err)
	}
	f := &front{faults: map[string]http.HandlerFunc{}}
	real := httputil.NewSingleHostReverseProxy(target)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		fault := f.faults[r.URL.Path]
		f.mu.Unlock()
		if fault != nil {
			fault(w, r)
			return
		}
		real.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		f.srv.CloseClientConnections()
		f.srv.Close()
	})
	return f
}

// inject answers path with h; a nil h passes it through again.
func (f *front) inject(path string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h == nil {
		delete(f.faults, path)
	} else {
		f.faults[path] = h
	}
}

// peakSysMiB is the most memory the Worker's log reports ("instance memory", sys_mib) after a
// request for path.
func peakSysMiB(log, path string) int64 {
	var peak int64
	for _, line := range strings.Split(log, "\n") {
		if m := sysMiB.FindStringSubmatch(line); m != nil && strings.Contains(line, `"path":"`+path+`"`) {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			peak = max(peak, n)
		}
	}
	return peak
}

// streamedSysMiB finds the memory figure of the huge zip's streamed fill.
var streamedSysMiB = regexp.MustCompile(`"msg":"zip streamed","key":"example.com/huge/@v/v1.0.0.zip".*"sys_mib":([0-9]+)`)

// vmHWM is a process's peak resident set size in /proc/<pid>/status.
var vmHWM = regexp.MustCompile(`VmHWM:\s+([0-9]+) kB`)

// workerdPeakRSS returns the peak resident memory of the workerd processes that wrangler (pid,
// the leader of their process group) started, in bytes: the whole runtime, V8's heap and the
// Worker's wasm memory included.
func workerdPeakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var peak int64
	for _, stat := range procs {
		b, err := os.ReadFile(stat)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		fields := strings.Fields(s[close+1:])
		if !strings.HasPrefix(s[open+1:close], "workerd") || len(fields) < 3 || fields[2] != fmt.Sprint(pid) {
			continue
		}
		status, err := os.ReadFile(filepath.Join(filepath.Dir(stat), "status"))
		if err != nil {
			continue
		}
		if m := vmHWM.FindStringSubmatch(string(status)); m != nil {
			kb, _ := strconv.ParseInt(m[1], 10, 64)
			peak = max(peak, kb<<10)
		}
	}
	if peak == 0 {
		t.Errorf("found no workerd process in wrangler's process group %d", pid)
	}
	return peak
}
