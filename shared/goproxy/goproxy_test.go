package goproxy

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		raw     string
		kind    Kind
		path    string
		version string
		status  int // non-zero: the request must fail with this status
	}{
		{raw: "/example.com/m/@v/list", kind: List, path: "example.com/m"},
		{raw: "/example.com/!upper/!mod/@v/v1.0.0.info", kind: Info, path: "example.com/Upper/Mod", version: "v1.0.0"},
		{raw: "/example.com/m/@v/v1.0.0.mod", kind: Mod, path: "example.com/m", version: "v1.0.0"},
		{raw: "/example.com/m/@v/v1.0.0.zip", kind: Zip, path: "example.com/m", version: "v1.0.0"},
		{raw: "/example.com/incompat/@v/v2.0.0+incompatible.zip", kind: Zip, path: "example.com/incompat", version: "v2.0.0+incompatible"},
		{raw: "/example.com/incompat/@v/v2.0.0%2Bincompatible.mod", kind: Mod, path: "example.com/incompat", version: "v2.0.0+incompatible"},
		{raw: "/example.com/major/v2/@v/v2.1.0.mod", kind: Mod, path: "example.com/major/v2", version: "v2.1.0"},
		{raw: "/example.com/p/@v/v0.0.0-20240102030405-abcdef123456.zip", kind: Zip, path: "example.com/p", version: "v0.0.0-20240102030405-abcdef123456"},
		{raw: "/example.com/m/@v/v1.0.0-!r!c1.info", kind: Info, path: "example.com/m", version: "v1.0.0-RC1"},
		{raw: "/example.com/m/@v/main.info", kind: Query, path: "example.com/m", version: "main"},
		{raw: "/example.com/m/@v/v1.2.info", kind: Query, path: "example.com/m", version: "v1.2"},
		{raw: "/example.com/m/@latest", kind: Latest, path: "example.com/m"},
		{raw: "/sumdb/sum.example/supported", kind: SumDB},
		{raw: "/sumdb/sum.example/lookup/example.com/m@v1.0.0", kind: SumDB},

		{raw: "/", status: 404},
		{raw: "/example.com/m", status: 404},
		{raw: "/example.com/m/@v/", status: 404},
		{raw: "/example.com/m/@v/v1.0.0.tar", status: 404},
		{raw: "/example.com/Upper/@v/list", status: 404},                   // uppercase without !
		{raw: "/example.com/m/@v/v1.0.zip", status: 404},                   // non-canonical
		{raw: "/example.com/m/@v/1.0.0.mod", status: 404},                  // not semver
		{raw: "/example.com/m/@v/v1.0.0+meta.mod", status: 404},            // build metadata
		{raw: "/example.com/m/@v/v2.0.0.mod", status: 404},                 // v2 without /v2 or +incompatible
		{raw: "/example.com/m/v2/@v/v1.0.0.mod", status: 404},              // /v2 path, v1 version
		{raw: "/example.com/m/@v/v1.5.0+incompatible.info", status: 404},   // +incompatible below v2
		{raw: "/example.com/m/@v/v0.1.0+incompatible.zip", status: 404},    // likewise
		{raw: "/example.com/m/v3/@v/v3.0.0+incompatible.mod", status: 404}, // +incompatible on a /v3 path
		{raw: "/gopkg.in/yaml.v2/@v/v2.0.0+incompatible.mod", status: 404}, // on a gopkg.in .v2 path
		{raw: "/example.com/m/v2/@v/v3.0.0.mod", status: 404},              // major does not match the suffix
		{raw: "/example.com/m/@v/main.mod", status: 404},                   // a query is only for .info
		{raw: "/../../etc/passwd", status: 404},                            // traversal
		{raw: "/example.com/m/@v/../../../x.zip", status: 404},             // traversal
		{raw: "/%2e%2e/%2e%2e/etc/passwd", status: 404},                    // encoded traversal
		{raw: "/example.com%2fm/@v/list", status: 404},                     // encoded slash
		{raw: "/example.com/m/@v/v1.0.0%00.zip", status: 404},              // NUL
		{raw: "/example.com/m/@v/v1.0.0.zip%", status: 404},                // malformed escape
		{raw: "/example.com/m\\x/@v/list", status: 404},                    // backslash
		{raw: "/example.com//m/@v/list", status: 404},                      // empty element
		{raw: "/-bad.com/m/@v/list", status: 404},                          // invalid path
		{raw: "/example.com/m/@v/-x.info", status: 404},                    // invalid query
		{raw: "/" + strings.Repeat("a", 10000), status: http.StatusRequestURITooLong},
	}
	for _, tt := range tests {
		t.Run(tt.raw[:min(len(tt.raw), 60)], func(t *testing.T) {
			r, err := Parse(tt.raw)
			if tt.status != 0 {
				e, ok := err.(*Error)
				if !ok {
					t.Fatalf("Parse(%q) = %+v, %v; want an *Error with status %d", tt.raw, r, err, tt.status)
				}
				if e.Status != tt.status || e.Reason == "" {
					t.Fatalf("Parse(%q): status %d reason %q; want status %d and a reason", tt.raw, e.Status, e.Reason, tt.status)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.raw, err)
			}
			if r.Kind != tt.kind || r.Path != tt.path || r.Version != tt.version {
				t.Fatalf("Parse(%q) = %v %q %q; want %v %q %q", tt.raw, r.Kind, r.Path, r.Version, tt.kind, tt.path, tt.version)
			}
			if want := strings.ReplaceAll(strings.TrimPrefix(tt.raw, "/"), "%2B", "+"); r.Key != want {
				t.Fatalf("Parse(%q).Key = %q; want %q", tt.raw, r.Key, want)
			}
		})
	}
}

