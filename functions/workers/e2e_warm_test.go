//go:build !(js && wasm)

package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modmirror/modmirror/shared/auth"
	"github.com/modmirror/modmirror/shared/testkit"
)

// TestWorkerWarm warms the Worker under workerd with a go.sum of more module versions than one
// request may fill, as the docs tell a user to: curl -L --data-binary @go.sum. The Worker splits
// the work into requests of warmBatch module versions (307 from one to the next), none of which
// passes Cloudflare's 1,000 subrequests, counted by the Worker itself (fetches and R2 calls,
// logged per request); afterwards every module is a hit.
func TestWorkerWarm(t *testing.T) {
	tl := findTools(t)
	dir := t.TempDir()
	tl.buildWorker(t, dir)
	const n = 2*warmBatch + 10
	mods := testkit.Synthetic(n)
	up := testkit.NewUpstream(t, testkit.Options{Modules: mods})
	w := tl.startWorker(t, dir, t.TempDir(), map[string]string{
		"MODMIRROR_UPSTREAM": up.URL,
		"MODMIRROR_SUMDB":    up.SumDBKey,
		"MODMIRROR_TOKENS":   "ci " + auth.HashToken("warm-secret") + " warm",
	})
	gosum := filepath.Join(t.TempDir(), "go.sum")
	if err := os.WriteFile(gosum, testkit.GoSumFile(mods...), 0o644); err != nil {
		t.Fatal(err)
	}

	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("the warm test runs curl, as the docs do: %v", err)
	}
	out, err := exec.CommandContext(t.Context(), curl, "-sS", "-L", "--fail-with-body", "--data-binary", "@"+gosum,
		"-H", "Authorization: Bearer warm-secret", w.url+"/_mirror/warm").Output()
	if err != nil {
		t.Fatalf("curl -L --data-binary @go.sum: %v\n%s", err, out)
	}
	var rep warmReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("warm answer: %v\n%s", err, out)
	}
	if rep.Modules != n || rep.Objects != 3*n || rep.Filled != 3*n || len(rep.Failures) > 0 || rep.Next != "" || rep.To != n || rep.Of != n {
		t.Errorf("warm answer %+v; want %d modules, %d objects filled, no failures, the last batch", rep, n, 3*n)
	}

	// The Worker's own count of each warm request's subrequests.
	deadline := time.Now().Add(5 * time.Second)
	var totals []int
	var detail []string
	for {
		totals, detail = totals[:0], detail[:0]
		for _, line := range strings.Split(w.Output(), "\n") {
			var l struct {
				Msg, Method, Path  string
				Fetches, R2, Total int
			}
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "subrequests" && l.Path == "/_mirror/warm" {
				totals = append(totals, l.Total)
				detail = append(detail, fmt.Sprintf("%d fetches + %d R2 calls", l.Fetches, l.R2))
			}
		}
		if len(totals) >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if want := (n + warmBatch - 1) / warmBatch; len(totals) != want {
		t.Fatalf("%d warm requests logged their subrequests; want %d (batches of %d of %d module versions)\n%s", len(totals), want, warmBatch, n, w.Output())
	}
	sum, most := 0, 0
	for _, tot := range totals {
		sum += tot
		most = max(most, tot)
	}
	t.Logf("warm of %d module versions: %d requests, subrequests %v (%s), %.1f per module version, at most %d in a request",
		n, len(totals), totals, strings.Join(detail, ", "), float64(sum)/n, most)
	if most > 1000 {
		t.Errorf("a warm request made %d subrequests; Cloudflare allows 1,000", most)
	}
	if per := float64(most) / warmBatch; per*warmBatch*2 > 1000 {
		t.Errorf("%.1f subrequests per module version: a batch of %d leaves less than half the limit free", per, warmBatch)
	}

	// Everything was filled: the go command's requests make no upstream request.
	up.ResetRequests()
	for _, m := range mods[:5] {
		for _, ext := range []string{".info", ".mod", ".zip"} {
			if resp, body := get(t, w.url+"/"+m.Path+"/@v/"+m.Version+ext, nil); resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s%s after the warm = %d %q", m, ext, resp.StatusCode, body)
			}
		}
	}
	if reqs := up.Requests(); len(reqs) > 0 {
		t.Errorf("hits after the warm asked the upstream for %q", reqs)
	}
	if resp, _ := get(t, w.url+"/_mirror/warm?from=x", nil); resp.StatusCode == http.StatusOK {
		t.Errorf("GET /_mirror/warm = 200")
	}
}
