package main

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/config"
	"github.com/modmirror/modmirror/shared/proxy"
	"github.com/modmirror/modmirror/shared/spool"
	"github.com/modmirror/modmirror/shared/store/dirstore"
	"github.com/modmirror/modmirror/shared/testkit"
	"github.com/modmirror/modmirror/shared/upstream"
)

// editFile rewrites a file of the mirror dir with fn.
func editFile(t *testing.T, dir, key string, fn func([]byte) []byte) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(key))
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, fn(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// flipSignature flips a byte of the signature's raw bytes at i.
func flipSignature(i int) func([]byte) []byte {
	return func(sig []byte) []byte {
		f := strings.Fields(string(sig))
		raw, err := base64.StdEncoding.DecodeString(f[3])
		if err != nil {
			panic(err)
		}
		raw[i] ^= 1
		f[3] = base64.StdEncoding.EncodeToString(raw)
		return []byte(strings.Join(f, " ") + "\n")
	}
}

func TestVerify(t *testing.T) {
	f := newFixture(t)
	keys := t.TempDir()
	for _, name := range []string{"right", "wrong"} {
		if o := runCmd(t, "keygen", "-o", filepath.Join(keys, name)); o.code != 0 {
			t.Fatal(o)
		}
	}
	signed := filepath.Join(t.TempDir(), "mirror")
	f.mustGenerate(t, signed, "-sign", filepath.Join(keys, "right.key"), f.projectSum(), "example.com/tool@v1.0.0")

	const (
		zip = "example.com/lib/@v/v1.1.0.zip"
		mod = "example.com/major/v2/@v/v2.1.0.mod"
	)
	for _, tc := range []struct {
		name   string
		pub    string // key file name; "" for none
		edit   func(t *testing.T, dir string)
		ok     bool
		naming []string // what the output must say
	}{
		{name: "clean", pub: "right", ok: true, naming: []string{"verifies", "signature of key", "checksum-database records"}},
		{name: "clean without key", ok: true, naming: []string{"give -pub to check the signature"}},
		{
			name: "zip", pub: "right",
			edit: func(t *testing.T, dir string) {
				editFile(t, dir, zip, func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b })
			},
			naming: []string{"FAIL " + zip + ": SHA-256"},
		},
		{
			name: "mod", pub: "right",
			edit: func(t *testing.T, dir string) {
				editFile(t, dir, mod, func(b []byte) []byte { return append(b, "require evil.example v1.0.0\n"...) })
			},
			naming: []string{"FAIL " + mod + ": ", "_mirror/go.sum says"},
		},
		{
			name: "manifest", pub: "right",
			edit: func(t *testing.T, dir string) {
				editFile(t, dir, "_mirror/manifest", func(b []byte) []byte {
					return bytes.Replace(b, []byte(" "+zip), []byte("0 "+zip), 1)
				})
			},
			naming: []string{"FAIL _mirror/manifest: does not match its signature _mirror/manifest.sig"},
		},
		{
			name: "wrong key", pub: "wrong",
			naming: []string{"FAIL _mirror/manifest: does not match its signature _mirror/manifest.sig", "signed by key"},
		},
		{
			name: "Ed25519 half", pub: "right",
			edit: func(t *testing.T, dir string) {
				editFile(t, dir, "_mirror/manifest.sig", flipSignature(3))
			},
			naming: []string{"_mirror/manifest.sig", "the Ed25519 signature does not verify"},
		},
		{
			name: "ML-DSA-65 half", pub: "right",
			edit: func(t *testing.T, dir string) {
				editFile(t, dir, "_mirror/manifest.sig", flipSignature(64+100))
			},
			naming: []string{"_mirror/manifest.sig", "the ML-DSA-65 signature does not verify"},
		},
		{
			name: "no signature", pub: "right",
			edit: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, "_mirror", "manifest.sig")); err != nil {
					t.Fatal(err)
				}
			},
			naming: []string{"FAIL _mirror/manifest.sig: missing"},
		},
		{
			name: "extra module",
			edit: func(t *testing.T, dir string) {
				p := filepath.Join(dir, "example.com", "evil", "@v")
				os.MkdirAll(p, 0o755)
				os.WriteFile(filepath.Join(p, "v1.0.0.mod"), []byte("module example.com/evil\n"), 0o644)
			},
			naming: []string{"FAIL example.com/evil/@v/v1.0.0.mod: not in the manifest", "has no hash in _mirror/go.sum"},
		},
		{
			name: "lookup",
			edit: func(t *testing.T, dir string) {
				editFile(t, dir, "sumdb/sumdb.test/lookup/example.com/lib@v1.1.0", func(b []byte) []byte {
					return bytes.Replace(b, []byte("example.com/lib v1.1.0 h1:"), []byte("example.com/lib v1.1.0 h1:x"), 1)
				})
			},
			naming: []string{"FAIL sumdb/sumdb.test/lookup/example.com/lib@v1.1.0: "},
		},
		{
			name: "missing zip",
			edit: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, filepath.FromSlash(zip))); err != nil {
					t.Fatal(err)
				}
			},
			naming: []string{"FAIL " + zip + ": missing"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "mirror")
			if err := os.CopyFS(dir, os.DirFS(signed)); err != nil {
				t.Fatal(err)
			}
			if tc.edit != nil {
				tc.edit(t, dir)
			}
			args := []string{"verify", "-sumdb", f.up.SumDBKey, "-upstream", "off", dir}
			if tc.pub != "" {
				args = append(args, "-pub", filepath.Join(keys, tc.pub+".pub"))
			}
			o := runCmd(t, args...)
			if ok := o.code == 0; ok != tc.ok {
				t.Errorf("verify succeeded: %v, want %v:\n%v", ok, tc.ok, o)
			}
			for _, w := range tc.naming {
				if !strings.Contains(o.stdout, w) {
					t.Errorf("output lacks %q:\n%v", w, o)
				}
			}
		})
	}
}

