package testkit

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/note"
)

// DefaultSumDBName is the name of the fake upstream's checksum database
// unless [Options.SumDBName] says otherwise.
const DefaultSumDBName = "sumdb.test"

// Options configures [NewUpstream].
type Options struct {
	// Modules and Big are the module versions the upstream serves and the
	// checksum database knows.
	Modules []*Module
	Big     []*BigModule
	// SumDBName is the checksum database's name; empty means
	// DefaultSumDBName.
	SumDBName string
	// TLS serves https with httptest's self-signed certificate (valid for
	// 127.0.0.1); a GoEnv made with NewGoEnv for this upstream trusts it.
	// The go command sends credentials in a GOPROXY URL only over https.
	TLS bool
	// Token, if set, is required on every module request (not on the
	// checksum database's), as the password of HTTP Basic authentication
	// (any user name) or as "Authorization: Bearer"; other requests get 401.
	// For tests of private upstreams.
	Token string
}

// An Upstream is a fake GOPROXY with its own checksum database, serving on
// 127.0.0.1. It answers:
//
//	/<module>/@v/list              the module's versions, pseudo-versions left out,
//	                               sorted by semver, one a line
//	/<module>/@v/<version>.info    .mod  .zip (big zips streamed from their file)
//	/<module>/@v/main.info         the info of the module's highest version
//	                               (a non-canonical query, like a branch name)
//	/<module>/@latest              the info of the highest release (else of the
//	                               highest pre-release, else of the highest
//	                               pseudo-version)
//	/sumdb/<name>/supported        200, empty
//	/sumdb/<name>/lookup/..., /latest, /tile/...
//	                               the checksum database
//
// with <module> and <version> case-escaped. Anything else is 404 with a
// text/plain reason; methods other than GET and HEAD are 405.
//
// All methods are safe for concurrent use.
type Upstream struct {
	// URL is the proxy's base URL, "http://127.0.0.1:PORT" (https with
	// Options.TLS), for GOPROXY.
	URL string
	// SumDBName is the checksum database's name and SumDBKey its verifier
	// key ("name+hash+base64"), the GOSUMDB value that makes the go command
	// reach the database through the proxy in GOPROXY.
	SumDBName string
	SumDBKey  string

	srv   *httptest.Server
	sumdb http.Handler
	token string
	mods  map[string]*upModule // by module path

	mu       sync.Mutex
	requests []string
	tamper   map[string]func([]byte) []byte
	stall    map[string]int64
	failing  map[string]failure
	delay    time.Duration
	inFlight Gauge // module requests being answered
}

// failure is how the upstream answers the paths under a prefix given to FailWith.
type failure struct {
	status     int
	retryAfter string
}

// upModule is everything the upstream serves for one module path.
type upModule struct {
	versions map[string]*upVersion // by version
	list     []byte                // @v/list
	latest   *upVersion            // @latest
	highest  *upVersion            // main.info
}

// upVersion is one module version, as served.
type upVersion struct {
	version string
	info    []byte
	mod     []byte
	zip     []byte // small modules
	zipFile string // big modules
	gosum   string
}

