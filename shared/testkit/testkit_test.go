package testkit_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"

	"github.com/modmirror/modmirror/shared/testkit"
)

// wantFixtures lists every fixture module version.
var wantFixtures = []string{
	"example.com/Upper/Mod@v1.0.0",
	"example.com/incompat@v2.0.0+incompatible",
	"example.com/lib@v1.0.0",
	"example.com/lib@v1.1.0",
	"example.com/lib@v1.2.0",
	"example.com/major/v2@v2.1.0",
	"example.com/nogomod@v1.0.0",
	"example.com/pseudo@v0.0.0-20240102030405-abcdef123456",
	"example.com/tool@v1.0.0",
}

func TestFixtures(t *testing.T) {
	mods := testkit.MustLoadFixtures(t)
	var got []string
	for _, m := range mods {
		got = append(got, m.String())
	}
	if strings.Join(got, "\n") != strings.Join(wantFixtures, "\n") {
		t.Fatalf("fixtures:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantFixtures, "\n"))
	}
	dir := t.TempDir()
	for _, m := range mods {
		// The zip passes golang.org/x/mod/zip's checks, and ZipHash agrees
		// with dirhash.HashZip on the file.
		file := filepath.Join(dir, strings.ReplaceAll(m.String(), "/", "_")+".zip")
		if err := os.WriteFile(file, m.Zip(), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := modzip.CheckZip(m.ModuleVersion(), file); err != nil {
			t.Errorf("%s: CheckZip: %v", m, err)
		}
		if h, err := dirhash.HashZip(file, dirhash.Hash1); err != nil || h != m.ZipHash() {
			t.Errorf("%s: HashZip = %s, %v; ZipHash = %s", m, h, err, m.ZipHash())
		}
		if !bytes.Equal(m.Zip(), m.Zip()) {
			t.Errorf("%s: Zip is not deterministic", m)
		}
		var info struct {
			Version string
			Time    time.Time
		}
		if err := json.Unmarshal(m.Info(), &info); err != nil || info.Version != m.Version || !info.Time.Equal(m.Time) {
			t.Errorf("%s: Info = %s (%v)", m, m.Info(), err)
		}
		if got := modfile.ModulePath(m.GoMod()); got != m.Path {
			t.Errorf("%s: GoMod declares %q", m, got)
		}
		if !strings.HasPrefix(m.GoSum(), m.Path+" "+m.Version+" h1:") {
			t.Errorf("%s: GoSum = %q", m, m.GoSum())
		}
	}
	for _, path := range []string{"example.com/incompat", "example.com/nogomod"} {
		for _, m := range mods {
			if m.Path == path {
				if got, want := string(m.GoMod()), "module "+path+"\n"; got != want {
					t.Errorf("%s: GoMod = %q, want %q", m, got, want)
				}
				if _, ok := m.Files["go.mod"]; ok {
					t.Errorf("%s has a go.mod file", m)
				}
			}
		}
	}
	if m := testkit.Find(mods, "example.com/pseudo", "v0.0.0-20240102030405-abcdef123456"); m == nil || !module.IsPseudoVersion(m.Version) {
		t.Errorf("pseudo-version fixture missing")
	}
}

// TestProjectGoSum fails if testdata/project/go.sum does not hold exactly
// the hashes of the fixtures that testdata/project/go.mod requires. Run it
// with TESTKIT_UPDATE_GOSUM=1 to rewrite go.sum.
func TestProjectGoSum(t *testing.T) {
	root, err := testkit.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	mods := testkit.MustLoadFixtures(t)
	dir := filepath.Join(root, "testdata", "project")
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	var reqs []*testkit.Module
	for _, r := range f.Require {
		m := testkit.Find(mods, r.Mod.Path, r.Mod.Version)
		if m == nil {
			t.Fatalf("project requires %s, which is not a fixture", r.Mod)
		}
		reqs = append(reqs, m)
	}
	want := testkit.GoSumFile(reqs...)
	sumFile := filepath.Join(dir, "go.sum")
	if os.Getenv("TESTKIT_UPDATE_GOSUM") == "1" {
		if err := os.WriteFile(sumFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(sumFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale (rewrite it with TESTKIT_UPDATE_GOSUM=1 go test ./shared/testkit/ -run TestProjectGoSum):\nhave:\n%s\nwant:\n%s", sumFile, got, want)
	}
}

func TestSynthetic(t *testing.T) {
	a, b := testkit.Synthetic(100), testkit.Synthetic(100)
	seen := make(map[string]bool)
	for i, m := range a {
		if i == 7 && m.String() != "example.com/gen/m007@v1.0.7" {
			t.Errorf("Synthetic(100)[7] = %s", m)
		}
		if seen[m.ZipHash()] {
			t.Errorf("%s: zip hash repeats", m)
		}
		seen[m.ZipHash()] = true
		if m.ZipHash() != b[i].ZipHash() || m.ModHash() != b[i].ModHash() {
			t.Errorf("%s: not deterministic", m)
		}
	}
}

// get fetches url and returns the status code, Content-Type and body.
func get(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

func TestUpstreamProtocol(t *testing.T) {
	mods := testkit.MustLoadFixtures(t)
	up := testkit.NewUpstream(t, testkit.Options{Modules: mods})
	lib12 := testkit.Find(mods, "example.com/lib", "v1.2.0")
	incompat := testkit.Find(mods, "example.com/incompat", "v2.0.0+incompatible")
	pseudo := testkit.Find(mods, "example.com/pseudo", "v0.0.0-20240102030405-abcdef123456")
	upper := testkit.Find(mods, "example.com/Upper/Mod", "v1.0.0")

	for _, tc := range []struct {
		path, want string
	}{
		{"/example.com/lib/@v/list", "v1.0.0\nv1.1.0\nv1.2.0\n"},
		{"/example.com/lib/@latest", string(lib12.Info())},
		{"/example.com/lib/@v/main.info", string(lib12.Info())},
		{"/example.com/lib/@v/v1.2.0.mod", string(lib12.GoMod())},
		{"/example.com/lib/@v/v1.2.0.zip", string(lib12.Zip())},
		{"/example.com/incompat/@v/list", "v2.0.0+incompatible\n"},
		{"/example.com/incompat/@v/v2.0.0+incompatible.mod", "module example.com/incompat\n"},
		{"/example.com/incompat/@v/v2.0.0+incompatible.info", string(incompat.Info())},
		{"/example.com/pseudo/@v/list", ""},
		{"/example.com/pseudo/@latest", string(pseudo.Info())},
		{"/example.com/!upper/!mod/@v/v1.0.0.info", string(upper.Info())},
		{"/sumdb/sumdb.test/supported", ""},
	} {
		code, _, body := get(t, up.URL+tc.path)
		if code != 200 || body != tc.want {
			t.Errorf("GET %s = %d %q, want 200 %q", tc.path, code, body, tc.want)
		}
	}
	for _, p := range []string{
		"/example.com/Upper/Mod/@v/list", // not escaped
		"/example.com/lib/@v/v9.9.9.info",
		"/example.com/lib/@v/v1.2.0.txt",
		"/example.com/nosuch/@v/list",
		"/sumdb/other.test/supported",
		"/",
	} {
		code, ctype, body := get(t, up.URL+p)
		if code != 404 || !strings.HasPrefix(ctype, "text/plain") || body == "" {
			t.Errorf("GET %s = %d %q %q, want 404 text/plain with a reason", p, code, ctype, body)
		}
	}
	resp, err := http.Post(up.URL+"/example.com/lib/@v/list", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %s", resp.Status)
	}

	// The checksum database knows the true hashes.
	code, _, body := get(t, up.URL+"/sumdb/sumdb.test/lookup/example.com/lib@v1.2.0")
	if code != 200 || !strings.Contains(body, lib12.GoSum()) {
		t.Errorf("lookup = %d %q, want the lines %q", code, body, lib12.GoSum())
	}
	if code, _, _ := get(t, up.URL+"/sumdb/sumdb.test/lookup/example.com/nosuch@v1.0.0"); code != 404 {
		t.Errorf("lookup of an unknown module = %d, want 404", code)
	}
	if !strings.HasPrefix(up.SumDBKey, "sumdb.test+") || up.GOSUMDB() != up.SumDBKey+" "+up.URL+"/sumdb/sumdb.test" {
		t.Errorf("SumDBKey %q, GOSUMDB %q", up.SumDBKey, up.GOSUMDB())
	}

	if n := up.Count("/example.com/lib/@v/list"); n != 2 { // GET and POST
		t.Errorf("Count(list) = %d, want 2", n)
	}
	if n := up.Count("example.com/lib/@v/list"); n != 2 {
		t.Errorf("Count without the slash = %d, want 2", n)
	}
	if reqs := up.Requests(); reqs[0] != "/example.com/lib/@v/list" {
		t.Errorf("Requests()[0] = %q", reqs[0])
	}

	// Tamper, then restore.
	const zipPath = "/example.com/lib/@v/v1.2.0.zip"
	up.Tamper(zipPath, func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b })
	if _, _, body := get(t, up.URL+zipPath); body == string(lib12.Zip()) || len(body) != len(lib12.Zip()) {
		t.Errorf("tampered zip is unchanged or resized")
	}
	up.Tamper(zipPath, nil)
	if _, _, body := get(t, up.URL+zipPath); body != string(lib12.Zip()) {
		t.Errorf("restored zip differs")
	}

	// Delay.
	up.Delay(100 * time.Millisecond)
	start := time.Now()
	get(t, up.URL+"/example.com/lib/@v/list")
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("delayed request took %v", d)
	}
	up.Delay(0)

	// Stall: the headers and the first bytes, then nothing until the client goes away.
	up.Stall(zipPath, 10)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	req, _ := http.NewRequestWithContext(ctx, "GET", up.URL+zipPath, nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	partial, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	cancel()
	if len(partial) != 10 || err == nil || resp.ContentLength != int64(len(lib12.Zip())) {
		t.Errorf("stalled body: %d bytes of %d announced, %v; want 10, then the client's timeout", len(partial), resp.ContentLength, err)
	}
	up.Stall(zipPath, -1)

	// FailWith: every path under a prefix answers the status, with a Retry-After if given.
	up.FailWith("/example.com/lib/", http.StatusTooManyRequests, "7")
	if resp, err := http.Get(up.URL + "/example.com/lib/@v/list"); err != nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" {
		t.Errorf("FailWith 429: %v %v; want 429 with Retry-After 7", resp, err)
	} else {
		resp.Body.Close()
	}
	up.FailWith("/example.com/lib/", 0, "")
	if _, _, body := get(t, up.URL+zipPath); body != string(lib12.Zip()) {
		t.Errorf("after FailWith was lifted: zip differs")
	}

	// Stop: connections are refused.
	up.Stop()
	_, err = http.Get(up.URL + "/example.com/lib/@v/list")
	if err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("after Stop: %v, want connection refused", err)
	}
}

// TestGoCommand drives the go command with the fake upstream as its GOPROXY:
// the fixture project downloads (its go.sum verifies) and builds, and a tool
// installs with @version and no go.sum at all (checksum database only).
func TestGoCommand(t *testing.T) {
	up := testkit.NewUpstream(t, testkit.Options{Modules: testkit.MustLoadFixtures(t)})
	env := testkit.NewGoEnv(t, up.URL, up)

	t.Run("project", func(t *testing.T) {
		dir := testkit.CopyProject(t)
		sum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
		if err != nil {
			t.Fatal(err)
		}
		env.MustRun(dir, "mod", "download")
		env.MustRun(dir, "build", "./...")
		env.MustRun(dir, "build", "-o", "project.exe", ".")
		out, err := exec.Command(filepath.Join(dir, "project.exe")).CombinedOutput()
		if err != nil {
			t.Fatalf("project: %v\n%s", err, out)
		}
		for _, want := range []string{"example.com/Upper/Mod", "incompat major 2", "lib v1.1.0", "hello, project (major v2)", "nogomod 42", "pseudo abcdef123456"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("project output lacks %q:\n%s", want, out)
			}
		}
		if after, _ := os.ReadFile(filepath.Join(dir, "go.sum")); !bytes.Equal(after, sum) {
			t.Errorf("go.sum changed:\n%s", after)
		}
		// With every hash in go.sum, the go command never asks the
		// checksum database.
		for _, r := range up.Requests() {
			if strings.HasPrefix(r, "/sumdb/") {
				t.Errorf("project build asked the checksum database: %s", r)
			}
		}
		if n := up.Count("/example.com/!upper/!mod/@v/v1.0.0.zip"); n != 1 {
			t.Errorf("Upper/Mod zip fetched %d times", n)
		}
		if n := up.Count("/example.com/incompat/@v/v2.0.0+incompatible.zip"); n != 1 {
			t.Errorf("incompat zip fetched %d times", n)
		}
	})

	t.Run("install", func(t *testing.T) {
		up.ResetRequests()
		env.MustRun("", "install", "example.com/tool/cmd/hello@v1.0.0")
		out, err := exec.Command(env.Bin("hello"), "gopher").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "hello, gopher (major v2)" {
			t.Fatalf("hello: %v %q", err, out)
		}
		for _, p := range []string{
			"/sumdb/sumdb.test/lookup/example.com/tool@v1.0.0",
			"/sumdb/sumdb.test/lookup/example.com/major/v2@v2.1.0",
		} {
			if up.Count(p) != 1 {
				t.Errorf("%s requested %d times, want 1", p, up.Count(p))
			}
		}
		// GOSUMDB with a URL: the go command never asks the proxy whether it
		// proxies the database.
		if n := up.Count("/sumdb/sumdb.test/supported"); n != 0 {
			t.Errorf("supported requested %d times, want 0", n)
		}
	})

	t.Run("sumdb-through-proxy", func(t *testing.T) {
		env := testkit.NewGoEnv(t, up.URL, up)
		env.Set("GOSUMDB", up.SumDBKey)
		out := env.MustRun("", "mod", "download", "-json", "example.com/lib@v1.2.0")
		if !strings.Contains(out, testkit.Find(testkit.MustLoadFixtures(t), "example.com/lib", "v1.2.0").ZipHash()) {
			t.Errorf("download output lacks the hash:\n%s", out)
		}
		if up.Count("/sumdb/sumdb.test/supported") != 1 || up.Count("/sumdb/sumdb.test/lookup/example.com/lib@v1.2.0") != 1 {
			t.Errorf("database not reached through the proxy: %q", up.Requests())
		}
	})
}

// TestTampered checks that the go command refuses content that does not
// match the checksum database.
func TestTampered(t *testing.T) {
	mods := testkit.MustLoadFixtures(t)
	lib := testkit.Find(mods, "example.com/lib", "v1.0.0")
	evil := &testkit.Module{Path: lib.Path, Version: lib.Version, Time: lib.Time, Files: map[string][]byte{
		"go.mod": lib.Files["go.mod"],
		"lib.go": []byte("package lib\n\nfunc Version() string { return \"evil\" }\n"),
	}}
	for _, tc := range []struct {
		name, path string
		fn         func([]byte) []byte
		want       []string // the output holds one of these
	}{
		// A valid zip with other content: the hash differs.
		{"zip", "/example.com/lib/@v/v1.0.0.zip", func([]byte) []byte { return evil.Zip() },
			[]string{"verifying module: checksum mismatch", "SECURITY ERROR"}},
		// A corrupted zip: the CRC check fails before any hash is compared.
		{"zip-byte", "/example.com/lib/@v/v1.0.0.zip", flipContentByte,
			[]string{"zip: checksum error"}},
		{"mod", "/example.com/lib/@v/v1.0.0.mod", func(b []byte) []byte { return append(b, "\n// evil\n"...) },
			[]string{"verifying go.mod: checksum mismatch", "SECURITY ERROR"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := testkit.NewUpstream(t, testkit.Options{Modules: mods})
			up.Tamper(tc.path, tc.fn)
			env := testkit.NewGoEnv(t, up.URL, up)
			out, err := env.Run("", "mod", "download", "example.com/lib@v1.0.0")
			if err == nil {
				t.Fatalf("download of tampered %s succeeded:\n%s", tc.name, out)
			}
			ok := false
			for _, w := range tc.want {
				ok = ok || strings.Contains(out, w)
			}
			if !ok {
				t.Errorf("output lacks %q: %v\n%s", tc.want, err, out)
			}
			t.Logf("go command says:\n%s", out)
		})
	}
}

// flipContentByte flips a byte inside the compressed data of the last file
// in a zip. (A flipped byte elsewhere, in a local file header, can go
// unnoticed: the h1 hash covers only names and contents.)
func flipContentByte(b []byte) []byte {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		panic(err)
	}
	f := zr.File[len(zr.File)-1]
	off, err := f.DataOffset()
	if err != nil {
		panic(err)
	}
	b[off+int64(f.CompressedSize64)/2] ^= 1
	return b
}