func TestCachePolicy(t *testing.T) {
	tests := []struct {
		raw, cache, contentType string
	}{
		{"/example.com/m/@v/v1.0.0.zip", CacheImmutable, "application/zip"},
		{"/example.com/m/@v/v1.0.0.info", CacheImmutable, "application/json"},
		{"/example.com/m/@v/v1.0.0.mod", CacheImmutable, "text/plain; charset=utf-8"},
		{"/example.com/m/@v/main.info", CacheShort, "application/json"},
		{"/example.com/m/@v/list", CacheShort, "text/plain; charset=utf-8"},
		{"/example.com/m/@latest", CacheShort, "application/json"},
		{"/sumdb/s.example/lookup/example.com/m@v1.0.0", CacheImmutable, "text/plain; charset=utf-8"},
		{"/sumdb/s.example/tile/8/0/001", CacheImmutable, "application/octet-stream"},
		{"/sumdb/s.example/tile/8/0/001.p/5", CacheShort, "application/octet-stream"},
		{"/sumdb/s.example/supported", CacheShort, "text/plain; charset=utf-8"},
	}
	for _, tt := range tests {
		r, err := Parse(tt.raw)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.raw, err)
		}
		if got := r.CacheControl(); got != tt.cache {
			t.Errorf("%s: Cache-Control %q; want %q", tt.raw, got, tt.cache)
		}
		if got := r.ContentType(); got != tt.contentType {
			t.Errorf("%s: Content-Type %q; want %q", tt.raw, got, tt.contentType)
		}
	}
}

// TestCacheControlValues checks the directives of each Cache-Control value: what changes is fresh
// for ShortTTL and may be served stale while revalidating and, for at least a day, on an origin
// error; what never changes is fresh for a year; a not-found answer is never served stale.
func TestCacheControlValues(t *testing.T) {
	directives := func(v string) map[string]string {
		m := map[string]string{}
		for _, d := range strings.Split(v, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
			if _, dup := m[name]; dup {
				t.Errorf("%q: directive %s twice", v, name)
			}
			m[name] = value
		}
		return m
	}
	seconds := func(v, name string, m map[string]string) int {
		s, ok := m[name]
		if !ok {
			t.Errorf("%q: no %s", v, name)
			return 0
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			t.Errorf("%q: %s=%q is not a number of seconds", v, name, s)
		}
		return n
	}

	short := directives(CacheShort)
	if _, ok := short["public"]; !ok || len(short) != 4 {
		t.Errorf("CacheShort %q: want public, max-age, stale-while-revalidate and stale-if-error", CacheShort)
	}
	if n := seconds(CacheShort, "max-age", short); n != int(ShortTTL.Seconds()) {
		t.Errorf("CacheShort max-age=%d; want ShortTTL (%v)", n, ShortTTL)
	}
	if n := seconds(CacheShort, "stale-while-revalidate", short); n <= 0 || n > int(ShortTTL.Seconds()) {
		t.Errorf("CacheShort stale-while-revalidate=%d; want 1 to %v (a list at most twice ShortTTL old)", n, ShortTTL)
	}
	if n := seconds(CacheShort, "stale-if-error", short); n < 86400 {
		t.Errorf("CacheShort stale-if-error=%d; want at least a day", n)
	}

	imm := directives(CacheImmutable)
	if n := seconds(CacheImmutable, "max-age", imm); n != 31536000 {
		t.Errorf("CacheImmutable max-age=%d; want a year", n)
	}
	if _, ok := imm["immutable"]; !ok {
		t.Errorf("CacheImmutable %q is not immutable", CacheImmutable)
	}
	nf := directives(CacheNotFound)
	if n := seconds(CacheNotFound, "max-age", nf); n != int(ShortTTL.Seconds()) {
		t.Errorf("CacheNotFound max-age=%d; want ShortTTL", n)
	}
	for name := range nf {
		if strings.HasPrefix(name, "stale-") {
			t.Errorf("CacheNotFound %q: a missing module served stale would hide a new one", CacheNotFound)
		}
	}
	if CacheNoStore != "no-store" {
		t.Errorf("CacheNoStore = %q", CacheNoStore)
	}
}

func TestIsRelease(t *testing.T) {
	for v, want := range map[string]bool{
		"v1.0.0": true, "v1.0.0-rc.1": true, "v2.0.0+incompatible": true,
		"v0.0.0-20240102030405-abcdef123456": false, "v1.0": false, "main": false,
	} {
		if got := IsRelease(v); got != want {
			t.Errorf("IsRelease(%q) = %v; want %v", v, got, want)
		}
	}
}
