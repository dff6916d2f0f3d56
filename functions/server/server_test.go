package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modmirror/modmirror/shared/testkit"
)

// serverBinary builds this command once per test binary run.
func serverBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "server")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process is a running server.
type process struct {
	*testkit.Process
	url string
}

// start runs the server with args and env, waits for its "serving" line, and stops it when the
// test ends.
func start(t *testing.T, bin string, env []string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	p := &process{Process: testkit.StartProcess(t, cmd)}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var err error
	if p.url, err = p.WaitServing(ctx); err != nil {
		t.Fatalf("server did not start: %v", err)
	}
	return p
}

// peakRSS returns the process's peak resident set size (VmHWM) in bytes.
func (p *process) peakRSS(t *testing.T) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		t.Fatalf("read peak RSS: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

func TestServerEndToEnd(t *testing.T) {
	bin := serverBinary(t)
	big := testkit.NewBig(t, "example.com/big", "v1.0.0", 100<<20)
	up := testkit.NewUpstream(t, testkit.Options{Modules: testkit.MustLoadFixtures(t), Big: []*testkit.BigModule{big}})
	storeDir := t.TempDir()
	// Configuration through the environment, as the functions take it.
	p := start(t, bin, []string{
		"MODMIRROR_STORE=" + storeDir,
		"MODMIRROR_UPSTREAM=" + up.URL,
		"MODMIRROR_SUMDB=" + up.SumDBKey,
	})

	resp, err := http.Get(p.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/healthz = %d", resp.StatusCode)
	}

	g := testkit.NewGoEnv(t, p.url, up)
	g.Set("GOSUMDB", up.SumDBKey)
	project := testkit.CopyProject(t)
	g.MustRun(project, "mod", "download")
	g.MustRun(project, "build", "-o", filepath.Join(t.TempDir(), "project"), ".")
	g.MustRun(t.TempDir(), "install", "example.com/tool/cmd/hello@v1.0.0")

	// A 100 MiB module passes through in bounded memory, verified by the go command too.
	out := g.MustRun(t.TempDir(), "mod", "download", "-json", "example.com/big@v1.0.0")
	var dl struct{ Sum, Error string }
	if err := json.Unmarshal([]byte(out), &dl); err != nil || dl.Sum != big.ZipHash {
		t.Fatalf("big module: sum %q error %q (%v); want %s", dl.Sum, dl.Error, err, big.ZipHash)
	}
	if fi, err := os.Stat(filepath.Join(storeDir, "example.com/big/@v/v1.0.0.zip")); err != nil || fi.Size() != big.ZipSize {
		t.Fatalf("stored big zip: %v; want %d bytes", err, big.ZipSize)
	}
	if rss := p.peakRSS(t); rss > 96<<20 {
		t.Errorf("peak RSS %d MiB after filling and serving a %d MiB zip; want it bounded (under 96 MiB)", rss>>20, big.ZipSize>>20)
	} else {
		t.Logf("peak RSS %d MiB after a %d MiB zip", rss>>20, big.ZipSize>>20)
	}

	// One JSON line per request with the fields an operator needs.
	var logged bool
	for _, line := range strings.Split(p.Output(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "request" {
			continue
		}
		for _, field := range []string{"method", "path", "status", "bytes", "duration_ms"} {
			if _, ok := rec[field]; !ok {
				t.Errorf("request log line lacks %q: %s", field, line)
			}
		}
		if rec["path"] == "/example.com/big/@v/v1.0.0.zip" && rec["cache"] == "miss" {
			if _, ok := rec["upstream_ms"]; !ok {
				t.Errorf("a miss logged without upstream_ms: %s", line)
			}
			logged = true
		}
	}
	if !logged {
		t.Errorf("no request line for the big zip's miss:\n%s", p.Output())
	}

	// -offline on the same directory serves everything with no upstream at all.
	up.Stop()
	off := start(t, bin, nil, "-store", storeDir, "-offline", "-sumdb", up.SumDBKey)
	g2 := testkit.NewGoEnv(t, off.url, up)
	g2.Set("GOSUMDB", up.SumDBKey)
	g2.MustRun(testkit.CopyProject(t), "build", "-o", filepath.Join(t.TempDir(), "project"), ".")
	g2.MustRun(t.TempDir(), "install", "example.com/tool/cmd/hello@v1.0.0")
}

func TestGracefulShutdownFinishesRequests(t *testing.T) {
	bin := serverBinary(t)
	up := testkit.NewUpstream(t, testkit.Options{Modules: testkit.MustLoadFixtures(t)})
	up.Delay(700 * time.Millisecond)
	p := start(t, bin, nil, "-store", t.TempDir(), "-upstream", up.URL, "-sumdb", "off")

	const path = "/example.com/lib/@v/v1.0.0.mod"
	type result struct {
		status int
		body   []byte
		err    error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Get(p.url + path)
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		res <- result{resp.StatusCode, body, err}
	}()
	// Wait until the fill reached the upstream, then ask the server to stop.
	deadline := time.Now().Add(10 * time.Second)
	for up.Count(path) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.err != nil || r.status != 200 || !bytes.HasPrefix(r.body, []byte("module example.com/lib")) {
		t.Fatalf("request in flight at SIGTERM: %d %q %v; want it answered in full", r.status, r.body, r.err)
	}
	select {
	case <-p.Exited():
		if p.ExitErr() != nil {
			t.Fatalf("server exited with %v after SIGTERM\n%s", p.ExitErr(), p.Output())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server still running 10s after SIGTERM")
	}
	if !strings.Contains(p.Output(), `"msg":"stopped"`) {
		t.Errorf("no stopped line in the log:\n%s", p.Output())
	}
}

func TestBadConfiguration(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"unknown flag", []string{"-nope"}, nil, "flag provided but not defined"},
		{"bad sumdb", []string{"-upstream", "http://127.0.0.1:9", "-sumdb", "unknown.example"}, nil, "checksum database"},
		{"bad upstream", []string{"-upstream", "ftp://x", "-sumdb", "off"}, nil, "ftp"},
		{"bad env bool", []string{"-upstream", "http://127.0.0.1:9"}, []string{"MODMIRROR_OFFLINE=maybe"}, "MODMIRROR_OFFLINE"},
		{"tls half", []string{"-tls-cert", "x"}, nil, "-tls-key"},
		{"stray argument", []string{"extra"}, nil, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			env := map[string]string{}
			for _, kv := range tt.env {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
			err := run(t.Context(), append(tt.args, "-store", t.TempDir(), "-listen", "127.0.0.1:0"), func(k string) string { return env[k] }, io.Discard, &stderr)
			if err == nil || !strings.Contains(err.Error()+stderr.String(), tt.want) {
				t.Fatalf("run(%q) = %v (stderr %q); want an error mentioning %q", tt.args, err, stderr.String(), tt.want)
			}
		})
	}
}

func TestShutdownFinishesAbandonedFills(t *testing.T) {
	up := testkit.NewUpstream(t, testkit.Options{Modules: testkit.MustLoadFixtures(t)})
	up.Delay(700 * time.Millisecond)
	storeDir := t.TempDir()
	p := start(t, serverBinary(t), nil, "-store", storeDir, "-upstream", up.URL, "-sumdb", "off")

	// The client gives up mid-fill; the fill goes on without it, and no request is in flight
	// when the server is told to stop: only the fill itself holds the shutdown.
	const path = "/example.com/lib/@v/v1.1.0.zip"
	impatient := &http.Client{Timeout: 100 * time.Millisecond}
	if _, err := impatient.Get(p.url + path); err == nil {
		t.Fatal("the impatient client got an answer within 100ms from an upstream that takes 700ms")
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("server still running 10s after SIGTERM")
	}
	if p.ExitErr() != nil {
		t.Fatalf("server exited with %v\n%s", p.ExitErr(), p.Output())
	}
	if _, err := os.Stat(filepath.Join(storeDir, strings.TrimPrefix(path, "/"))); err != nil {
		t.Fatalf("the fill its client abandoned was not finished before the server stopped: %v\n%s", err, p.Output())
	}
}
