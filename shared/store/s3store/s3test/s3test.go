// Package s3test starts a real S3-compatible server for tests and benchmarks: versitygw with its
// posix backend in a temporary directory, on 127.0.0.1. It is not a fake: conditional writes,
// multipart uploads, ranged reads and presigned URLs are the server's own.
//
// versitygw is found on PATH or in $(go env GOPATH)/bin; `make deps` installs it. A test that
// needs it and cannot find it fails, saying how to install it.
package s3test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/modmirror/modmirror/shared/testkit"
)

// Version is the versitygw release the tests are written against.
const Version = "v1.8.0"

// InstallHint says how to install versitygw.
const InstallHint = "install it with `make deps`, or: go install github.com/versity/versitygw/cmd/versitygw@" + Version

// Region is the region the server is started with and clients sign for.
const Region = "us-east-1"

// A Server is a running versitygw.
type Server struct {
	// Endpoint is the server's base URL, http://127.0.0.1:PORT.
	Endpoint string
	// AccessKey and SecretKey are the root user's credentials.
	AccessKey, SecretKey string
	// Dir is the posix backend's root: one directory per bucket.
	Dir string

	client *s3.Client
	proc   *testkit.Process

	mu      sync.Mutex
	buckets int
}

// Binary returns the path of the versitygw binary: on PATH, else in $(go env GOPATH)/bin.
func Binary() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		out, err := exec.Command("go", "env", "GOPATH").Output()
		if err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	for _, dir := range filepath.SplitList(gopath) {
		p := filepath.Join(dir, "bin", "versitygw")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("versitygw is not on PATH nor in $(go env GOPATH)/bin: " + InstallHint)
}

// Start starts versitygw for tb and stops it when tb ends. It fails tb if versitygw is missing
// or does not come up.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin, err := Binary()
	if err != nil {
		tb.Fatalf("s3test: %v", err)
	}
	var errs []error
	for range 3 { // a free port can be taken between finding it and the server binding it
		s, err := start(tb, bin)
		if err == nil {
			return s
		}
		errs = append(errs, err)
	}
	tb.Fatalf("s3test: versitygw did not start: %v", errors.Join(errs...))
	return nil
}

func start(tb testing.TB, bin string) (*Server, error) {
	port, err := testkit.FreePort()
	if err != nil {
		return nil, err
	}
	s := &Server{
		Endpoint:  "http://127.0.0.1:" + strconv.Itoa(port),
		AccessKey: "modmirror-test",
		SecretKey: "modmirror-test-secret",
		Dir:       tb.TempDir(),
	}
	s.proc = testkit.StartProcess(tb, exec.Command(bin,
		"--access", s.AccessKey, "--secret", s.SecretKey, "--region", Region,
		"--port", "127.0.0.1:"+strconv.Itoa(port), "--quiet",
		"posix", s.Dir))
	ctx, cancel := context.WithTimeout(tb.Context(), 20*time.Second)
	defer cancel()
	if err := s.proc.WaitReady(ctx, testkit.HTTPReady(s.Endpoint+"/", 0)); err != nil {
		s.proc.Stop()
		return nil, fmt.Errorf("versitygw on %s: %w", s.Endpoint, err)
	}
	s.client = s3.New(s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
	return s, nil
}

// Client returns an S3 client for the server, as the root user.
func (s *Server) Client() *s3.Client { return s.client }

// Env returns the environment variables that point the SDK's default configuration at the
// server, as KEY=VALUE strings: credentials, region and AWS_ENDPOINT_URL_S3, with shared config
// files turned off.
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_SESSION_TOKEN=",
		"AWS_REGION=" + Region,
		"AWS_ENDPOINT_URL_S3=" + s.Endpoint,
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
		"AWS_PROFILE=",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Setenv sets Env in the test's own environment (so the test cannot run in parallel).
func (s *Server) Setenv(t *testing.T) {
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// NewBucket creates a new, empty bucket and returns its name.
func (s *Server) NewBucket(tb testing.TB) string {
	tb.Helper()
	s.mu.Lock()
	s.buckets++
	name := fmt.Sprintf("modmirror-test-%d", s.buckets)
	s.mu.Unlock()
	if _, err := s.client.CreateBucket(tb.Context(), &s3.CreateBucketInput{Bucket: &name}); err != nil {
		tb.Fatalf("s3test: create bucket %s: %v\n%s", name, err, s.Log())
	}
	return name
}

// Log returns what the server has logged.
func (s *Server) Log() string { return s.proc.Output() }
