package proxy_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/modmirror/modmirror/shared/auth"
	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/proxy"
	"github.com/modmirror/modmirror/shared/store/memstore"
	"github.com/modmirror/modmirror/shared/testkit"
	"github.com/modmirror/modmirror/shared/upstream"
)

const (
	ciToken     = "ci-secret-0123456789"
	publicToken = "public-secret-0123456789"
)

var secretModule = &testkit.Module{
	Path:    "example.com/private/secret",
	Version: "v1.0.0",
	Time:    time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	Files: map[string][]byte{
		"go.mod":    []byte("module example.com/private/secret\n\ngo 1.21\n"),
		"secret.go": []byte("package secret\n\n// Value is private.\nconst Value = 42\n"),
	},
}

type accessEnv struct {
	public, private *testkit.Upstream
	srv             *httptest.Server
	logs            *testkit.Buffer
}

func newAccessEnv(t *testing.T, anonymous bool, privateGoSum []checksum.Line) *accessEnv {
	t.Helper()
	e := &accessEnv{logs: &testkit.Buffer{}}
	e.public = testkit.NewUpstream(t, testkit.Options{Modules: testkit.MustLoadFixtures(t)})
	e.private = testkit.NewUpstream(t, testkit.Options{Modules: []*testkit.Module{secretModule}, SumDBName: "private.test"})
	tokens, err := auth.ParseTokens([]byte(
		"# id hash scopes\n" +
			"ci " + auth.HashToken(ciToken) + " public,read:example.com/private\n" +
			"pub " + auth.HashToken(publicToken) + " public\n"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := upstream.New(e.public.URL, upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	priv, err := upstream.New(e.private.URL, upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := memstore.New()
	logger := slog.New(slog.NewJSONHandler(e.logs, nil))
	db, err := checksum.NewDB(checksum.DBConfig{Name: e.public.SumDBName, Key: e.public.SumDBKey, Store: st, Logger: logger,
		Remote: func(ctx context.Context, path string) ([]byte, error) {
			return pub.GetBytes(ctx, "sumdb/"+e.public.SumDBName+"/"+path, 1<<20)
		}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := proxy.New(proxy.Config{
		Store: st, Upstream: pub, Checksums: db, Logger: logger,
		Auth:    auth.New(tokens, anonymous),
		Private: "example.com/private", PrivateUpstream: priv, PrivateGoSum: privateGoSum,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewTLSServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *accessEnv) get(t *testing.T, path string, setAuth func(*http.Request)) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if setAuth != nil {
		setAuth(req)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func bearer(token string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

func basic(token string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth("anyone", token) }
}

func TestPrivateModules(t *testing.T) {
	e := newAccessEnv(t, true, nil)
	const mod = "/example.com/private/secret/@v/v1.0.0.mod"
	tests := []struct {
		name    string
		path    string
		auth    func(*http.Request)
		status  int
		cache   string // wanted Cache-Control prefix
		wantHdr string // a header that must be set
	}{
		{"no credentials", mod, nil, 401, "no-store", "WWW-Authenticate"},
		{"unknown token", mod, bearer("guess"), 401, "no-store", "WWW-Authenticate"},
		{"token without the scope", mod, bearer(publicToken), 403, "no-store", ""},
		{"token with the scope, Basic", mod, basic(ciToken), 200, "private", ""},
		{"token with the scope, Bearer", "/example.com/private/secret/@v/v1.0.0.zip", bearer(ciToken), 200, "private", ""},
		{"list", "/example.com/private/secret/@v/list", bearer(ciToken), 200, "private", ""},
		{"public module, anonymous", "/example.com/lib/@v/v1.0.0.mod", nil, 200, "public", ""},
		{"public module, public token", "/example.com/lib/@v/v1.0.0.mod", bearer(publicToken), 200, "public", ""},
		{"private lookup in the public checksum database", "/sumdb/" + e.public.SumDBName + "/lookup/example.com/private/secret@v1.0.0", bearer(ciToken), 404, "no-store", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.get(t, tt.path, tt.auth)
			if resp.StatusCode != tt.status {
				t.Fatalf("GET %s = %d %q; want %d", tt.path, resp.StatusCode, body, tt.status)
			}
			if cc := resp.Header.Get("Cache-Control"); !strings.HasPrefix(cc, tt.cache) {
				t.Errorf("Cache-Control %q; want it to start with %q", cc, tt.cache)
			}
			if tt.wantHdr != "" && resp.Header.Get(tt.wantHdr) == "" {
				t.Errorf("no %s header", tt.wantHdr)
			}
			if tt.status >= 400 && strings.TrimSpace(body) == "" {
				t.Errorf("%d without a reason", tt.status)
			}
		})
	}
	for _, r := range e.public.Requests() {
		if strings.Contains(r, "private") {
			t.Errorf("the public upstream or checksum database was asked about a private module: %s", r)
		}
	}
	logs := e.logs.String()
	for _, secret := range []string{ciToken, publicToken, "guess"} {
		if strings.Contains(logs, secret) {
			t.Errorf("a token (%q) appears in the logs", secret)
		}
	}
	for _, want := range []string{`"token":"ci"`, `"decision":"allow"`, `"decision":"deny-scope"`, `"decision":"deny-unauthenticated"`,
		`"decision":"deny-bad-credentials"`, `"module":"example.com/private/secret@v1.0.0"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("audit log lacks %s:\n%s", want, logs)
		}
	}
}

func TestPrivateModulesWithTheGoCommand(t *testing.T) {
	e := newAccessEnv(t, true, []checksum.Line{
		{Path: secretModule.Path, Version: secretModule.Version, Hash: secretModule.ZipHash()},
		{Path: secretModule.Path, Version: secretModule.Version, GoMod: true, Hash: secretModule.ModHash()},
	})
	u, err := url.Parse(e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	g := testkit.NewGoEnv(t, e.srv.URL, e.public)
	g.TrustCertificate(e.srv.Certificate())
	g.Set("GOSUMDB", e.public.SumDBKey)
	g.Set("GONOSUMDB", "example.com/private") // not GOPRIVATE: that would also mean GONOPROXY
	if out, err := g.Run(t.TempDir(), "mod", "download", "-json", "example.com/private/secret@v1.0.0"); err == nil || !strings.Contains(out, "401") {
		t.Fatalf("download without a token: %v\n%s\nwant a 401 failure", err, out)
	}
	u.User = url.UserPassword("ci", ciToken)
	g.Set("GOPROXY", u.String())
	out := g.MustRun(t.TempDir(), "mod", "download", "-json", "example.com/private/secret@v1.0.0", "example.com/lib@v1.1.0")
	if !strings.Contains(out, secretModule.ZipHash()) {
		t.Fatalf("download with a token did not report the private module's hash:\n%s", out)
	}
	for _, r := range e.public.Requests() {
		if strings.Contains(r, "private") {
			t.Errorf("the public upstream was asked about a private module: %s", r)
		}
	}
}

func TestPrivateGoSumMismatch(t *testing.T) {
	e := newAccessEnv(t, true, []checksum.Line{
		{Path: secretModule.Path, Version: secretModule.Version, Hash: "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},
	})
	resp, body := e.get(t, "/example.com/private/secret/@v/v1.0.0.zip", bearer(ciToken))
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "private go.sum") {
		t.Fatalf("zip against a wrong private go.sum line = %d %q; want 502 naming the private go.sum", resp.StatusCode, body)
	}
}

func TestAnonymousReadsOff(t *testing.T) {
	e := newAccessEnv(t, false, nil)
	const path = "/example.com/lib/@v/v1.0.0.mod"
	if resp, body := e.get(t, path, nil); resp.StatusCode != 401 {
		t.Fatalf("anonymous read with anonymous reads off = %d %q; want 401", resp.StatusCode, body)
	}
	resp, body := e.get(t, path, bearer(publicToken))
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Cache-Control"), "private") {
		t.Fatalf("token read = %d %q %q; want 200 with Cache-Control private (a shared cache must not serve it to anyone)", resp.StatusCode, resp.Header.Get("Cache-Control"), body)
	}
}