// NewUpstream starts a fake upstream proxy and checksum database for the
// modules in o, with a fresh signing key. It fails tb if two modules share a
// path and version. The server is closed when the test ends.
func NewUpstream(tb testing.TB, o Options) *Upstream {
	tb.Helper()
	name := o.SumDBName
	if name == "" {
		name = DefaultSumDBName
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		tb.Fatalf("testkit: generating checksum database key: %v", err)
	}

	u := &Upstream{
		SumDBName: name,
		SumDBKey:  vkey,
		token:     o.Token,
		mods:      make(map[string]*upModule),
		tamper:    make(map[string]func([]byte) []byte),
		stall:     make(map[string]int64),
		failing:   make(map[string]failure),
	}
	add := func(v *upVersion, path string) {
		um := u.mods[path]
		if um == nil {
			if err := module.CheckPath(path); err != nil {
				tb.Fatalf("testkit: %v", err)
			}
			um = &upModule{versions: make(map[string]*upVersion)}
			u.mods[path] = um
		}
		if um.versions[v.version] != nil {
			tb.Fatalf("testkit: %s@%s given twice to NewUpstream", path, v.version)
		}
		um.versions[v.version] = v
	}
	for _, m := range o.Modules {
		zip, err := m.zip()
		if err != nil {
			tb.Fatal(err)
		}
		zh, err := zipHash(zip)
		if err != nil {
			tb.Fatalf("testkit: %s: %v", m, err)
		}
		add(&upVersion{
			version: m.Version,
			info:    m.Info(),
			mod:     m.GoMod(),
			zip:     zip,
			gosum:   goSumLines(m.Path, m.Version, zh, m.ModHash()),
		}, m.Path)
	}
	for _, b := range o.Big {
		add(&upVersion{
			version: b.Version,
			info:    b.Info,
			mod:     b.GoMod,
			zipFile: b.ZipFile,
			gosum:   b.GoSum(),
		}, b.Path)
	}
	for _, um := range u.mods {
		um.index()
	}

	u.sumdb = http.StripPrefix("/sumdb/"+name, sumdb.NewServer(sumdb.NewTestServer(skey, u.gosum)))
	if o.TLS {
		u.srv = httptest.NewTLSServer(http.HandlerFunc(u.serveHTTP))
	} else {
		u.srv = httptest.NewServer(http.HandlerFunc(u.serveHTTP))
	}
	u.URL = u.srv.URL
	tb.Cleanup(u.Close)
	return u
}

// index computes the module's list, @latest and main.info answers.
func (um *upModule) index() {
	var all, list []string
	for v := range um.versions {
		all = append(all, v)
		if !module.IsPseudoVersion(v) {
			list = append(list, v)
		}
	}
	semver.Sort(all)
	semver.Sort(list)
	var b bytes.Buffer
	for _, v := range list {
		b.WriteString(v + "\n")
	}
	um.list = b.Bytes()
	um.highest = um.versions[all[len(all)-1]]
	// @latest: the highest release, else the highest pre-release, else the
	// highest pseudo-version.
	um.latest = um.highest
	for i := len(list) - 1; i >= 0; i-- {
		if semver.Prerelease(list[i]) == "" {
			um.latest = um.versions[list[i]]
			return
		}
	}
	if len(list) > 0 {
		um.latest = um.versions[list[len(list)-1]]
	}
}

// gosum answers the checksum database's lookups: the true go.sum lines of
// every module version the upstream knows.
func (u *Upstream) gosum(path, version string) ([]byte, error) {
	if um := u.mods[path]; um != nil {
		if v := um.versions[version]; v != nil {
			return []byte(v.gosum), nil
		}
	}
	// sumdb.Server answers 404 only for errors that satisfy os.IsNotExist,
	// which does not unwrap %w; a *fs.PathError does satisfy it.
	return nil, &fs.PathError{Op: "lookup", Path: path + "@" + version, Err: fs.ErrNotExist}
}

// Certificate returns the upstream's TLS certificate, or nil without
// [Options.TLS].
func (u *Upstream) Certificate() *x509.Certificate {
	return u.srv.Certificate()
}

// GOSUMDB returns the GOSUMDB value "name+key URL/sumdb/name" that makes the
// go command talk to this checksum database directly, whatever GOPROXY is.
func (u *Upstream) GOSUMDB() string {
	return u.SumDBKey + " " + u.URL + "/sumdb/" + u.SumDBName
}

// Requests returns the path of every request served so far, in order.
func (u *Upstream) Requests() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.requests)
}

// Count returns how many requests for path have been served. The path is
// the request's URL path, with or without the leading slash
// ("/example.com/lib/@v/list").
func (u *Upstream) Count(path string) int {
	path = "/" + strings.TrimPrefix(path, "/")
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, r := range u.requests {
		if r == path {
			n++
		}
	}
	return n
}

