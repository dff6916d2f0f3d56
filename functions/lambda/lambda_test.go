package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/modmirror/modmirror/functions/lambda/lambdaemu"
	"github.com/modmirror/modmirror/shared/auth"
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
	f := &function{log: &testkit.Buffer{}, spool: t.TempDir()}
	fn, err := lambdaemu.Start(t.Context(), lambdaemu.Options{
		Bootstrap: bootstrap,
		Env:       append([]string{"TMPDIR=" + f.spool, "HOME=" + t.TempDir()}, env...),
		Log:       f.log,
		Timeout:   2 * time.Minute,
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
