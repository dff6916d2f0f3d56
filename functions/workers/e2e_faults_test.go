//go:build !(js && wasm)

package main

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modmirror/modmirror/shared/testkit"
)

// TestWorkerFaults runs the Worker under workerd against a fault-injecting upstream: one
// wrangler for both cases (starting it, and building the Worker, cost seconds).
//
//   - StalledBody: a zip whose body stops half-way is abandoned after
//     MODMIRROR_UPSTREAM_IDLE_TIMEOUT (1s here): the client gets 504 naming the idle timeout
//     within seconds, not the fill's ten minutes; nothing reaches R2; once the upstream sends
//     the zip whole, the next request fills it.
//   - RetryAfter: an upstream 429 with Retry-After is not retried within the request, and the
//     client is answered 503 with a Retry-After of the seconds left. Each Worker request runs a
//     fresh Go instance, so the upstream's pause is held within one request only: a second
//     request asks the upstream again (checked below, so that a change here is noticed and
//     docs/OPERATIONS.md updated). The client's Retry-After, passed on, is what spaces requests.
func TestWorkerFaults(t *testing.T) {
	tl := findTools(t)
	dir := t.TempDir()
	var big *testkit.BigModule
	var fixtures []*testkit.Module
	parallel(
		func() { tl.buildWorker(t, dir, "modmirror_storeapi") },
		func() {
			big = testkit.NewBig(t, "example.com/stall", "v1.0.0", 4<<20)
			fixtures = testkit.MustLoadFixtures(t)
		},
	)
	if t.Failed() {
		t.FailNow()
	}
	up := testkit.NewUpstream(t, testkit.Options{Modules: fixtures, Big: []*testkit.BigModule{big}})
	w := tl.startWorker(t, dir, t.TempDir(), map[string]string{
		"MODMIRROR_UPSTREAM":              up.URL,
		"MODMIRROR_SUMDB":                 up.SumDBKey,
		"MODMIRROR_UPSTREAM_IDLE_TIMEOUT": "1s",
	})
	bucket := &apiStore{base: w.url, client: &http.Client{}}
	client := &http.Client{Timeout: 30 * time.Second}

	t.Run("StalledBody", func(t *testing.T) {
		const path = "/example.com/stall/@v/v1.0.0.zip"
		up.Stall(path, 1<<20)
		started := time.Now()
		resp, err := client.Get(w.url + path)
		if err != nil {
			t.Fatalf("the client got no answer from the Worker: %v", err)
		}
		reason, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(started)
		t.Logf("stalled body answered %d after %v: %q", resp.StatusCode, took.Round(time.Millisecond), reason)
		if (resp.StatusCode != http.StatusGatewayTimeout && resp.StatusCode != http.StatusBadGateway) ||
			!strings.Contains(string(reason), "idle") || took > 10*time.Second {
			t.Errorf("GET %s from a stalled upstream = %d %q after %v; want 504 (or 502) naming the idle timeout, within 10s",
				path, resp.StatusCode, reason, took)
		}
		if ks := keys(t, bucket, ""); strings.Contains(strings.Join(ks, "\n"), "example.com/stall/") {
			t.Errorf("R2 holds %q after the stalled fill; want nothing of example.com/stall", ks)
		}

		up.Stall(path, -1)
		resp, err = client.Get(w.url + path)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || n != big.ZipSize {
			t.Errorf("GET %s once the upstream sends it whole = %d, %d bytes; want 200 and %d", path, resp.StatusCode, n, big.ZipSize)
		}
		if info, err := bucket.Stat(t.Context(), strings.TrimPrefix(path, "/")); err != nil || info.Size != big.ZipSize {
			t.Errorf("stored zip after the refill: %+v, %v; want %d bytes", info, err, big.ZipSize)
		}
	})

	t.Run("RetryAfter", func(t *testing.T) {
		const path = "/example.com/lib/@v/v1.0.0.info"
		up.FailWith("/example.com/lib/", http.StatusTooManyRequests, "30")
		defer up.FailWith("/example.com/lib/", 0, "")
		up.ResetRequests()
		resp, err := client.Get(w.url + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ra, raErr := strconv.Atoi(resp.Header.Get("Retry-After"))
		t.Logf("upstream 429 Retry-After 30: the Worker answered %d, Retry-After %q: %q", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		if resp.StatusCode != http.StatusServiceUnavailable || raErr != nil || ra < 1 || ra > 30 {
			t.Errorf("GET %s while the upstream asks for 30s = %d, Retry-After %q; want 503 and 1 to 30 seconds",
				path, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if n := up.Count(path); n != 1 {
			t.Errorf("the upstream was asked %d times for %s in one request; want 1 (no retry after a Retry-After): %q", n, path, up.Requests())
		}

		// A second request is a fresh Go instance, with no memory of the pause: it asks again.
		resp, err = client.Get(w.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("second GET %s = %d, Retry-After %q; want 503 with a Retry-After", path, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if n := up.Count(path); n != 2 {
			t.Errorf("after a second request the upstream was asked %d times for %s; want 2 (the pause is not kept between Worker requests): if it is now, update docs/OPERATIONS.md", n, path)
		}
	})
}