func TestBig(t *testing.T) {
	const size = 4 << 20
	b := testkit.NewBig(t, "example.com/big", "v1.0.0", size)
	if b.ZipSize < size || b.ZipSize > size+size/50 {
		t.Errorf("zip size %d for %d bytes of data", b.ZipSize, size)
	}
	if _, err := modzip.CheckZip(module.Version{Path: b.Path, Version: b.Version}, b.ZipFile); err != nil {
		t.Fatal(err)
	}
	if h, err := dirhash.HashZip(b.ZipFile, dirhash.Hash1); err != nil || h != b.ZipHash {
		t.Fatalf("HashZip = %s, %v; ZipHash = %s", h, err, b.ZipHash)
	}
	if b2 := testkit.NewBig(t, "example.com/big", "v1.0.0", size); b2.ZipHash != b.ZipHash {
		t.Errorf("Big is not deterministic")
	}

	up := testkit.NewUpstream(t, testkit.Options{Modules: testkit.Synthetic(2), Big: []*testkit.BigModule{b}})
	env := testkit.NewGoEnv(t, up.URL, up)
	out := env.MustRun("", "mod", "download", "-json", "example.com/big@v1.0.0")
	var got struct{ Sum, GoModSum, Zip string }
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got.Sum != b.ZipHash || got.GoModSum != b.ModHash {
		t.Errorf("go mod download: Sum %s GoModSum %s, want %s %s", got.Sum, got.GoModSum, b.ZipHash, b.ModHash)
	}
	if st, err := os.Stat(got.Zip); err != nil || st.Size() != b.ZipSize {
		t.Errorf("downloaded zip: %v, %v", st, err)
	}
}

