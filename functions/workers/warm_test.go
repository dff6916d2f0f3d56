package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/testkit"
)

func TestWarmBatches(t *testing.T) {
	mods := testkit.Synthetic(7)
	gosum := testkit.GoSumFile(mods...)
	var batches [][]string // the module paths each core warm got
	core := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		lines, err := checksum.ParseGoSum(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var paths []string
		for _, l := range lines {
			if !l.GoMod {
				paths = append(paths, l.Path)
			}
		}
		batches = append(batches, paths)
		json.NewEncoder(w).Encode(warmReport{Modules: len(paths), Objects: 3 * len(paths), Filled: 3 * len(paths)})
	})
	h := withWarmBatches(core, 3)
	srv := httptest.NewServer(h)
	defer srv.Close()
	// Go's client, like curl -L, re-POSTs the body on a 307.
	resp, err := http.Post(srv.URL+"/_mirror/warm", "text/plain", strings.NewReader(string(gosum)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep warmReport
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || rep.Modules != 7 || rep.Filled != 21 || rep.From != 6 || rep.To != 7 || rep.Of != 7 || rep.Next != "" {
		t.Errorf("final answer %d %+v; want 200, 7 modules, 21 filled, the batch [6, 7) of 7", resp.StatusCode, rep)
	}
	if got := fmt.Sprint(batches); got != fmt.Sprintf("[[%s %s %s] [%s %s %s] [%s]]", mods[0].Path, mods[1].Path, mods[2].Path,
		mods[3].Path, mods[4].Path, mods[5].Path, mods[6].Path) {
		t.Errorf("the core warmed %s", got)
	}

	// A small go.sum goes to the core as it is; bad query values and offsets are refused.
	batches = nil
	small := testkit.GoSumFile(mods[:2]...)
	for _, tc := range []struct {
		query  string
		body   []byte
		status int
	}{
		{"", small, http.StatusOK},
		{"?from=x", gosum, http.StatusBadRequest},
		{"?from=7", gosum, http.StatusBadRequest},
		{"?from=3", gosum, http.StatusTemporaryRedirect},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/_mirror/warm"+tc.query, strings.NewReader(string(tc.body))))
		if rec.Code != tc.status {
			t.Errorf("POST /_mirror/warm%s = %d %q; want %d", tc.query, rec.Code, rec.Body.String(), tc.status)
		}
		if tc.status == http.StatusTemporaryRedirect && !strings.HasPrefix(rec.Header().Get("Location"), "/_mirror/warm?") {
			t.Errorf("307 to %q", rec.Header().Get("Location"))
		}
	}
	if len(batches) != 2 || len(batches[0]) != 2 {
		t.Errorf("the core warmed %v; want the small go.sum whole, then one batch", batches)
	}
}
