package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/testkit"
)

// TestRerunIsNoOp: a second run over the same inputs asks the upstream nothing and rewrites no
// file; a run into another directory makes a byte-identical tree.
func TestRerunIsNoOp(t *testing.T) {
	f := newFixture(t)
	keyDir := t.TempDir()
	if o := runCmd(t, "keygen", "-o", filepath.Join(keyDir, "k")); o.code != 0 {
		t.Fatal(o)
	}
	args := []string{"-sign", filepath.Join(keyDir, "k.key"), f.projectSum(), "example.com/tool/cmd/hello@v1.0.0"}
	a := filepath.Join(t.TempDir(), "a")
	f.mustGenerate(t, a, args...)
	first := tree(t, a)

	f.up.ResetRequests()
	o := f.mustGenerate(t, a, args...)
	if reqs := f.up.Requests(); len(reqs) > 0 {
		t.Errorf("the second run made %d upstream requests: %q", len(reqs), reqs)
	}
	if !strings.Contains(o.stdout, "0 fetched, 7 skipped (already held)") || !strings.Contains(o.stdout, "0 written") {
		t.Errorf("the second run's summary does not say it did nothing:\n%v", o)
	}
	second := tree(t, a)
	for name, st := range first {
		now, ok := second[name]
		switch {
		case !ok:
			t.Errorf("%s: gone after the second run", name)
		case now != st:
			t.Errorf("%s: rewritten by the second run (mtime %v -> %v, inode %d -> %d)", name, st.mtime, now.mtime, st.ino, now.ino)
		}
	}
	for name := range second {
		if _, ok := first[name]; !ok {
			t.Errorf("%s: created by the second run", name)
		}
	}

	b := filepath.Join(t.TempDir(), "b")
	f.mustGenerate(t, b, args...)
	other := tree(t, b)
	if len(other) != len(first) {
		t.Errorf("two runs made %d and %d files", len(first), len(other))
	}
	for name, st := range first {
		if other[name].data != st.data {
			t.Errorf("%s differs between two runs into two directories", name)
		}
	}
	for _, want := range []string{"_mirror/manifest", "_mirror/manifest.sig", "_mirror/go.sum", "sumdb/sumdb.test/supported",
		"sumdb/sumdb.test/lookup/example.com/tool@v1.0.0", "example.com/lib/@v/list", "example.com/!upper/!mod/@v/v1.0.0.zip"} {
		if _, ok := first[want]; !ok {
			t.Errorf("the mirror lacks %s", want)
		}
	}
	if got := first["example.com/lib/@v/list"].data; got != "v1.1.0\n" {
		t.Errorf("lib's list is %q, want v1.1.0 alone", got)
	}
	if _, ok := first["example.com/pseudo/@v/list"]; ok {
		t.Errorf("a list holds a pseudo-version")
	}
}

