package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/modmirror/modmirror/shared/testkit"
)

// TestReleaseIsReproducible builds the release for this machine's platform twice: the archives
// are byte for byte the same, hold the two commands and the license with the right modes, the
// binary runs, SHA256SUMS checks, and the SBOM names the modules linked.
func TestReleaseIsReproducible(t *testing.T) {
	root, err := testkit.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	platform := runtime.GOOS + "/" + runtime.GOARCH
	mtime := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	var outs [2]string
	for i := range outs {
		outs[i] = t.TempDir()
		o := options{out: outs[i], version: "vtest", platforms: []string{platform}, root: root}
		if err := release(t.Context(), o, mtime, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	name := "modmirror_vtest_" + runtime.GOOS + "_" + runtime.GOARCH + ".tar.gz"
	for _, f := range []string{name, "modmirror_vtest.cdx.json", "SHA256SUMS"} {
		a, err1 := os.ReadFile(filepath.Join(outs[0], f))
		b, err2 := os.ReadFile(filepath.Join(outs[1], f))
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs between two runs (%v, %v)", f, err1, err2)
		}
	}

	archive, err := os.ReadFile(filepath.Join(outs[0], name))
	if err != nil {
		t.Fatal(err)
	}
	sums, _ := os.ReadFile(filepath.Join(outs[0], "SHA256SUMS"))
	sum := sha256.Sum256(archive)
	if !strings.Contains(string(sums), hex.EncodeToString(sum[:])+"  "+name+"\n") {
		t.Errorf("SHA256SUMS does not hold the archive's sum:\n%s", sums)
	}
	gz, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	dir := strings.TrimSuffix(name, ".tar.gz")
	want := map[string]int64{dir + "/modmirror": 0o755, dir + "/modmirror-generator": 0o755, dir + "/LICENSE": 0o644, dir + "/README.md": 0o644}
	bin := filepath.Join(t.TempDir(), "modmirror")
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if mode, ok := want[hdr.Name]; !ok || hdr.Mode != mode || !hdr.ModTime.Equal(mtime) || hdr.Uid != 0 || hdr.Uname != "" {
			t.Errorf("archive entry %s: mode %o, time %v, owner %d %q", hdr.Name, hdr.Mode, hdr.ModTime, hdr.Uid, hdr.Uname)
		}
		delete(want, hdr.Name)
		if hdr.Name == dir+"/modmirror" {
			data, _ := io.ReadAll(tr)
			os.WriteFile(bin, data, 0o755)
		}
	}
	if len(want) != 0 {
		t.Errorf("archive lacks %v", want)
	}
	if out, err := exec.Command(bin, "-version").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "modmirror ") || !strings.Contains(string(out), "revision") {
		t.Errorf("modmirror -version from the archive: %q, %v; want the build with its revision", out, err)
	}
	sbom, _ := os.ReadFile(filepath.Join(outs[0], "modmirror_vtest.cdx.json"))
	for _, w := range []string{`"bomFormat": "CycloneDX"`, `"pkg:golang/golang.org/x/mod@v0.42.0"`, `"pkg:golang/github.com/modmirror/modmirror@vtest"`} {
		if !bytes.Contains(sbom, []byte(w)) {
			t.Errorf("the SBOM lacks %s", w)
		}
	}
}
