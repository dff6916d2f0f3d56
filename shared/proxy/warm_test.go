package proxy_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"

	"github.com/modmirror/modmirror/shared/auth"
	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/proxy"
	"github.com/modmirror/modmirror/shared/store/memstore"
	"github.com/modmirror/modmirror/shared/testkit"
	"github.com/modmirror/modmirror/shared/upstream"
)

func TestWarm(t *testing.T) {
	root, err := testkit.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	gosum, err := os.ReadFile(filepath.Join(root, "testdata", "project", "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	lines, err := checksum.ParseGoSum(gosum)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.ParseTokens([]byte("warmer " + auth.HashToken("warm-token") + " warm\nreader " + auth.HashToken("read-token") + " public\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, inRequest := range []bool{true, false} {
		t.Run(map[bool]string{true: "in request", false: "background"}[inRequest], func(t *testing.T) {
			up := testkit.NewUpstream(t, testkit.Options{Modules: testkit.MustLoadFixtures(t)})
			client, err := upstream.New(up.URL, upstream.Options{})
			if err != nil {
				t.Fatal(err)
			}
			st := memstore.New()
			db, err := checksum.NewDB(checksum.DBConfig{Name: up.SumDBName, Key: up.SumDBKey, Store: st,
				Remote: func(ctx context.Context, path string) ([]byte, error) {
					return client.GetBytes(ctx, "sumdb/"+up.SumDBName+"/"+path, 1<<20)
				}})
			if err != nil {
				t.Fatal(err)
			}
			h, err := proxy.New(proxy.Config{Store: st, Upstream: client, Checksums: db, Auth: auth.New(tokens, true),
				WarmInRequest: inRequest, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			post := func(method, token, body string) (int, string) {
				req, _ := http.NewRequest(method, srv.URL+proxy.WarmPath, strings.NewReader(body))
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			for _, bad := range []struct {
				method, token, body string
				status              int
			}{
				{"POST", "", string(gosum), 401},
				{"POST", "nope", string(gosum), 401},
				{"POST", "read-token", string(gosum), 403},
				{"GET", "warm-token", "", 405},
				{"POST", "warm-token", "not a go.sum line\n", 400},
				{"POST", "warm-token", strings.Repeat("x", 9<<20), 413},
			} {
				if status, body := post(bad.method, bad.token, bad.body); status != bad.status {
					t.Errorf("%s with token %q: %d %q; want %d", bad.method, bad.token, status, body, bad.status)
				}
			}
			if n := len(up.Requests()); n != 0 {
				t.Fatalf("refused warm requests reached the upstream %d times", n)
			}

			status, body := post("POST", "warm-token", string(gosum))
			var report struct{ Modules, Objects, Filled int }
			if err := json.Unmarshal([]byte(body), &report); err != nil {
				t.Fatalf("warm answer %d %q: %v", status, body, err)
			}
			want := map[bool]int{true: http.StatusOK, false: http.StatusAccepted}[inRequest]
			if status != want || report.Modules == 0 {
				t.Fatalf("warm = %d %s; want %d naming the modules", status, body, want)
			}
			if !inRequest {
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				if err := h.Wait(ctx); err != nil {
					t.Fatal(err)
				}
			} else if report.Filled != report.Objects {
				t.Fatalf("filled %d of %d objects: %s", report.Filled, report.Objects, body)
			}
			for _, l := range lines {
				m := testkit.Find(testkit.MustLoadFixtures(t), l.Path, l.Version)
				if m == nil {
					continue
				}
				key := escapedKey(t, l.Path, l.Version, ".mod")
				if _, err := st.Stat(t.Context(), key); err != nil {
					t.Errorf("after the warm the store lacks %s", key)
				}
				if !l.GoMod {
					key = escapedKey(t, l.Path, l.Version, ".zip")
					if _, err := st.Stat(t.Context(), key); err != nil {
						t.Errorf("after the warm the store lacks %s", key)
					}
				}
			}
		})
	}
}

func escapedKey(t *testing.T, path, version, ext string) string {
	t.Helper()
	p, err := module.EscapePath(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := module.EscapeVersion(version)
	if err != nil {
		t.Fatal(err)
	}
	return p + "/@v/" + v + ext
}