// TestFailures: a module version whose hash is wrong fails alone, writes nothing, and the rest
// of the mirror is written; a re-run with right hashes resumes.
func TestFailures(t *testing.T) {
	f := newFixture(t)
	orig, err := os.ReadFile(f.projectSum())
	if err != nil {
		t.Fatal(err)
	}
	lib := testkit.Find(f.mods, "example.com/lib", "v1.1.0")
	// Valid hashes of other content.
	other := testkit.Find(f.mods, "example.com/lib", "v1.0.0")
	otherMod := testkit.Find(f.mods, "example.com/tool", "v1.0.0").ModHash()
	for _, tc := range []struct {
		name   string
		sum    func(string) string // edits go.sum
		tamper string              // upstream path served tampered
		args   []string
		bad    string   // the module version that fails
		want   []string // in the failure
	}{
		{
			name: "zip hash in go.sum",
			sum: func(s string) string {
				return strings.Replace(s, "example.com/lib v1.1.0 "+lib.ZipHash(), "example.com/lib v1.1.0 "+other.ZipHash(), 1)
			},
			bad:  "example.com/lib@v1.1.0",
			want: []string{"example.com/lib@v1.1.0", lib.ZipHash(), other.ZipHash(), "go.sum"},
		},
		{
			name: "go.mod hash in go.sum",
			sum: func(s string) string {
				return strings.Replace(s, "example.com/lib v1.1.0/go.mod "+lib.ModHash(), "example.com/lib v1.1.0/go.mod "+otherMod, 1)
			},
			bad:  "example.com/lib@v1.1.0",
			want: []string{"example.com/lib@v1.1.0", lib.ModHash(), otherMod, "go.mod"},
		},
		{
			name:   "zip tampered upstream, no go.sum line",
			tamper: "/example.com/tool/@v/v1.0.0.zip",
			args:   []string{"example.com/tool@v1.0.0"},
			bad:    "example.com/tool@v1.0.0",
			want:   []string{"example.com/tool@v1.0.0", "checksum database sumdb.test", testkit.Find(f.mods, "example.com/tool", "v1.0.0").ZipHash()},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sum := string(orig)
			if tc.sum != nil {
				sum = tc.sum(sum)
			}
			sumFile := filepath.Join(t.TempDir(), "go.sum")
			if err := os.WriteFile(sumFile, []byte(sum), 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.tamper != "" {
				f.up.Tamper(tc.tamper, func(b []byte) []byte {
					m := testkit.Find(f.mods, "example.com/tool", "v1.0.0")
					m2 := *m
					m2.Files = map[string][]byte{"go.mod": m.Files["go.mod"], "cmd/hello/main.go": []byte("package main\n\nfunc main() { println(\"evil\") }\n")}
					return m2.Zip()
				})
				defer f.up.Tamper(tc.tamper, nil)
			}
			dir := filepath.Join(t.TempDir(), "mirror")
			o := f.generate(t, dir, append([]string{sumFile}, tc.args...)...)
			if o.code != 1 {
				t.Fatalf("want exit 1, have %v", o)
			}
			failed := ""
			for _, line := range strings.Split(o.stdout, "\n") {
				if strings.HasPrefix(strings.TrimSpace(line), tc.bad+":") {
					failed = line
				}
			}
			if failed == "" {
				t.Fatalf("no failure listed for %s:\n%v", tc.bad, o)
			}
			for _, w := range tc.want {
				if !strings.Contains(failed, w) {
					t.Errorf("the failure does not name %q: %s", w, failed)
				}
			}
			if strings.Count(o.stdout, "FAILED (1;") != 1 {
				t.Errorf("want exactly one failure:\n%v", o)
			}
			files := tree(t, dir)
			esc := strings.Replace(tc.bad, "@", "/@v/", 1)
			for name := range files {
				if strings.HasPrefix(name, esc) || strings.Contains(name, "lookup/"+tc.bad) {
					t.Errorf("%s was written for the failed module", name)
				}
			}
			for _, want := range []string{"example.com/nogomod/@v/v1.0.0.zip", "example.com/major/v2/@v/v2.1.0.zip", "_mirror/manifest"} {
				if _, ok := files[want]; !ok {
					t.Errorf("%s was not written", want)
				}
			}
			if strings.Contains(files["_mirror/go.sum"].data, tc.bad[:strings.Index(tc.bad, "@")]+" "+tc.bad[strings.Index(tc.bad, "@")+1:]) {
				t.Errorf("_mirror/go.sum records the failed module")
			}

			// Resume with the true inputs: only the failed module is fetched.
			if tc.tamper != "" {
				f.up.Tamper(tc.tamper, nil)
			}
			f.up.ResetRequests()
			o = f.mustGenerate(t, dir, append([]string{f.projectSum()}, tc.args...)...)
			for _, r := range f.up.Requests() {
				if !strings.Contains(r, strings.Split(tc.bad, "@")[0]) && !strings.HasPrefix(r, "/sumdb/") {
					t.Errorf("the resumed run fetched %s again", r)
				}
			}
			if !strings.Contains(o.stdout, " 1 fetched") {
				t.Errorf("the resumed run should fetch exactly the failed module:\n%v", o)
			}
		})
	}
}

// TestQueries: module@query is resolved once against the upstream, printed and pinned.
func TestQueries(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		arg, want string
	}{
		{"example.com/lib@latest", "example.com/lib@v1.2.0"},
		{"example.com/lib@v1.1", "example.com/lib@v1.1.0"},
		{"example.com/lib@main", "example.com/lib@v1.2.0"},
		{"example.com/tool/cmd/hello@latest", "example.com/tool@v1.0.0"},
		{"example.com/major/v2@v2", "example.com/major/v2@v2.1.0"},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "mirror")
			o := f.mustGenerate(t, dir, tc.arg)
			if want := "resolved " + tc.arg + ": " + tc.want; !strings.Contains(o.stdout, want) {
				t.Errorf("output lacks %q:\n%v", want, o)
			}
			m, v, _ := strings.Cut(tc.want, "@")
			sums, err := checksum.ParseGoSum([]byte(tree(t, dir)["_mirror/go.sum"].data))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(sums, func(l checksum.Line) bool { return l.Path == m && l.Version == v && !l.GoMod }) {
				t.Errorf("the mirror does not hold %s's zip", tc.want)
			}
		})
	}
	o := f.generate(t, filepath.Join(t.TempDir(), "mirror"), "example.com/lib@v9")
	if o.code != 1 || !strings.Contains(o.stdout, "example.com/lib@v9") {
		t.Errorf("an unresolvable query should fail by name: %v", o)
	}
}
