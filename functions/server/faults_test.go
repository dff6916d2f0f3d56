package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modmirror/modmirror/shared/testkit"
)

// stagedBytes returns the temporary files in a store directory's root (owner files aside) and
// their size in all.
func stagedBytes(t *testing.T, storeDir string) (files []string, bytes int64) {
	t.Helper()
	entries, err := os.ReadDir(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") && !strings.HasSuffix(e.Name(), ".owner") {
			if fi, err := e.Info(); err == nil {
				files = append(files, e.Name())
				bytes += fi.Size()
			}
		}
	}
	return files, bytes
}

// waitStaged waits until a fill has staged at least n bytes in storeDir.
func waitStaged(t *testing.T, storeDir string, n int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, b := stagedBytes(t, storeDir); b >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no fill staged %d bytes in %s within 20s", n, storeDir)
}

// stalledBig is an upstream whose 20 MiB module's zip stops after 8 MiB.
func stalledBig(t *testing.T) (*testkit.Upstream, string) {
	big := testkit.NewBig(t, "example.com/big", "v1.0.0", 20<<20)
	up := testkit.NewUpstream(t, testkit.Options{Big: []*testkit.BigModule{big}})
	const path = "/example.com/big/@v/v1.0.0.zip"
	up.Stall(path, 8<<20)
	return up, path
}

// TestKilledFillLeavesNothing kills the server with SIGKILL in the middle of a fill: the bytes it
// staged are removed when a server starts on the directory again, and the fill then succeeds.
func TestKilledFillLeavesNothing(t *testing.T) {
	bin := serverBinary(t)
	up, path := stalledBig(t)
	storeDir := t.TempDir()
	p := start(t, bin, nil, "-store", storeDir, "-upstream", up.URL, "-sumdb", up.SumDBKey)
	go http.Get(p.url + path)
	waitStaged(t, storeDir, 8<<20)
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.Exited()
	files, staged := stagedBytes(t, storeDir)
	t.Logf("SIGKILL left %d bytes staged in %q", staged, files)

	up.Stall(path, -1)
	again := start(t, bin, nil, "-store", storeDir, "-upstream", up.URL, "-sumdb", up.SumDBKey)
	if files, _ := stagedBytes(t, storeDir); len(files) != 0 {
		t.Errorf("staged files left after a restart: %q", files)
	}
	if want := fmt.Sprintf(`"bytes":%d`, staged); !strings.Contains(again.Output(), want) {
		t.Errorf("the restart did not log the %d bytes it freed:\n%s", staged, again.Output())
	}
	resp, err := http.Get(again.url + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET %s after the restart = %d", path, resp.StatusCode)
	}
}

// TestShutdownPastTimeout stops the server while a fill cannot finish: the client waiting on it
// is answered 503 with a Retry-After, the server exits 0, and nothing is left staged.
func TestShutdownPastTimeout(t *testing.T) {
	up, path := stalledBig(t)
	storeDir := t.TempDir()
	p := start(t, serverBinary(t), nil, "-store", storeDir, "-upstream", up.URL, "-sumdb", up.SumDBKey,
		"-shutdown-timeout", "500ms")
	answer := make(chan *http.Response, 1)
	go func() {
		resp, err := http.Get(p.url + path)
		if err != nil {
			t.Errorf("the client waiting on the fill got no answer: %v", err)
			answer <- nil
			return
		}
		resp.Body.Close()
		answer <- resp
	}()
	waitStaged(t, storeDir, 8<<20)
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case resp := <-answer:
		if resp != nil && (resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "") {
			t.Errorf("the client waiting on the fill: %d, Retry-After %q; want 503 with a Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no answer 15s after SIGTERM")
	}
	select {
	case <-p.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("server still running 10s after SIGTERM")
	}
	if err := p.ExitErr(); err != nil {
		t.Errorf("server exited with %v; want 0\n%s", err, p.Output())
	}
	if files, _ := stagedBytes(t, storeDir); len(files) != 0 {
		t.Errorf("staged files left after the shutdown: %q", files)
	}
	if _, err := os.Stat(filepath.Join(storeDir, strings.TrimPrefix(path, "/"))); err == nil {
		t.Error("the abandoned zip was stored")
	}
}

// TestStalledUpstreamBody checks -upstream-idle-timeout: a zip whose body stops half-way is
// abandoned after it, answered 504 with the reason, not stored, and filled by the next request
// once the upstream sends it whole.
func TestStalledUpstreamBody(t *testing.T) {
	up, path := stalledBig(t)
	storeDir := t.TempDir()
	p := start(t, serverBinary(t), nil, "-store", storeDir, "-upstream", up.URL, "-sumdb", up.SumDBKey,
		"-upstream-idle-timeout", "300ms")
	client := &http.Client{Timeout: 20 * time.Second}
	started := time.Now()
	resp, err := client.Get(p.url + path)
	if err != nil {
		t.Fatalf("the client got no answer: %v", err)
	}
	reason, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if d := time.Since(started); resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(reason), "idle") || d > 10*time.Second {
		t.Errorf("GET %s from a stalled upstream = %d %q after %v; want 504 naming the idle timeout, in seconds", path, resp.StatusCode, reason, d)
	}
	if _, err := os.Stat(filepath.Join(storeDir, strings.TrimPrefix(path, "/"))); err == nil {
		t.Error("the stalled zip was stored")
	}
	if files, _ := stagedBytes(t, storeDir); len(files) != 0 {
		t.Errorf("staged files left: %q", files)
	}
	up.Stall(path, -1)
	resp, err = client.Get(p.url + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET %s once the upstream sends it whole = %d; want 200", path, resp.StatusCode)
	}
}
