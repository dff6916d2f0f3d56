package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/modmirror/modmirror/functions/lambda/lambdaemu"
	"github.com/modmirror/modmirror/shared/auth"
	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/store/s3store"
	"github.com/modmirror/modmirror/shared/store/s3store/s3test"
	"github.com/modmirror/modmirror/shared/testkit"
)

// buildBootstrap builds this command as Lambda runs it (GOOS=linux, -tags lambda.norpc), for the
// host's architecture.
func buildBootstrap(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bootstrap")
	if err := lambdaemu.Build(t.Context(), ".", ".", bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// function is the bootstrap running under the Runtime API emulator.
type function struct {
	*lambdaemu.Function
	log   *testkit.Buffer
	spool string // the function's TMPDIR
}

// startFunction runs bootstrap with env (plus a TMPDIR of its own) behind an emulated Function
// URL, and stops it when the test ends.
func startFunction(t *testing.T, bootstrap string, env ...string) *function {
	t.Helper()
	return startFunctionTimeout(t, bootstrap, 2*time.Minute, env...)
}

// startFunctionTimeout is startFunction with the function's configured timeout.
func startFunctionTimeout(t *testing.T, bootstrap string, timeout time.Duration, env ...string) *function {
	t.Helper()
	f := &function{log: &testkit.Buffer{}, spool: t.TempDir()}
	fn, err := lambdaemu.Start(t.Context(), lambdaemu.Options{
		Bootstrap: bootstrap,
		Env:       append([]string{"TMPDIR=" + f.spool, "HOME=" + t.TempDir()}, env...),
		Log:       f.log,
		Timeout:   timeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.Function = fn
	t.Cleanup(func() {
		fn.Close()
		if t.Failed() {
			t.Logf("function log:\n%s", f.log)
		}
	})
	return f
}

// get gets url without following redirects.
func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, body
}

// TestGoCommandThroughFunction is the function end to end: the go command downloads and builds
// the fixture project, a +incompatible module among them, and installs a tool, through the real
// bootstrap under the emulator, filling a real S3-compatible store from the fake upstream and
// verifying through the proxy's checksum-database endpoints.
func TestGoCommandThroughFunction(t *testing.T) {
	bootstrap := buildBootstrap(t)
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t)
	// Over one part (8 MiB), so it is uploaded in parts, and over the inline limit (1 MiB),
	// so it is redirected.
	big := testkit.NewBig(t, "example.com/big", "v1.0.0", 12<<20)
	up := testkit.NewUpstream(t, testkit.Options{Modules: testkit.MustLoadFixtures(t), Big: []*testkit.BigModule{big}})
	spec := "s3://" + bucket + "/mirror"
	fn := startFunction(t, bootstrap, append(srv.Env(),
		"MODMIRROR_STORE="+spec,
		"MODMIRROR_UPSTREAM="+up.URL,
		"MODMIRROR_SUMDB="+up.SumDBKey,
	)...)
	st, err := s3store.New(t.Context(), spec, s3store.WithClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}

	g := testkit.NewGoEnv(t, fn.URL, up)
	g.Set("GOSUMDB", up.SumDBKey)
	project := testkit.CopyProject(t)
	g.MustRun(project, "mod", "download")
	g.MustRun(project, "build", "-o", filepath.Join(t.TempDir(), "project"), ".")
	g.MustRun(t.TempDir(), "install", "example.com/tool/cmd/hello@v1.0.0")
	if _, err := os.Stat(g.Bin("hello")); err != nil {
		t.Fatalf("go install through the function: %v", err)
	}

	for _, key := range []string{
		"example.com/incompat/@v/v2.0.0+incompatible.zip",
		"example.com/incompat/@v/v2.0.0+incompatible.mod",
		"example.com/incompat/@v/v2.0.0+incompatible.info",
		"example.com/!upper/!mod/@v/v1.0.0.zip",
		"example.com/major/v2/@v/v2.1.0.zip",
		"example.com/tool/@v/v1.0.0.zip",
		"example.com/lib/@v/list",
		"sumdb/" + up.SumDBName + "/lookup/example.com/tool@v1.0.0",
	} {
		if _, err := st.Stat(t.Context(), key); err != nil {
			t.Errorf("store: %v", err)
		}
	}
	// The bucket holds the +incompatible zip under its literal '+', where a static GOPROXY over
	// the bucket (through the CDN's '+' rewriting) finds it.
	if _, err := srv.Client().HeadObject(t.Context(), &s3.HeadObjectInput{
		Bucket: &bucket, Key: ptr("mirror/example.com/incompat/@v/v2.0.0+incompatible.zip"),
	}); err != nil {
		t.Errorf("bucket object with a literal '+': %v", err)
	}
	// What the CDN sends on failover, '+' rewritten to %2B, is the same request.
	_, plus := get(t, fn.URL+"/example.com/incompat/@v/v2.0.0+incompatible.info")
	resp, escaped := get(t, fn.URL+"/example.com/incompat/@v/v2.0.0%2Bincompatible.info")
	if resp.StatusCode != 200 || !bytes.Equal(plus, escaped) || !bytes.Contains(plus, []byte("v2.0.0+incompatible")) {
		t.Errorf("%%2B form = %d %q; '+' form %q; want the same .info", resp.StatusCode, escaped, plus)
	}

	// A large zip: verified through the spool directory, stored in parts, redirected.
	out := g.MustRun(t.TempDir(), "mod", "download", "-json", "example.com/big@v1.0.0")
	var dl struct{ Sum, Error string }
	if err := json.Unmarshal([]byte(out), &dl); err != nil || dl.Sum != big.ZipHash {
		t.Fatalf("big module: sum %q error %q (%v); want %s", dl.Sum, dl.Error, err, big.ZipHash)
	}
	info, err := st.Stat(t.Context(), "example.com/big/@v/v1.0.0.zip")
	if err != nil || info.Size != big.ZipSize || !strings.HasSuffix(info.ETag, `-2"`) {
		t.Errorf("stored big zip: %+v, %v; want %d bytes in a two-part upload", info, err, big.ZipSize)
	}
	resp, _ = get(t, fn.URL+"/example.com/big/@v/v1.0.0.zip")
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, srv.Endpoint+"/"+bucket+"/mirror/example.com/big/") ||
		resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("big zip = %d Location %q Cache-Control %q; want 302 to a presigned S3 URL, no-store", resp.StatusCode, loc, resp.Header.Get("Cache-Control"))
	}
	resp, body := get(t, fn.URL+"/example.com/lib/@v/v1.1.0.mod")
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "module example.com/lib") || resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Errorf("small hit = %d %q %q; want 200 inline, immutable", resp.StatusCode, body, resp.Header.Get("Cache-Control"))
	}
	if ents, err := os.ReadDir(fn.spool); err != nil || len(ents) > 0 {
		t.Errorf("spool directory holds %v (%v); want nothing left", ents, err)
	}

	// @latest through the function: the upstream's v1.2.0, whose .info alone is then fetched.
	if out := g.MustRun(t.TempDir(), "list", "-m", "example.com/lib@latest"); strings.TrimSpace(out) != "example.com/lib v1.2.0" {
		t.Errorf("lib@latest through the function = %q; want v1.2.0", out)
	}
	// A module with pseudo-versions only, whole: its @latest is kept for the static copy.
	g.MustRun(t.TempDir(), "mod", "download", "example.com/pseudo@latest")

	// A second client, the upstream gone: served from the bucket alone.
	up.Stop()
	g2 := testkit.NewGoEnv(t, fn.URL, up)
	g2.Set("GOSUMDB", up.SumDBKey)
	g2.MustRun(testkit.CopyProject(t), "mod", "download")

	logs := fn.log.String()
	for _, want := range []string{`"cache":"miss"`, `"cache":"hit"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("function log has no %s", want)
		}
	}
	if errs := fn.Errors(); len(errs) > 0 {
		t.Errorf("function reported errors: %q", errs)
	}

	// The function stopped too: the bucket alone, behind a plain static front (CloudFront over
	// the bucket with origin access control and s3:ListBucket), is a GOPROXY and checksum
	// database for a verifying go command. The stopped function's URL stays first in GOPROXY,
	// as a client's line with '|' names it (docs/DEPLOY-AWS.md).
	fn.Close()
	front := startBucketFront(t, st)
	dead := fn.URL
	if resp, err := http.Get(dead + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("the stopped function still answers %d", resp.StatusCode)
	}
	g3 := testkit.NewGoEnv(t, dead+"|"+front.URL, up)
	g3.Set("GOSUMDB", up.SumDBKey)
	staticProject := testkit.CopyProject(t)
	g3.MustRun(staticProject, "mod", "download")
	g3.MustRun(staticProject, "build", "-o", filepath.Join(t.TempDir(), "project"), ".")
	if out := g3.MustRun(staticProject, "mod", "verify"); !strings.Contains(out, "all modules verified") {
		t.Errorf("go mod verify from the bucket alone: %s", out)
	}
	g3.MustRun(t.TempDir(), "install", "example.com/tool/cmd/hello@v1.0.0")
	if _, err := os.Stat(g3.Bin("hello")); err != nil {
		t.Errorf("go install from the bucket alone: %v", err)
	}
	out = g3.MustRun(t.TempDir(), "mod", "download", "-json", "example.com/big@v1.0.0")
	dl.Sum, dl.Error = "", ""
	if err := json.Unmarshal([]byte(out), &dl); err != nil || dl.Sum != big.ZipHash {
		t.Errorf("big module from the bucket alone: sum %q error %q (%v); want %s", dl.Sum, dl.Error, err, big.ZipHash)
	}
	// Lists and @latest from their stored copies: a new module requiring a stored one, resolved
	// and verified through the checksum database's stored lookups and tiles. The list names
	// only what the bucket can serve whole: v1.2.0, whose .info alone was fetched, is not in it.
	client := t.TempDir()
	g3.MustRun(client, "mod", "init", "example.com/client")
	g3.MustRun(client, "get", "example.com/lib@latest")
	if out := g3.MustRun(client, "list", "-m", "example.com/lib"); strings.TrimSpace(out) != "example.com/lib v1.1.0" {
		t.Errorf("lib@latest from the bucket alone = %q; want v1.1.0, the highest stored whole", out)
	}
	g3.MustRun(client, "get", "example.com/pseudo@latest")
	if out := g3.MustRun(client, "list", "-m", "example.com/pseudo"); strings.TrimSpace(out) != "example.com/pseudo v0.0.0-20240102030405-abcdef123456" {
		t.Errorf("pseudo@latest from the bucket alone = %q; want its only pseudo-version", out)
	}
	if out := g3.MustRun(client, "mod", "verify"); !strings.Contains(out, "all modules verified") {
		t.Errorf("go mod verify of the new module from the bucket alone: %s", out)
	}
	name := up.SumDBName
	for _, prefix := range []string{"/sumdb/" + name + "/supported", "/sumdb/" + name + "/lookup/", "/sumdb/" + name + "/tile/"} {
		if front.served(prefix, http.StatusOK) == 0 {
			t.Errorf("the static front served nothing under %s: the checksum database was not read from the bucket", prefix)
		}
	}

	// What was never filled fails at once, as not found: never a 403, never a hang. Through
	// GOPROXY=dead|static the go command reports the first proxy's error (its most helpful, it
	// judges) after the static front's 404; through the CloudFront URL alone, which fails over
	// inside, it reports the 404.
	for _, mv := range []string{"example.com/lib@v1.0.0", "example.com/never@v1.0.0"} {
		if _, err := st.Stat(t.Context(), strings.Replace(mv, "@", "/@v/", 1)+".info"); err == nil {
			t.Fatalf("%s is stored; the test needs a version never filled", mv)
		}
		for _, proxy := range []string{dead + "|" + front.URL, front.URL} {
			g4 := testkit.NewGoEnv(t, proxy, up)
			g4.Set("GOSUMDB", up.SumDBKey)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			cmd := exec.CommandContext(ctx, "go", "mod", "download", mv)
			cmd.Dir, cmd.Env = t.TempDir(), g4.Env()
			start := time.Now()
			out, err := cmd.CombinedOutput()
			cancel()
			elapsed := time.Since(start)
			info := front.URL + "/" + strings.Replace(mv, "@", "/@v/", 1) + ".info"
			switch {
			case err == nil:
				t.Errorf("GOPROXY=%s go mod download %s succeeded: %s", proxy, mv, out)
			case elapsed > 30*time.Second:
				t.Errorf("GOPROXY=%s go mod download %s took %v", proxy, mv, elapsed)
			case regexp.MustCompile(`\b403\b`).Match(out): // not a port like :36403
				t.Errorf("GOPROXY=%s go mod download %s: a 403: %s", proxy, mv, out)
			case proxy == front.URL && !strings.Contains(string(out), "reading "+info+": 404 Not Found"):
				t.Errorf("GOPROXY=%s go mod download %s = %s; want the go command's not-found message", proxy, mv, out)
			}
			t.Logf("GOPROXY=%s go mod download %s (%v): %s", proxy, mv, elapsed.Round(time.Millisecond), bytes.TrimSpace(out))
		}
	}
	if bad := front.unexpected(); len(bad) > 0 {
		t.Errorf("the static front answered other than 200 or 404: %q", bad)
	}
	t.Logf("the static front answered %d requests; the 404s: %q", front.count(), front.notFound())
}

// bucketFront serves a store as the template's StaticDistribution serves the bucket (origin
// access control, s3:ListBucket, the '+' rewriting, no function behind it): GET or HEAD of a key
// answers the object with its stored Content-Type and Cache-Control; a missing key, the root and
// anything under _mirror/, 404.
type bucketFront struct {
	URL string
	st  store.Store

	mu   sync.Mutex
	seen []string // "STATUS PATH", in order
}

// startBucketFront serves st on 127.0.0.1 until the test ends.
func startBucketFront(t *testing.T, st store.Store) *bucketFront {
	f := &bucketFront{st: st}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

func (f *bucketFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status := f.serve(w, r)
	f.mu.Lock()
	f.seen = append(f.seen, fmt.Sprintf("%d %s", status, r.URL.Path))
	f.mu.Unlock()
}

func (f *bucketFront) serve(w http.ResponseWriter, r *http.Request) int {
	fail := func(status int, reason string) int {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprintln(w, reason)
		return status
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return fail(http.StatusMethodNotAllowed, "GET or HEAD")
	}
	// The key is the path as the go command sent it, '+' included (CloudFront sends it to S3 as
	// %2B, which S3 decodes to the same key). The root, which S3 would answer with a listing, and
	// the proxy's own records never reach the bucket.
	key := strings.TrimPrefix(r.URL.Path, "/")
	if key == "" || strings.HasPrefix(key, "_mirror/") {
		return fail(http.StatusNotFound, "no such key")
	}
	obj, err := f.st.Open(r.Context(), key)
	switch {
	case errors.Is(err, store.ErrNotExist), errors.Is(err, store.ErrInvalidKey):
		return fail(http.StatusNotFound, "no such key: "+key)
	case err != nil:
		return fail(http.StatusInternalServerError, err.Error())
	}
	defer obj.Close()
	info := obj.Info()
	h := w.Header()
	h.Set("Content-Length", strconv.FormatInt(info.Size, 10))
	h.Set("ETag", info.ETag)
	if info.ContentType != "" {
		h.Set("Content-Type", info.ContentType)
	}
	if info.CacheControl != "" {
		h.Set("Cache-Control", info.CacheControl)
	}
	if r.Method == http.MethodHead {
		return http.StatusOK
	}
	io.Copy(w, obj)
	return http.StatusOK
}

// served counts the answers with status to paths under prefix.
func (f *bucketFront) served(prefix string, status int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, s := range f.seen {
		if strings.HasPrefix(s, fmt.Sprintf("%d %s", status, prefix)) {
			n++
		}
	}
	return n
}

// count is the number of requests answered.
func (f *bucketFront) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.seen)
}

// notFound lists the paths answered 404.
func (f *bucketFront) notFound() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var paths []string
	for _, s := range f.seen {
		if p, ok := strings.CutPrefix(s, "404 "); ok {
			paths = append(paths, p)
		}
	}
	return paths
}

// unexpected lists the answers other than 200 and 404.
func (f *bucketFront) unexpected() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var bad []string
	for _, s := range f.seen {
		if !strings.HasPrefix(s, "200 ") && !strings.HasPrefix(s, "404 ") {
			bad = append(bad, s)
		}
	}
	return bad
}

// TestPrivateModules routes private modules to their own upstream, skipping the checksum
// database, serves them only with a token that has their read scope, and sends everything else
// to the public upstream.
func TestPrivateModules(t *testing.T) {
	bootstrap := buildBootstrap(t)
	srv := s3test.Start(t)
	pub := testkit.NewUpstream(t, testkit.Options{Modules: testkit.MustLoadFixtures(t)})
	priv := testkit.NewUpstream(t, testkit.Options{Modules: testkit.Synthetic(1)})
	const token = "lambda-test-token-0123"
	// The token file's content itself, as the SAM template's Tokens parameter passes it.
	tokens := "ci " + auth.HashToken(token) + " public,read:example.com/gen\n"
	fn := startFunction(t, bootstrap, append(srv.Env(),
		"MODMIRROR_STORE=s3://"+srv.NewBucket(t),
		"MODMIRROR_UPSTREAM="+pub.URL,
		"MODMIRROR_SUMDB="+pub.SumDBKey,
		"MODMIRROR_PRIVATE=example.com/gen",
		"MODMIRROR_PRIVATE_UPSTREAM="+priv.URL,
		"MODMIRROR_TOKENS="+tokens,
	)...)
	g := testkit.NewGoEnv(t, fn.URL, pub)
	g.Set("GOSUMDB", pub.SumDBKey)
	g.MustRun(t.TempDir(), "mod", "download", "example.com/lib@v1.0.0")

	const privZip = "/example.com/gen/m000/@v/v1.0.0.zip"
	get := func(auth string) int {
		req, err := http.NewRequest(http.MethodGet, fn.URL+privZip, nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if status := get(""); status != http.StatusUnauthorized {
		t.Errorf("private zip without a token = %d; want 401", status)
	}
	if status := get("Bearer " + token); status != http.StatusOK {
		t.Errorf("private zip with a token = %d; want 200", status)
	}
	if priv.Count(privZip) != 1 || pub.Count(privZip) != 0 {
		t.Errorf("private zip fetched %d times from the private upstream and %d from the public one; want 1 and 0",
			priv.Count(privZip), pub.Count(privZip))
	}
	if n := priv.Count("/example.com/lib/@v/v1.0.0.zip"); n != 0 {
		t.Errorf("a public module was asked of the private upstream %d times", n)
	}
	for _, r := range pub.Requests() {
		if strings.Contains(r, "example.com/gen") {
			t.Errorf("the public upstream or checksum database was asked about a private module: %s", r)
		}
	}
}

// TestConfiguration checks that a misconfigured function fails at start with the reason in its
// log, and that a configured one starts without touching the network.
func TestConfiguration(t *testing.T) {
	bootstrap := buildBootstrap(t)
	good := []string{"MODMIRROR_STORE=s3://bucket/p", "MODMIRROR_UPSTREAM=http://127.0.0.1:1"}
	tests := []struct {
		name string
		env  []string
		want string // in the log; "" for a function that starts
	}{
		{"no store", good[1:], "MODMIRROR_STORE"},
		{"directory store", []string{"MODMIRROR_STORE=/tmp/x", good[1]}, "MODMIRROR_STORE must be s3://"},
		{"bad store", []string{"MODMIRROR_STORE=s3://", good[1]}, "s3://"},
		{"no upstream", good[:1], "MODMIRROR_UPSTREAM"},
		{"only direct", []string{good[0], "MODMIRROR_UPSTREAM=direct"}, "MODMIRROR_UPSTREAM"},
		{"bad sumdb", append([]string{"MODMIRROR_SUMDB=nokey"}, good...), "checksum database"},
		{"private upstream alone", append([]string{"MODMIRROR_PRIVATE_UPSTREAM=http://127.0.0.1:1"}, good...), "MODMIRROR_PRIVATE"},
		{"bad inline max", append([]string{"MODMIRROR_INLINE_MAX=lots"}, good...), "MODMIRROR_INLINE_MAX"},
		{"bad public URL", append([]string{"MODMIRROR_PUBLIC_URL=ftp://x"}, good...), "public URL"},
		{"good", append([]string{"AWS_ENDPOINT_URL_S3=http://127.0.0.1:1", "AWS_REGION=us-east-1",
			"AWS_ACCESS_KEY_ID=k", "AWS_SECRET_ACCESS_KEY=s", "AWS_MAX_ATTEMPTS=1"}, good...), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := startFunction(t, bootstrap, tt.env...)
			if tt.want != "" {
				select {
				case <-fn.Exited():
				case <-time.After(30 * time.Second):
					t.Fatalf("misconfigured function did not exit")
				}
				if fn.ExitErr() == nil || !strings.Contains(fn.log.String(), tt.want) {
					t.Errorf("exit %v, log %q; want a failure naming %q", fn.ExitErr(), fn.log, tt.want)
				}
				return
			}
			// Nothing at start touched the unreachable store or upstream: the function
			// answers what needs neither.
			resp, body := get(t, fn.URL+"/not-a-module-path")
			if resp.StatusCode != 404 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
				t.Errorf("invalid path = %d %q; want a 404 with a reason", resp.StatusCode, body)
			}
			resp, body = get(t, fn.URL+"/example.com/lib/@v/v1.0.0.zip")
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("with the store unreachable = %d %q; want 503", resp.StatusCode, body)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
