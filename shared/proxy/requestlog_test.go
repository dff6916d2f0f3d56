package proxy_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modmirror/modmirror/shared/auth"
	"github.com/modmirror/modmirror/shared/proxy"
	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/store/memstore"
	"github.com/modmirror/modmirror/shared/testkit"
)

// TestRequestLogShape checks that the direct request log writes the same JSON as slog would,
// for requests that exercise every field, including hostile text in the path.
func TestRequestLogShape(t *testing.T) {
	tokens, err := auth.ParseTokens([]byte("ci " + auth.HashToken("t0k") + " public\n"))
	if err != nil {
		t.Fatal(err)
	}
	newHandler := func(direct bool) (*proxy.Handler, *testkit.Buffer) {
		st := memstore.New()
		mod := "module example.com/lib\n"
		st.Put(t.Context(), "example.com/lib/@v/v1.0.0.mod", strings.NewReader(mod), int64(len(mod)), store.PutOptions{})
		buf := &testkit.Buffer{}
		cfg := proxy.Config{Store: st, Auth: auth.New(tokens, true), Logger: slog.New(slog.NewJSONHandler(buf, nil))}
		if direct {
			cfg.Logger, cfg.RequestLog = slog.New(slog.DiscardHandler), buf
		}
		h, err := proxy.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return h, buf
	}
	for _, path := range []string{
		"/example.com/lib/@v/v1.0.0.mod",
		"/example.com/lib/@v/v1.0.0.mod", // now a memory hit
		"/example.com/lib/@v/v9.0.0.mod",
		`/x"y\z/@v/list`,
		"/%e2%82%ac/%ff/@v/list",
	} {
		lines := map[bool]map[string]any{}
		for _, direct := range []bool{false, true} {
			h, buf := newHandler(direct)
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.URL.RawPath, req.URL.Path = path, path
			req.Header.Set("Authorization", "Bearer t0k")
			h.ServeHTTP(httptest.NewRecorder(), req)
			h.ServeHTTP(httptest.NewRecorder(), req)
			all := strings.Split(strings.TrimSpace(buf.String()), "\n")
			var line map[string]any
			if err := json.Unmarshal([]byte(all[len(all)-1]), &line); err != nil {
				t.Fatalf("direct=%v %s: line %q is not JSON: %v", direct, path, all[len(all)-1], err)
			}
			delete(line, "time")
			delete(line, "duration_ms")
			lines[direct] = line
		}
		want, _ := json.Marshal(lines[false])
		got, _ := json.Marshal(lines[true])
		if string(got) != string(want) {
			t.Errorf("%s:\n direct %s\n   slog %s", path, got, want)
		}
	}
}