// ResetRequests forgets the requests recorded so far.
func (u *Upstream) ResetRequests() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.requests = nil
}

// Tamper makes the upstream serve fn(true content) for the URL path
// ("/example.com/lib/@v/v1.0.0.zip", with or without the leading slash)
// from now on, while the checksum database keeps the true hashes. fn gets a
// copy it may modify (for a big module, the whole zip, read into memory);
// it works on checksum-database paths too. A nil fn restores the true
// content.
func (u *Upstream) Tamper(path string, fn func([]byte) []byte) {
	path = "/" + strings.TrimPrefix(path, "/")
	u.mu.Lock()
	defer u.mu.Unlock()
	if fn == nil {
		delete(u.tamper, path)
	} else {
		u.tamper[path] = fn
	}
}

// MostInFlight returns the most module requests (checksum-database requests aside) the upstream
// was answering at once.
func (u *Upstream) MostInFlight() int { return u.inFlight.Most() }

// FailWith makes the upstream answer every path under prefix ("/example.com/lib/" for all of a
// module) with status and a text/plain reason from now on, with a Retry-After header if
// retryAfter is not empty. A status of 0 restores the paths.
func (u *Upstream) FailWith(prefix string, status int, retryAfter string) {
	prefix = "/" + strings.TrimPrefix(prefix, "/")
	u.mu.Lock()
	defer u.mu.Unlock()
	if status == 0 {
		delete(u.failing, prefix)
	} else {
		u.failing[prefix] = failure{status, retryAfter}
	}
}

// Stall makes the upstream answer the URL path (as for Tamper) from now on with its full
// headers and only its first after bytes, then send nothing more until the client goes away: a
// body that stops half-way. A negative after restores it.
func (u *Upstream) Stall(path string, after int64) {
	path = "/" + strings.TrimPrefix(path, "/")
	u.mu.Lock()
	defer u.mu.Unlock()
	if after < 0 {
		delete(u.stall, path)
	} else {
		u.stall[path] = after
	}
}

// stallingWriter passes the first after bytes of a body on, then blocks until done is closed.
type stallingWriter struct {
	http.ResponseWriter
	after int64
	done  <-chan struct{}
}

func (w *stallingWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > w.after {
		n, _ := w.ResponseWriter.Write(p[:w.after])
		w.after -= int64(n)
		http.NewResponseController(w.ResponseWriter).Flush()
		<-w.done
		return n, errors.New("testkit: stalled")
	}
	n, err := w.ResponseWriter.Write(p)
	w.after -= int64(n)
	return n, err
}

// Delay makes every later response wait d before it is written (0: no
// delay). A request whose client goes away stops waiting.
func (u *Upstream) Delay(d time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.delay = d
}

// Stop takes the upstream down: it drops open connections and closes the
// listener, so that later connections are refused. It is idempotent.
func (u *Upstream) Stop() {
	u.srv.CloseClientConnections()
	u.srv.Close()
}

// Close shuts the upstream down; [NewUpstream] registers it with
// tb.Cleanup. It is idempotent.
func (u *Upstream) Close() { u.Stop() }

