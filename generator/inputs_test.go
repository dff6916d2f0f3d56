package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"

	"github.com/modmirror/modmirror/shared/mirror"
)

const (
	sumA = "example.com/a v1.0.0 h1:GgJKpW9wWSwOV6YnO3jCyDPcpKvhmnIMTMKf9vwBSzM=\nexample.com/a v1.0.0/go.mod h1:Wz81o5uWI40QXOkub97QvSwZIZT+pRlB+DxGtMTk39A=\n"
	sumB = "example.com/b v1.2.0/go.mod h1:Dx1zv02UsdsagVg8JGP9CfaRr9j4IApAGUMhJrQ+NLw=\n"
)

func TestReadInputs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   map[string]string // relative to a temporary directory
		args    []string          // "$D" is the directory
		lines   int               // go.sum lines read
		modArgs []string          // module@version arguments
		err     string
	}{
		{name: "go.sum", files: map[string]string{"go.sum": sumA}, args: []string{"$D/go.sum"}, lines: 2},
		{name: "go.mod reads go.sum beside", files: map[string]string{"go.mod": "module x\n", "go.sum": sumA}, args: []string{"$D/go.mod"}, lines: 2},
		{name: "go.mod without go.sum", files: map[string]string{"go.mod": "module x\n"}, args: []string{"$D/go.mod"}, err: "go.sum"},
		{name: "directory", files: map[string]string{"go.mod": "module x\n", "go.sum": sumA}, args: []string{"$D"}, lines: 2},
		{
			name: "go.work",
			files: map[string]string{
				"go.work": "go 1.26\n\nuse (\n\t./a\n\t./b\n)\n", "go.work.sum": sumB,
				"a/go.mod": "module a\n", "a/go.sum": sumA, "b/go.mod": "module b\n",
			},
			args: []string{"$D/go.work"}, lines: 3,
		},
		{name: "go.work.sum", files: map[string]string{"go.work.sum": sumB}, args: []string{"$D/go.work.sum"}, lines: 1},
		{name: "module@version", args: []string{"example.com/tool/cmd/hello@v1.0.0", "example.com/lib@latest"}, modArgs: []string{"example.com/tool/cmd/hello@v1.0.0", "example.com/lib@latest"}},
		{
			name:    "list file",
			files:   map[string]string{"deps.txt": "# pinned\nexample.com/a@v1.0.0\n\nexample.com/b v1.2.0 # as go list -m prints it\n"},
			args:    []string{"$D/deps.txt"},
			modArgs: []string{"example.com/a@v1.0.0", "example.com/b@v1.2.0"},
		},
		{name: "bad list line", files: map[string]string{"deps.txt": "example.com/a\n"}, args: []string{"$D/deps.txt"}, err: "deps.txt:1: want module@version"},
		{name: "bad go.sum", files: map[string]string{"go.sum": "example.com/a v1.0.0\n"}, args: []string{"$D/go.sum"}, err: "go.sum line 1"},
		{name: "neither file nor module", args: []string{"nothing-here"}, err: "no such file, and not a module@version"},
		{name: "empty directory", files: map[string]string{"x": ""}, args: []string{"$D"}, err: "neither go.work nor go.mod"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			for name, content := range tc.files {
				p := filepath.Join(d, filepath.FromSlash(name))
				os.MkdirAll(filepath.Dir(p), 0o755)
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var args []string
			for _, a := range tc.args {
				args = append(args, strings.ReplaceAll(a, "$D", d))
			}
			in, err := readInputs(args)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(in.lines) != tc.lines {
				t.Errorf("%d go.sum lines, want %d", len(in.lines), tc.lines)
			}
			if !slices.Equal(in.args, tc.modArgs) {
				t.Errorf("module arguments %q, want %q", in.args, tc.modArgs)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-j"}, exitUsage, "flag needs an argument"},
		{[]string{"-upstream", "off", "-sumdb", "off", "nothing-here"}, exitUsage, "not a module@version"},
		{[]string{"-progress", "fancy", "-upstream", "off", "-sumdb", "off", "example.com/m@v1.0.0"}, exitUsage, "-progress"},
		{[]string{"-sign", "/nonexistent/key", "-upstream", "off", "-sumdb", "off", "example.com/m@v1.0.0"}, exitUsage, "signing key"},
		{[]string{"-upstream", "off", "-sumdb", "off"}, exitUsage, "no input"},
		{[]string{"-h"}, exitOK, "usage: generator"},
		{[]string{"-version"}, exitOK, ""},
		{[]string{"verify"}, exitUsage, "want one mirror directory"},
		{[]string{"keygen", "extra"}, exitUsage, "unexpected arguments"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			args := tc.args
			if args[0] != "verify" && args[0] != "keygen" {
				args = append([]string{"-o", filepath.Join(t.TempDir(), "m")}, args...)
			}
			o := runCmd(t, args...)
			if o.code != tc.code || !strings.Contains(o.stderr, tc.want) || tc.args[0] == "-version" && !strings.HasPrefix(o.stdout, "modmirror ") {
				t.Errorf("want exit %d and %q:\n%v", tc.code, tc.want, o)
			}
		})
	}
}

func TestKeygen(t *testing.T) {
	name := filepath.Join(t.TempDir(), "k")
	o := runCmd(t, "keygen", "-o", name)
	if o.code != 0 || !strings.Contains(o.stdout, "ed25519+mldsa65") {
		t.Fatal(o)
	}
	priv, err := os.ReadFile(name + ".key")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(name + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(priv), "modmirror-private-key-v1 ed25519+mldsa65 ") || !strings.HasPrefix(string(pub), "modmirror-public-key-v1 ed25519+mldsa65 ") {
		t.Errorf("key files do not name their scheme:\n%s%s", priv, pub)
	}
	if fi, err := os.Stat(name + ".key"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the private key is not private: %v %v", fi.Mode(), err)
	}
	if o := runCmd(t, "keygen", "-o", name); o.code == 0 {
		t.Errorf("keygen overwrote a key: %v", o)
	}
	// A public key cannot sign, and verify refuses a private key.
	dir := filepath.Join(t.TempDir(), "m")
	os.MkdirAll(dir, 0o755)
	if o := runCmd(t, "verify", "-pub", name+".key", "-sumdb", "off", dir); o.code != exitUsage || !strings.Contains(o.stderr, "private key") {
		t.Errorf("verify with a private key: %v", o)
	}
}

func TestSumDBOff(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Join(t.TempDir(), "mirror")
	o := runCmd(t, "-o", dir, "-upstream", f.up.URL, "-sumdb", "off", "-progress", "off", f.projectSum(), "example.com/tool@v1.0.0")
	if o.code != 0 {
		t.Fatal(o)
	}
	for _, want := range []string{"go.sum only (checksum database off)", "NOT VERIFIED (1", "  example.com/tool@v1.0.0\n"} {
		if !strings.Contains(o.stdout, want) {
			t.Errorf("output lacks %q:\n%v", want, o)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "sumdb")); err == nil {
		t.Errorf("-sumdb off wrote checksum-database objects")
	}
	if len(f.up.Requests()) == 0 || slices.ContainsFunc(f.up.Requests(), func(r string) bool { return strings.HasPrefix(r, "/sumdb/") }) {
		t.Errorf("-sumdb off asked the checksum database: %q", f.up.Requests())
	}
}

func TestProgress(t *testing.T) {
	for _, tc := range []struct {
		mode string
		want []string
	}{
		{"lines", []string{"[1/2] fetched example.com/a@v1.0.0\n", "[2/2] FAILED  example.com/b@v1.0.0: boom\n"}},
		{"bar", []string{"\r\x1b[K[", "2/2 modules", "2.0 KiB", "/s", "ETA 0s", "1 failed", "FAILED example.com/b@v1.0.0: boom\n"}},
		{"off", nil},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			var buf bytes.Buffer
			p, err := newProgress(&buf, tc.mode)
			if err != nil {
				t.Fatal(err)
			}
			p.Planned(2)
			p.Fetched(2048)
			p.Finished(module.Version{Path: "example.com/a", Version: "v1.0.0"}, mirror.Written, nil)
			p.Finished(module.Version{Path: "example.com/b", Version: "v1.0.0"}, mirror.Failed, errString("boom"))
			time.Sleep(250 * time.Millisecond) // a redraw or two
			p.Close()
			out := buf.String()
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%q", w, out)
				}
			}
			if tc.want == nil && out != "" {
				t.Errorf("off printed %q", out)
			}
		})
	}
}

type errString string

func (e errString) Error() string { return string(e) }
