package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modmirror/modmirror/shared/auth"
)

// TestMain lets the test binary double as a static file server (for a git repository served
// over dumb HTTP) when the direct-upstream test starts it inside its network namespace.
func TestMain(m *testing.M) {
	if spec := os.Getenv("MODMIRROR_TEST_FILESERVER"); spec != "" {
		dir, addr, _ := strings.Cut(spec, "@")
		if err := http.ListenAndServe(addr, http.FileServer(http.Dir(dir))); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// TestDirectPrivateUpstream fetches a private module from its git repository through the go
// command (-private-upstream direct), with no network but a namespace of the test's own: the
// repository's host name resolves to 127.0.0.1 there, served by a file server on port 80.
func TestDirectPrivateUpstream(t *testing.T) {
	for _, tool := range []string{"unshare", "git", "ip", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("this test needs %s (util-linux, git, iproute2): %v", tool, err)
		}
	}
	const host, modPath = "git.modmirror.test", "git.modmirror.test/secret.git"
	dir := t.TempDir()
	gitRoot := filepath.Join(dir, "git")
	work := filepath.Join(dir, "work")
	mustWrite(t, filepath.Join(work, "go.mod"), "module "+modPath+"\n\ngo 1.21\n")
	mustWrite(t, filepath.Join(work, "secret.go"), "package secret\n\n// Answer is private.\nconst Answer = 42\n")
	for _, args := range [][]string{
		{"init", "-q", "-b", "main", work},
		{"-C", work, "add", "."},
		{"-C", work, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "v1"},
		{"-C", work, "tag", "v1.0.0"},
		// The go command asks the repository of secret.git at /secret.
		{"clone", "-q", "--bare", work, filepath.Join(gitRoot, "secret")},
		{"-C", filepath.Join(gitRoot, "secret"), "update-server-info"},
	} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			t.Fatalf("git %q: %v\n%s", args, err, out)
		}
	}
	const token = "direct-test-token-42"
	tokens := filepath.Join(dir, "tokens")
	mustWrite(t, tokens, "ci "+auth.HashToken(token)+" read:"+host+"\n")
	certFile, keyFile := selfSignedCert(t, dir)
	hosts := filepath.Join(dir, "hosts")
	mustWrite(t, hosts, "127.0.0.1 localhost "+host+"\n")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	script := `set -eu
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
mount --bind "$HOSTS" /etc/hosts
ip link set lo up
MODMIRROR_TEST_FILESERVER="$GITROOT@127.0.0.1:80" "$SELF" >/dev/null 2>&1 &
"$SERVER" -listen 127.0.0.1:8443 -store "$STORE" -upstream http://127.0.0.1:9 -sumdb off \
	-private ` + host + ` -private-upstream direct -tokens "$TOKENS" -tls-cert "$CERT" -tls-key "$KEY" >/dev/null 2>"$LOG" &
for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/8443) 2>/dev/null && break; sleep 0.1; done
cd "$WORKDIR"
GOPROXY=https://ci:` + token + `@127.0.0.1:8443 timeout 120 go mod download -json ` + modPath + `@v1.0.0
echo "--- without a token"
GOPROXY=https://127.0.0.1:8443 GOMODCACHE="$WORKDIR/cache2" timeout 60 go mod download ` + modPath + `@v1.0.0 2>&1 || echo "refused as expected"
`
	cmd := exec.Command("unshare", "-m", "-n", "bash", "-c", script)
	workdir := t.TempDir()
	storeDir := t.TempDir()
	cmd.Env = append(os.Environ(),
		"HOSTS="+hosts, "GITROOT="+gitRoot, "SELF="+self, "SERVER="+serverBinary(t), "STORE="+storeDir,
		"TOKENS="+tokens, "CERT="+certFile, "KEY="+keyFile, "LOG="+filepath.Join(dir, "server.log"), "WORKDIR="+workdir,
		// The server's go command reaches the repository over plain HTTP in this test only.
		"GOINSECURE="+host,
		// The client: fresh caches, the test certificate, no checksum database for the private module.
		"GOMODCACHE="+filepath.Join(workdir, "cache"), "GOPATH="+filepath.Join(workdir, "gopath"), "GOFLAGS=-modcacherw",
		"GONOSUMDB="+host, "GOSUMDB=off", "SSL_CERT_FILE="+certFile, "GOTOOLCHAIN=local", "GOWORK=off", "GOENV=off")
	out, err := cmd.CombinedOutput()
	log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatalf("namespace script: %v\n%s\nserver log:\n%s", err, out, log)
	}
	if !strings.Contains(string(out), `"Version": "v1.0.0"`) || strings.Contains(string(out), `"Error"`) {
		t.Fatalf("go mod download through the direct upstream failed:\n%s\nserver log:\n%s", out, log)
	}
	if !strings.Contains(string(out), "401") || !strings.Contains(string(out), "refused as expected") {
		t.Fatalf("a client without a token was not refused with 401:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(storeDir, "git.modmirror.test/secret.git/@v/v1.0.0.zip")); err != nil {
		t.Fatalf("the private module was not stored: %v", err)
	}
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// selfSignedCert writes a certificate for 127.0.0.1 and its key into dir.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "modmirror test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	mustWrite(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	mustWrite(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	return certFile, keyFile
}