func (u *Upstream) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/sumdb/") {
		defer u.inFlight.Enter()()
	}
	u.mu.Lock()
	u.requests = append(u.requests, r.URL.Path)
	delay := u.delay
	tamper := u.tamper[r.URL.Path]
	stall, stalls := u.stall[r.URL.Path]
	var fail *failure
	for prefix, f := range u.failing {
		if strings.HasPrefix(r.URL.Path, prefix) {
			fail = &f
		}
	}
	u.mu.Unlock()
	if fail != nil {
		if fail.retryAfter != "" {
			w.Header().Set("Retry-After", fail.retryAfter)
		}
		http.Error(w, fmt.Sprintf("testkit: failing %s with %d", r.URL.Path, fail.status), fail.status)
		return
	}
	if stalls {
		w = &stallingWriter{ResponseWriter: w, after: stall, done: r.Context().Done()}
	}

	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if u.token != "" && !strings.HasPrefix(r.URL.Path, "/sumdb/") && !u.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="testkit"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}

	p := r.URL.Path
	if rest, ok := strings.CutPrefix(p, "/sumdb/"); ok {
		name, sub, _ := strings.Cut(rest, "/")
		if name != u.SumDBName {
			http.Error(w, "unknown checksum database "+name, http.StatusNotFound)
			return
		}
		if sub == "supported" {
			w.WriteHeader(http.StatusOK)
			return
		}
		if tamper != nil {
			rec := httptest.NewRecorder()
			u.sumdb.ServeHTTP(rec, r)
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Del("Content-Length")
			w.WriteHeader(rec.Code)
			w.Write(tamper(rec.Body.Bytes()))
			return
		}
		u.sumdb.ServeHTTP(w, r)
		return
	}

	var escPath, file string
	if before, ok := strings.CutSuffix(p, "/@latest"); ok {
		escPath = before
	} else if before, after, ok := strings.Cut(p, "/@v/"); ok {
		escPath, file = before, after
	} else {
		http.Error(w, "not a module proxy path: "+p, http.StatusNotFound)
		return
	}
	modPath, err := module.UnescapePath(strings.TrimPrefix(escPath, "/"))
	if err != nil {
		http.Error(w, "invalid module path: "+err.Error(), http.StatusNotFound)
		return
	}
	um := u.mods[modPath]
	if um == nil {
		http.Error(w, "unknown module "+modPath, http.StatusNotFound)
		return
	}

	var body []byte
	var contentType string
	var v *upVersion
	switch {
	case file == "":
		v = um.latest
		body, contentType = v.info, "application/json"
	case file == "list":
		body, contentType = um.list, "text/plain; charset=utf-8"
	case file == "main.info":
		v = um.highest
		body, contentType = v.info, "application/json"
	default:
		ext := file[strings.LastIndexByte(file, '.')+1:]
		escVers := strings.TrimSuffix(file, "."+ext)
		vers, err := module.UnescapeVersion(escVers)
		if err != nil || (ext != "info" && ext != "mod" && ext != "zip") {
			http.Error(w, "invalid request: "+file, http.StatusNotFound)
			return
		}
		if v = um.versions[vers]; v == nil {
			http.Error(w, "unknown version "+modPath+"@"+vers, http.StatusNotFound)
			return
		}
		switch ext {
		case "info":
			body, contentType = v.info, "application/json"
		case "mod":
			body, contentType = v.mod, "text/plain; charset=utf-8"
		case "zip":
			contentType = "application/zip"
			if v.zipFile == "" {
				body = v.zip
			} else if tamper != nil {
				if body, err = os.ReadFile(v.zipFile); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
			} else {
				f, err := os.Open(v.zipFile)
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				defer f.Close()
				w.Header().Set("Content-Type", contentType)
				http.ServeContent(w, r, "", time.Time{}, f)
				return
			}
		}
	}
	if tamper != nil {
		body = tamper(slices.Clone(body))
	}
	w.Header().Set("Content-Type", contentType)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// authorized reports whether r carries the upstream's token.
func (u *Upstream) authorized(r *http.Request) bool {
	if _, pass, ok := r.BasicAuth(); ok {
		return pass == u.token
	}
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && bearer == u.token
}

// Modules returns the paths and versions the upstream serves, sorted.
func (u *Upstream) Modules() []module.Version {
	var list []module.Version
	for path, um := range u.mods {
		for v := range um.versions {
			list = append(list, module.Version{Path: path, Version: v})
		}
	}
	module.Sort(list)
	return list
}

// String describes the upstream, for logs.
func (u *Upstream) String() string {
	return fmt.Sprintf("upstream %s (checksum database %s)", u.URL, u.SumDBName)
}
