package testkit

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A GoEnv runs the go command as a hermetic test client: a fresh GOPATH and
// module cache, a given GOPROXY and GOSUMDB, and nothing from the user's go
// env file. Only GOCACHE (the build cache) is shared with the user's, to
// keep builds fast; it holds no module data.
type GoEnv struct {
	// GOPATH and GOMODCACHE are fresh directories under tb.TempDir();
	// GOCACHE is the user's build cache. They are informational: change
	// settings with Set.
	GOPATH     string
	GOMODCACHE string
	GOCACHE    string

	tb    testing.TB
	goBin string
	certs []byte            // PEM, for TrustCertificate
	keys  []string          // settings, in the order first set
	vars  map[string]string // settings
}

// removedVar reports whether a GoEnv drops the variable key of the calling
// environment (unless set with [GoEnv.Set]), so that the user's setup cannot
// redirect installs, cross-compile or pick another toolchain.
func removedVar(key string) bool {
	switch key {
	case "GOBIN", "GOOS", "GOARCH", "GOROOT", "GOVCS":
		return true
	}
	return false
}

// NewGoEnv returns a GoEnv for tb with GOPROXY=proxyURL and
// GOSUMDB=up.GOSUMDB() (GOSUMDB=off if up is nil), and:
//
//	GOPATH, GOMODCACHE  fresh, under tb.TempDir()
//	GOCACHE             the user's (go env GOCACHE)
//	GOFLAGS=-modcacherw (so that tb.TempDir() can be removed)
//	GONOSUMDB, GONOPROXY, GOPRIVATE, GOINSECURE empty
//	GOTOOLCHAIN=local, GOTELEMETRY=off, GOWORK=off, GO111MODULE=on,
//	GOENV=off (ignore the user's go env file), GOAUTH=off (no .netrc)
//
// GOBIN, GOOS, GOARCH, GOROOT and GOVCS are dropped from the environment; everything else, HOME included, is
// inherited. To reach up's checksum database through the proxy instead of
// directly, Set("GOSUMDB", up.SumDBKey).
func NewGoEnv(tb testing.TB, proxyURL string, up *Upstream) *GoEnv {
	tb.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		tb.Fatalf("testkit: %v", err)
	}
	out, err := exec.Command(goBin, "env", "GOCACHE").Output()
	if err != nil {
		tb.Fatalf("testkit: go env GOCACHE: %v", err)
	}
	dir := tb.TempDir()
	e := &GoEnv{
		GOPATH:     filepath.Join(dir, "gopath"),
		GOMODCACHE: filepath.Join(dir, "modcache"),
		GOCACHE:    strings.TrimSpace(string(out)),
		tb:         tb,
		goBin:      goBin,
		vars:       make(map[string]string),
	}
	sumdb := "off"
	if up != nil {
		sumdb = up.GOSUMDB()
		if c := up.Certificate(); c != nil {
			e.TrustCertificate(c)
		}
	}
	for _, kv := range [][2]string{
		{"GOPATH", e.GOPATH},
		{"GOMODCACHE", e.GOMODCACHE},
		{"GOCACHE", e.GOCACHE},
		{"GOPROXY", proxyURL},
		{"GOSUMDB", sumdb},
		{"GONOSUMDB", ""},
		{"GONOPROXY", ""},
		{"GOPRIVATE", ""},
		{"GOINSECURE", ""},
		{"GOFLAGS", "-modcacherw"},
		{"GOTOOLCHAIN", "local"},
		{"GOTELEMETRY", "off"},
		{"GOWORK", "off"},
		{"GO111MODULE", "on"},
		{"GOENV", "off"},
		{"GOAUTH", "off"},
	} {
		e.Set(kv[0], kv[1])
	}
	return e
}

// Set sets an environment variable for later commands, overriding both the
// defaults of NewGoEnv and the calling environment.
func (e *GoEnv) Set(key, value string) {
	if _, ok := e.vars[key]; !ok {
		e.keys = append(e.keys, key)
	}
	e.vars[key] = value
}

// Env returns the environment the go command runs with, as KEY=VALUE
// strings.
func (e *GoEnv) Env() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, set := e.vars[k]; set || removedVar(k) {
			continue
		}
		env = append(env, kv)
	}
	for _, k := range e.keys {
		env = append(env, k+"="+e.vars[k])
	}
	return env
}

// Command returns an exec.Cmd that runs the go command with args in dir
// (a fresh empty directory outside any module if dir is ""), with the
// GoEnv's environment. It is cancelled when the test ends.
func (e *GoEnv) Command(dir string, args ...string) *exec.Cmd {
	if dir == "" {
		dir = e.tb.TempDir()
	}
	cmd := exec.CommandContext(e.tb.Context(), e.goBin, args...)
	cmd.Dir = dir
	cmd.Env = e.Env()
	return cmd
}

// Run runs the go command with args in dir (see [GoEnv.Command]) and
// returns its combined standard output and error.
func (e *GoEnv) Run(dir string, args ...string) (output string, err error) {
	out, err := e.Command(dir, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("testkit: go %s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// MustRun is [GoEnv.Run] that fails the test, with the command's output,
// if the command fails.
func (e *GoEnv) MustRun(dir string, args ...string) string {
	e.tb.Helper()
	out, err := e.Run(dir, args...)
	if err != nil {
		e.tb.Fatalf("%v\n%s", err, out)
	}
	return out
}

// TrustCertificate makes the go command trust cert for https: it writes
// cert, with those trusted before, to a PEM file and sets SSL_CERT_FILE
// (which replaces the system's root file; the system's certificate
// directories still count). Use it with httptest.NewTLSServer's
// Certificate().
func (e *GoEnv) TrustCertificate(cert *x509.Certificate) {
	e.tb.Helper()
	e.certs = append(e.certs, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})...)
	file := filepath.Join(e.tb.TempDir(), "certs.pem")
	if err := os.WriteFile(file, e.certs, 0o644); err != nil {
		e.tb.Fatalf("testkit: %v", err)
	}
	e.Set("SSL_CERT_FILE", file)
}

// Bin returns the path of the program name installed by "go install" in
// this GoEnv (GOPATH/bin/name).
func (e *GoEnv) Bin(name string) string {
	return filepath.Join(e.GOPATH, "bin", name)
}

// CopyProject copies the fixture project testdata/project into a new
// temporary directory and returns the copy's path. The project (module
// example.com/project) imports every small fixture module but example.com/tool
// and has a go.sum with their hashes.
func CopyProject(tb testing.TB) string {
	tb.Helper()
	root, err := RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	dst := filepath.Join(tb.TempDir(), "project")
	if err := os.CopyFS(dst, os.DirFS(filepath.Join(root, "testdata", "project"))); err != nil {
		tb.Fatalf("testkit: copying the fixture project: %v", err)
	}
	return dst
}
