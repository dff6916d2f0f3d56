package main

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/module"

	"github.com/modmirror/modmirror/shared/testkit"
)

// The tests in this file hold the server's flags to what docs/SECURITY.md says of them: each
// passes the flag it is about, and fails when the flag does nothing.

// TestMaxFillsBoundsUpstreamRequests: -max-fills 2 keeps at most two fills at the upstream,
// however many clients ask for different modules at once.
func TestMaxFillsBoundsUpstreamRequests(t *testing.T) {
	up := testkit.NewUpstream(t, testkit.Options{Modules: testkit.MustLoadFixtures(t)})
	up.Delay(200 * time.Millisecond)
	p := start(t, serverBinary(t), nil, "-store", t.TempDir(), "-upstream", up.URL, "-sumdb", "off", "-max-fills", "2")
	var wg sync.WaitGroup
	for _, m := range up.Modules() {
		wg.Go(func() {
			resp, err := http.Get(p.url + "/" + escapedKey(t, m.Path, m.Version) + ".info")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		})
	}
	wg.Wait()
	if most := up.MostInFlight(); most > 2 || most < 1 {
		t.Errorf("%d module requests at the upstream at once with -max-fills 2; want 1 or 2", most)
	}
}

// TestRequestHeaderLimits: -max-header-bytes refuses a larger header with 431, and
// -read-header-timeout closes a connection that sends its header too slowly (slowloris).
func TestRequestHeaderLimits(t *testing.T) {
	up := testkit.NewUpstream(t, testkit.Options{})
	p := start(t, serverBinary(t), nil, "-store", t.TempDir(), "-upstream", up.URL, "-sumdb", "off",
		"-max-header-bytes", "4096", "-read-header-timeout", "500ms")
	req, _ := http.NewRequest("GET", p.url+"/healthz", nil)
	req.Header.Set("X-Padding", strings.Repeat("x", 16<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a 16 KiB header with -max-header-bytes 4096 = %d; want 431", resp.StatusCode)
	}

	conn, err := net.Dial("tcp", strings.TrimPrefix(p.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n")) // and never the end of the header
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	_, err = bufio.NewReader(conn).ReadString('\n')
	if d := time.Since(start); err == nil || d > 5*time.Second {
		t.Errorf("a header never finished: read %v after %v; want the connection closed after about 500ms", err, d)
	}
}

// TestOfflineNeverContactsUpstream: with -offline, even with a reachable -upstream set, no
// request of any kind reaches it.
func TestOfflineNeverContactsUpstream(t *testing.T) {
	up := testkit.NewUpstream(t, testkit.Options{Modules: testkit.MustLoadFixtures(t)})
	p := start(t, serverBinary(t), nil, "-store", t.TempDir(), "-upstream", up.URL, "-sumdb", up.SumDBKey, "-offline")
	for _, path := range []string{
		"/example.com/lib/@v/list", "/example.com/lib/@latest", "/example.com/lib/@v/v1.0.0.info",
		"/example.com/lib/@v/v1.0.0.zip", "/example.com/lib/@v/main.info",
		"/sumdb/" + up.SumDBName + "/lookup/example.com/lib@v1.0.0", "/sumdb/" + up.SumDBName + "/latest",
	} {
		resp, err := http.Get(p.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("offline GET %s of an empty store = 200", path)
		}
	}
	if reqs := up.Requests(); len(reqs) != 0 {
		t.Errorf("the offline server asked its upstream %q", reqs)
	}
}

// escapedKey returns "<escaped path>/@v/<escaped version>".
func escapedKey(t *testing.T, path, version string) string {
	t.Helper()
	ep, err := module.EscapePath(path)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := module.EscapeVersion(version)
	if err != nil {
		t.Fatal(err)
	}
	return ep + "/@v/" + ev
}
