package proxy

import (
	"io"
	"net/http"
)

// HealthPath answers "ok" while the host serves, for load balancers and orchestrators.
const HealthPath = "/healthz"

// WithHealth answers HealthPath itself and everything else with next. Hosts use it instead of
// http.ServeMux, which would clean and redirect the hostile paths the proxy must refuse.
func WithHealth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == HealthPath {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			io.WriteString(w, "ok\n")
			return
		}
		next.ServeHTTP(w, r)
	})
}
