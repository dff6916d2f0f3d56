package proxy_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/config"
	"github.com/modmirror/modmirror/shared/proxy"
	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/store/memstore"
	"github.com/modmirror/modmirror/shared/testkit"
	"github.com/modmirror/modmirror/shared/upstream"
)

// BenchmarkCachedMod measures the handler's own cost for the commonest request of a warm build:
// a stored .mod, with the request log on as the self-hosted server writes it.
func BenchmarkCachedMod(b *testing.B) {
	st := memstore.New()
	const key = "example.com/lib/@v/v1.0.0.mod"
	mod := "module example.com/lib\n\ngo 1.21\n"
	if _, err := st.Put(b.Context(), key, stringsReader(mod), int64(len(mod)), store.PutOptions{}); err != nil {
		b.Fatal(err)
	}
	h, err := proxy.New(proxy.Config{Store: st, RequestLog: io.Discard, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/"+key, nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}

func stringsReader(s string) io.Reader { return &stringReader{s: s} }

type stringReader struct{ s string }

func (r *stringReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	n := copy(p, r.s)
	r.s = r.s[n:]
	return n, nil
}

// BenchmarkColdModule measures filling one module version (.info, .mod, .zip) on an empty
// store from an upstream in the same process: the proxy's own cost of a cold download.
func BenchmarkColdModule(b *testing.B) {
	mods := testkit.Synthetic(b.N)
	up := testkit.NewUpstream(b, testkit.Options{Modules: mods})
	// Grow the checksum database before timing, as the public one holds every public module.
	client, err := upstream.New(up.URL, upstream.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for _, m := range mods {
		if _, err := client.GetBytes(b.Context(), "sumdb/"+up.SumDBName+"/lookup/"+m.Path+"@"+m.Version, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
	st := memstore.New()
	db, err := checksum.NewDB(checksum.DBConfig{Name: up.SumDBName, Key: up.SumDBKey, Store: st,
		Remote: config.SumDBRemote(client, &config.SumDB{Name: up.SumDBName, Key: up.SumDBKey}, upstream.Options{})})
	if err != nil {
		b.Fatal(err)
	}
	h, err := proxy.New(proxy.Config{Store: st, Upstream: client, Checksums: db, RequestLog: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := mods[i]
		for _, ext := range []string{".info", ".mod", ".zip"} {
			req := httptest.NewRequest(http.MethodGet, "/"+m.Path+"/@v/"+m.Version+ext, nil)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("%s%s: %d %s", m, ext, w.Code, w.Body)
			}
		}
	}
}