// TestBigMemory checks that building a big module streams: it allocates far
// less than the module's size.
func TestBigMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 48 MiB")
	}
	const size = 48 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b := testkit.NewBig(t, "example.com/bigger", "v1.0.0", size)
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("building %d bytes allocated %d bytes", size, alloc)
	}
	zr, err := zip.OpenReader(b.ZipFile)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	if len(zr.File) != 4 { // go.mod, big.go, 2 blobs
		t.Errorf("%d files in the zip", len(zr.File))
	}
}

// TestCredentials shows that the go command sends credentials in a GOPROXY
// URL over https only, and that a TLS upstream works with NewGoEnv.
func TestCredentials(t *testing.T) {
	mods := testkit.MustLoadFixtures(t)
	withUser := func(u string) string {
		return strings.Replace(strings.Replace(u, "http://", "http://user:token@", 1), "https://", "https://user:token@", 1)
	}

	up := testkit.NewUpstream(t, testkit.Options{Modules: mods})
	env := testkit.NewGoEnv(t, withUser(up.URL), up)
	out, err := env.Run("", "mod", "download", "example.com/lib@v1.2.0")
	if err == nil || !strings.Contains(out, "refusing to pass credentials to insecure URL") {
		t.Errorf("credentials over http: %v\n%s", err, out)
	}

	tlsUp := testkit.NewUpstream(t, testkit.Options{Modules: mods, TLS: true, Token: "token"})
	if !strings.HasPrefix(tlsUp.URL, "https://") || tlsUp.Certificate() == nil {
		t.Fatalf("TLS upstream at %s", tlsUp.URL)
	}
	env = testkit.NewGoEnv(t, tlsUp.URL, tlsUp)
	out, err = env.Run("", "mod", "download", "example.com/lib@v1.2.0")
	if err == nil || !strings.Contains(out, "401 Unauthorized") {
		t.Errorf("no credentials: %v\n%s", err, out)
	}
	env = testkit.NewGoEnv(t, withUser(tlsUp.URL), tlsUp)
	env.MustRun("", "mod", "download", "example.com/lib@v1.2.0")
	if tlsUp.Count("/sumdb/sumdb.test/lookup/example.com/lib@v1.2.0") != 1 {
		t.Errorf("requests: %q", tlsUp.Requests())
	}
}

func TestGauge(t *testing.T) {
	var g testkit.Gauge
	a, b := g.Enter(), g.Enter()
	a()
	c := g.Enter()
	if got := g.Most(); got != 2 {
		t.Errorf("Most = %d after at most 2 at once, want 2", got)
	}
	b()
	c()
	g.Reset()
	g.Enter()()
	if got := g.Most(); got != 1 {
		t.Errorf("Most = %d after Reset and 1 at once, want 1", got)
	}
}
