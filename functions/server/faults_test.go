package main

import (
	"bytes"
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

	"github.com/modmirror/modmirror/shared/auth"
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

// TestBlastRadiusOfOne checks that one module's errors, however many, never stop another
// module's fills, while an upstream that is really down still opens the breaker.
func TestBlastRadiusOfOne(t *testing.T) {
	up := testkit.NewUpstream(t, testkit.Options{Modules: testkit.MustLoadFixtures(t)})
	p := start(t, serverBinary(t), nil, "-store", t.TempDir(), "-upstream", up.URL, "-sumdb", up.SumDBKey)
	up.FailWith("/example.com/lib/", http.StatusInternalServerError, "")
	for i := range 8 {
		path := fmt.Sprintf("/example.com/lib/@v/v1.%d.0.info", i%3)
		if status, _ := getStatus(t, p.url+path); status != http.StatusBadGateway {
			t.Fatalf("GET %s from an upstream answering 500 = %d; want 502", path, status)
		}
	}
	if status, body := getStatus(t, p.url+"/example.com/tool/@v/v1.0.0.info"); status != 200 {
		t.Errorf("a healthy module after eight failures of another = %d %q; want 200", status, body)
	}
	if n := up.Count("/example.com/lib/@v/v1.0.0.info"); n > 6 {
		t.Errorf("the failing .info was asked upstream %d times for 3 requests; want the repeats answered from the brief failure cache", n)
	}

	// Down for real: failures about different modules open the breaker.
	up.Stop()
	var last string
	for _, m := range []string{"incompat", "nogomod", "!upper/!mod", "major/v2", "pseudo", "tool", "lib"} {
		_, last = getStatus(t, p.url+"/example.com/"+m+"/@v/list")
	}
	if !strings.Contains(last, "circuit open") {
		t.Errorf("after failures about seven modules of a stopped upstream: %q; want the breaker open", last)
	}
}

// TestUpstreamRetryAfter checks that an upstream's 429 with Retry-After is honoured (no retry,
// no request before it ends) and passed on: the client gets 503 with a Retry-After.
func TestUpstreamRetryAfter(t *testing.T) {
	up := testkit.NewUpstream(t, testkit.Options{Modules: testkit.MustLoadFixtures(t)})
	p := start(t, serverBinary(t), nil, "-store", t.TempDir(), "-upstream", up.URL, "-sumdb", up.SumDBKey)
	up.FailWith("/example.com/", http.StatusTooManyRequests, "30")
	for _, path := range []string{"/example.com/lib/@v/v1.0.0.info", "/example.com/tool/@v/v1.0.0.mod"} {
		resp, err := http.Get(p.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		if resp.StatusCode != http.StatusServiceUnavailable || ra < 25 || ra > 30 {
			t.Errorf("GET %s while the upstream asks for 30s = %d, Retry-After %q; want 503 and about 30", path, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	var asked int
	for _, r := range up.Requests() {
		if strings.HasPrefix(r, "/example.com/") {
			asked++
		}
	}
	if asked != 1 {
		t.Errorf("the upstream was asked %d times for modules; want 1: no retry, nothing during the pause", asked)
	}
}

// getStatus GETs url and returns the status and body.
func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestAbuseIsLoggedAndThrottled checks that every request, refused or not, has its one access-log
// line with a cache field, that the rate limit answers 429 with a Retry-After, and that guessing
// tokens is throttled after -auth-failures a minute with one security event, not one a request.
func TestAbuseIsLoggedAndThrottled(t *testing.T) {
	up := testkit.NewUpstream(t, testkit.Options{Modules: testkit.MustLoadFixtures(t)})
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("ci "+auth.HashToken("right")+" public\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, serverBinary(t), nil, "-store", t.TempDir(), "-upstream", up.URL, "-sumdb", up.SumDBKey,
		"-rate-limit", "50", "-rate-burst", "50", "-tokens", tokens, "-anonymous=false", "-auth-failures", "20")
	const n = 300
	statuses := map[int]int{}
	for range n {
		req, _ := http.NewRequest("GET", p.url+"/example.com/lib/@v/list", nil)
		req.Header.Set("Authorization", "Bearer wrong")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		statuses[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Fatal("429 without a Retry-After")
		}
	}
	if statuses[http.StatusUnauthorized] != 20 || statuses[http.StatusTooManyRequests] != n-20 {
		t.Errorf("statuses for %d wrong tokens: %v; want 20 answered 401, the rest 429", n, statuses)
	}
	p.Stop()
	var lines, withCache, events int
	for _, line := range strings.Split(p.Output(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if rec["msg"] == "request" {
			lines++
			if _, ok := rec["cache"]; ok {
				withCache++
			}
		}
		if rec["event"] == "security" {
			events++
		}
	}
	if lines != n || withCache != n {
		t.Errorf("%d request lines, %d with a cache field, for %d requests; want one each", lines, withCache, n)
	}
	if events < 1 || events > 2 {
		t.Errorf("%d security events for one client guessing tokens in one window; want one (two if the window ended)", events)
	}
}

// TestFullStorePassesThrough serves from a store on a 16 MiB tmpfs (mounted by the test, which
// runs as root here; it fails, saying why, where it cannot mount one): a 24 MiB module cannot be
// staged or stored, yet the go command gets it, verified (held in memory); an 80 MiB one is
// streamed through, verified on the way, and a tampered one is cut off; nothing partial is left,
// and what the store holds is still served.
func TestFullStorePassesThrough(t *testing.T) {
	storeDir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", storeDir).CombinedOutput(); err != nil {
		t.Fatalf("this test needs a small tmpfs for a full disk (root, mount -t tmpfs): %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", storeDir).Run() })
	big := testkit.NewBig(t, "example.com/big", "v1.0.0", 24<<20)
	huge := testkit.NewBig(t, "example.com/huge", "v1.0.0", 80<<20) // too large to hold in memory
	up := testkit.NewUpstream(t, testkit.Options{Modules: testkit.MustLoadFixtures(t), Big: []*testkit.BigModule{big, huge}})
	p := start(t, serverBinary(t), nil, "-store", storeDir, "-upstream", up.URL, "-sumdb", up.SumDBKey)
	g := testkit.NewGoEnv(t, p.url, up)
	g.Set("GOSUMDB", up.SumDBKey)
	g.MustRun(t.TempDir(), "mod", "download", "example.com/lib@v1.1.0")

	out := g.MustRun(t.TempDir(), "mod", "download", "-json", "example.com/big@v1.0.0")
	var dl struct{ Sum, Error string }
	if err := json.Unmarshal([]byte(out), &dl); err != nil || dl.Sum != big.ZipHash {
		t.Fatalf("a module too large for the store's disk: sum %q error %q (%v); want it passed through, %s", dl.Sum, dl.Error, err, big.ZipHash)
	}
	if _, err := os.Stat(filepath.Join(storeDir, "example.com/big/@v/v1.0.0.zip")); err == nil {
		t.Error("a zip that did not fit was stored")
	}
	if files, _ := stagedBytes(t, storeDir); len(files) != 0 {
		t.Errorf("staged files left on the full disk: %q", files)
	}
	if !strings.Contains(p.Output(), `"event":"store"`) {
		t.Error("no event=store line for the zip the store could not take")
	}

	// Too large to hold: streamed through, verified on the way.
	out = g.MustRun(t.TempDir(), "mod", "download", "-json", "example.com/huge@v1.0.0")
	dl.Sum, dl.Error = "", ""
	if err := json.Unmarshal([]byte(out), &dl); err != nil || dl.Sum != huge.ZipHash {
		t.Fatalf("an 80 MiB module through a full store: sum %q error %q (%v); want it streamed through, %s", dl.Sum, dl.Error, err, huge.ZipHash)
	}
	// A wrong one is cut off before its end: no client gets all the bytes it was promised.
	const hugeZip = "/example.com/huge/@v/v1.0.0.zip"
	up.Tamper(hugeZip, func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b })
	resp, err := http.Get(p.url + hugeZip)
	if err != nil {
		t.Fatal(err)
	}
	got, rerr := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode == 200 && rerr == nil {
		t.Errorf("a tampered 80 MiB zip streamed through: 200 and all %d bytes; want it cut off", got)
	}
	up.Tamper(hugeZip, nil)
	if files, _ := stagedBytes(t, storeDir); len(files) != 0 {
		t.Errorf("staged files left on the full disk: %q", files)
	}

	g2 := testkit.NewGoEnv(t, p.url, up)
	g2.Set("GOSUMDB", up.SumDBKey)
	up.Stop()
	g2.MustRun(t.TempDir(), "mod", "download", "example.com/lib@v1.1.0") // from the store
}

// TestTwoServersOneStore runs two servers on one directory and fills the same modules through
// both at once: every stored object is the upstream's, byte for byte, each list names each
// version once, and nothing is left staged.
func TestTwoServersOneStore(t *testing.T) {
	bin := serverBinary(t)
	shaped := testkit.MustShaped(t, 8)
	up := testkit.NewUpstream(t, testkit.Options{Modules: append(testkit.MustLoadFixtures(t), shaped...)})
	storeDir := t.TempDir()
	var servers []*process
	for range 2 {
		servers = append(servers, start(t, bin, nil, "-store", storeDir, "-upstream", up.URL, "-sumdb", up.SumDBKey))
	}
	args := []string{"mod", "download"}
	for _, m := range up.Modules() {
		args = append(args, m.Path+"@"+m.Version)
	}
	errs := make(chan error, len(servers))
	for _, p := range servers {
		go func() {
			g := testkit.NewGoEnv(t, p.url, up)
			g.Set("GOSUMDB", up.SumDBKey)
			out, err := g.Run(t.TempDir(), args...)
			if err != nil {
				err = fmt.Errorf("%w\n%s", err, out)
			}
			errs <- err
		}()
	}
	for range servers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	for _, p := range servers {
		p.Stop() // their background fills done
	}
	mods := append(testkit.MustLoadFixtures(t), shaped...)
	for _, m := range mods {
		key := escapedKey(t, m.Path, m.Version)
		for ext, want := range map[string][]byte{".zip": m.Zip(), ".mod": m.GoMod()} {
			got, err := os.ReadFile(filepath.Join(storeDir, filepath.FromSlash(key+ext)))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s%s in the shared store: %d bytes, %v; want the upstream's %d bytes", key, ext, len(got), err, len(want))
			}
		}
	}
	list, err := os.ReadFile(filepath.Join(storeDir, "example.com/lib/@v/list"))
	if err != nil || string(list) != "v1.0.0\nv1.1.0\nv1.2.0\n" {
		t.Errorf("lib's list in the shared store = %q, %v; want each version once", list, err)
	}
	if files, _ := stagedBytes(t, storeDir); len(files) != 0 {
		t.Errorf("staged files left: %q", files)
	}
}
