package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"golang.org/x/mod/module"

	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/proxy"
)

// warmBatch is how many module versions one warm request fills. Cloudflare allows a request
// 1,000 subrequests (fetches and R2 calls); a module version whose objects are all missing costs
// about 35 (5 fetches, 30 R2 calls: TestWorkerWarm measures it and checks that no request passes
// the limit), so a batch of 12 stays under half the limit, with room for the tiles a first
// checksum-database lookup fetches.
const warmBatch = 12

// maxWarmBody bounds the go.sum read here; the core answers a larger one with 413.
const maxWarmBody = 8 << 20

// warmReport is the core's answer to a warm request, with the batch it covered.
type warmReport struct {
	Modules  int               `json:"modules"`
	Objects  int               `json:"objects"`
	Filled   int               `json:"filled,omitempty"`
	Skipped  []string          `json:"skipped,omitempty"`
	Failures map[string]string `json:"failures,omitempty"`
	Async    bool              `json:"async"`
	// Batch: the module versions [From, To) of the go.sum's Of, in the order it names them.
	From int `json:"from"`
	To   int `json:"to"`
	Of   int `json:"of"`
	// Next, if set, is where to POST the same go.sum to go on.
	Next string `json:"next,omitempty"`
}

// withWarmBatches splits a POST /_mirror/warm into requests of batch module versions each, so
// that no request passes the Worker's limit on subrequests. A request fills the batch that its
// ?from= starts (default 0) through the core; if more remains it answers 307 Temporary Redirect
// to /_mirror/warm?from=NEXT, which a client re-POSTs the same go.sum to (curl -L does: it keeps
// the method, the body and, on the same host, the Authorization header), with the totals so far
// in the query. A batch with failures is not redirected: it answers 207 with its failures and
// "next", to go on with by hand. A go.sum of at most batch module versions goes to the core as it
// is.
func withWarmBatches(next http.Handler, batch int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != proxy.WarmPath || r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		q := r.URL.Query()
		totals := map[string]int{}
		for _, k := range []string{"from", "modules", "objects", "filled"} {
			if v := q.Get(k); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					http.Error(w, fmt.Sprintf("warm: %s=%q: want a number of module versions", k, v), http.StatusBadRequest)
					return
				}
				totals[k] = n
			}
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxWarmBody+1))
		if err != nil {
			http.Error(w, fmt.Sprintf("warm: read go.sum: %v", err), http.StatusBadRequest)
			return
		}
		lines, perr := checksum.ParseGoSum(body)
		var versions []module.Version
		seen := map[module.Version]bool{}
		for _, l := range lines {
			mv := module.Version{Path: l.Path, Version: l.Version}
			if !seen[mv] {
				seen[mv] = true
				versions = append(versions, mv)
			}
		}
		from := totals["from"]
		if perr != nil || len(body) > maxWarmBody || (from == 0 && len(versions) <= batch) {
			// The core answers as it always does (a bad or oversized go.sum included).
			r.Body = io.NopCloser(bytes.NewReader(body))
			next.ServeHTTP(w, r)
			return
		}
		if from >= len(versions) {
			http.Error(w, fmt.Sprintf("warm: from=%d: the go.sum names %d module versions", from, len(versions)), http.StatusBadRequest)
			return
		}
		to := min(from+batch, len(versions))
		inBatch := map[module.Version]bool{}
		for _, mv := range versions[from:to] {
			inBatch[mv] = true
		}
		var sub bytes.Buffer
		for _, l := range lines {
			if inBatch[module.Version{Path: l.Path, Version: l.Version}] {
				sub.WriteString(l.String())
				sub.WriteByte('\n')
			}
		}
		br := r.Clone(r.Context())
		br.Body, br.ContentLength = io.NopCloser(bytes.NewReader(sub.Bytes())), int64(sub.Len())
		br.Header.Set("Content-Length", strconv.Itoa(sub.Len()))
		rec := &recorder{header: http.Header{}, status: http.StatusOK}
		next.ServeHTTP(rec, br)
		var rep warmReport
		if (rec.status != http.StatusOK && rec.status != http.StatusMultiStatus) || json.Unmarshal(rec.body.Bytes(), &rep) != nil {
			// Refused (credentials, offline, ...): the core's answer as it is.
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.status)
			w.Write(rec.body.Bytes())
			return
		}
		rep.Modules += totals["modules"]
		rep.Objects += totals["objects"]
		rep.Filled += totals["filled"]
		rep.From, rep.To, rep.Of = from, to, len(versions)
		status := rec.status
		if to < len(versions) {
			v := url.Values{}
			v.Set("from", strconv.Itoa(to))
			v.Set("modules", strconv.Itoa(rep.Modules))
			v.Set("objects", strconv.Itoa(rep.Objects))
			v.Set("filled", strconv.Itoa(rep.Filled))
			rep.Next = proxy.WarmPath + "?" + v.Encode()
			if len(rep.Failures) == 0 {
				status = http.StatusTemporaryRedirect
				w.Header().Set("Location", rep.Next)
			}
		}
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		data = append(data, '\n')
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(status)
		w.Write(data)
	})
}
