package goproxy

import (
	"strings"
	"testing"

	"golang.org/x/mod/module"

	"github.com/modmirror/modmirror/shared/store"
)

// FuzzParse checks that no request path, however hostile, panics the parser or yields a key
// that could leave the store's namespace or name an invalid module.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"/example.com/m/@v/list", "/example.com/!upper/@v/v1.0.0.zip", "/example.com/m/@v/v2.0.0+incompatible.mod",
		"/example.com/m/@latest", "/sumdb/sum.example/lookup/example.com/m@v1.0.0", "/../../etc/passwd",
		"/%2e%2e/x/@v/list", "/example.com%2fm/@v/list", "/example.com/m/@v/main.info", "/a/@v/v1.0.0%00.zip",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r, err := Parse(raw)
		if err != nil {
			if e, ok := err.(*Error); !ok || e.Status < 400 || e.Status > 499 || e.Reason == "" {
				t.Fatalf("Parse(%q): error %v is not a 4xx *Error with a reason", raw, err)
			}
			return
		}
		if err := store.CheckKey(r.Key); err != nil {
			t.Fatalf("Parse(%q) accepted key %q that the store refuses: %v", raw, r.Key, err)
		}
		if strings.Contains(r.Key, "..") && r.Kind != SumDB {
			t.Fatalf("Parse(%q): key %q contains ..", raw, r.Key)
		}
		switch r.Kind {
		case Info, Mod, Zip:
			if err := module.Check(r.Path, r.Version); err != nil {
				t.Fatalf("Parse(%q) accepted %s@%s: %v", raw, r.Path, r.Version, err)
			}
		case List, Latest, Query:
			if err := module.CheckPath(r.Path); err != nil {
				t.Fatalf("Parse(%q) accepted module path %q: %v", raw, r.Path, err)
			}
		}
	})
}
