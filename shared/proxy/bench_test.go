package proxy_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/modmirror/modmirror/shared/proxy"
	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/store/memstore"
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