// TestVerifyFilledStore: a store the proxy filled has no manifest; verify checks every .mod and
// .zip against the checksum database.
func TestVerifyFilledStore(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	st, err := dirstore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	up, err := upstream.New(f.up.URL, upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db := &config.SumDB{Name: f.up.SumDBName, Key: f.up.SumDBKey}
	cdb, err := checksum.NewDB(checksum.DBConfig{Name: db.Name, Key: db.Key, Store: st, Remote: config.SumDBRemote(up, db, upstream.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	h, err := proxy.New(proxy.Config{Store: st, Upstream: up, Checksums: cdb, Logger: slog.New(slog.DiscardHandler), Spool: spool.Options{Dir: t.TempDir(), MemoryMax: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	g := testkit.NewGoEnv(t, srv.URL, f.up)
	g.Set("GOSUMDB", f.up.SumDBKey)
	g.MustRun(testkit.CopyProject(t), "mod", "download", "all")

	args := []string{"verify", "-sumdb", f.up.SumDBKey, "-upstream", f.up.URL, dir}
	o := runCmd(t, args...)
	if o.code != 0 || !strings.Contains(o.stdout, "no manifest: checking every .mod and .zip against the checksum database") ||
		!strings.Contains(o.stdout, "checked 12 .mod and .zip files") {
		t.Fatalf("verify of a filled store: %v", o)
	}
	const zip = "example.com/nogomod/@v/v1.0.0.zip"
	good := testkit.Find(f.mods, "example.com/nogomod", "v1.0.0")
	bad := *good
	bad.Files = map[string][]byte{"nogomod.go": []byte("package nogomod\n\nfunc Answer() int { return 43 }\n")}
	editFile(t, dir, zip, func([]byte) []byte { return bad.Zip() })
	o = runCmd(t, args...)
	if o.code != 1 || !strings.Contains(o.stdout, "FAIL "+zip+": ") || !strings.Contains(o.stdout, "checksum mismatch") {
		t.Fatalf("verify of a tampered filled store: %v", o)
	}
}
