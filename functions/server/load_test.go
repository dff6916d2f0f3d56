package main

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/module"

	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/testkit"
)

// TestMixedLoad sends 10,000 requests from 256 concurrent clients, mixing hits, misses, missing
// versions and hostile requests, to a server process on 127.0.0.1. Every answer must be the one
// expected for its kind, and afterwards every stored module must hash to what the checksum
// database holds.
func TestMixedLoad(t *testing.T) {
	const (
		total   = 10000
		clients = 256
	)
	mods := testkit.Synthetic(60)
	up := testkit.NewUpstream(t, testkit.Options{Modules: mods})
	storeDir := t.TempDir()
	p := start(t, serverBinary(t), nil, "-store", storeDir, "-upstream", up.URL, "-sumdb", up.SumDBKey)

	type request struct {
		path   string
		status int
	}
	var reqs []request
	for i, m := range mods {
		esc, _ := module.EscapePath(m.Path)
		for _, ext := range []string{".info", ".mod", ".zip"} {
			reqs = append(reqs, request{"/" + esc + "/@v/" + m.Version + ext, 200})
		}
		reqs = append(reqs, request{"/" + esc + "/@v/list", 200})
		if i%10 == 0 {
			reqs = append(reqs, request{"/" + esc + "/@v/v1.99.0.info", 404})
		}
	}
	bad := []request{
		{"/../../etc/passwd", 404}, {"/%2e%2e/x/@v/list", 404}, {"/example.com%2fx/@v/list", 404},
		{"/example.com/X/@v/list", 404}, {"/example.com/x/@v/v1.0.zip", 404}, {"/" + strings.Repeat("a", 3000), 414},
	}
	// Warm a third of the modules first, so the load mixes hits with misses.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}, Timeout: 60 * time.Second}
	for _, r := range reqs[:len(reqs)/3] {
		resp, err := client.Get(p.url + r.path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	var next, unexpected atomic.Int64
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				r := reqs[int(i)%len(reqs)]
				if i%5 == 0 {
					r = bad[int(i/5)%len(bad)]
				}
				resp, err := client.Get(p.url + r.path)
				status := 0
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				if status != r.status {
					unexpected.Add(1)
					mu.Lock()
					if len(failures) < 10 {
						failures = append(failures, fmt.Sprintf("%s: %d (%v); want %d", r.path, status, err, r.status))
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	t.Logf("%d requests from %d clients in %s (%.0f/s)", total, clients, took.Round(time.Millisecond), float64(total)/took.Seconds())
	if n := unexpected.Load(); n > 0 {
		t.Fatalf("%d unexpected answers, e.g.:\n%s\nserver log tail:\n%s", n, strings.Join(failures, "\n"), tail(p.Output(), 20))
	}

	// The store afterwards holds exactly verified content, nothing outside its layout.
	checked := 0
	err := filepath.WalkDir(storeDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(storeDir, path)
		rel = filepath.ToSlash(rel)
		if strings.HasPrefix(filepath.Base(rel), ".") {
			return nil // the store's own lock and temporary files
		}
		escPath, file, ok := strings.Cut(rel, "/@v/")
		if !ok || !(strings.HasSuffix(file, ".mod") || strings.HasSuffix(file, ".zip")) {
			return nil
		}
		modPath, _ := module.UnescapePath(escPath)
		m := testkit.Find(mods, modPath, strings.TrimSuffix(strings.TrimSuffix(file, ".mod"), ".zip"))
		if m == nil {
			return fmt.Errorf("stored %s belongs to no module the upstream serves", rel)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var got, want string
		if strings.HasSuffix(file, ".mod") {
			got, want = checksum.HashMod(data), m.ModHash()
		} else {
			got, err = checksum.HashZip(bytes.NewReader(data), int64(len(data)), m.Path, m.Version)
			if err != nil {
				return fmt.Errorf("stored %s: %w", rel, err)
			}
			want = m.ZipHash()
		}
		if got != want {
			return fmt.Errorf("stored %s hashes to %s; the checksum database holds %s", rel, got, want)
		}
		checked++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked != 2*len(mods) {
		t.Fatalf("verified %d stored .mod and .zip files; want %d", checked, 2*len(mods))
	}

	// And the generator's verify, which checks a store the proxy filled against the checksum
	// database, agrees.
	gen := filepath.Join(t.TempDir(), "generator")
	if out, err := exec.Command("go", "build", "-o", gen, "../../generator").CombinedOutput(); err != nil {
		t.Fatalf("build generator: %v\n%s", err, out)
	}
	out, err := exec.Command(gen, "verify", "-sumdb", up.SumDBKey, "-upstream", up.URL, storeDir).CombinedOutput()
	if err != nil {
		t.Fatalf("generator verify of the store after the load: %v\n%s", err, out)
	}
	t.Logf("generator verify: %s", strings.TrimSpace(string(out)))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
