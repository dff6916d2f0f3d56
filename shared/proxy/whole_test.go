package proxy_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/modmirror/modmirror/shared/store"
)

// TestStoreSaysOnlyWhatItHolds checks that what the store says where a static or offline client
// looks (the list, @latest) never names a version whose objects it lacks, and that what cannot
// be a module's file or version is never stored or asked upstream.
func TestStoreSaysOnlyWhatItHolds(t *testing.T) {
	t.Run("RefusedZipIsNotListed", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		e.up.Tamper("/example.com/lib/@v/v1.2.0.zip", func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b })
		for path, want := range map[string]int{
			"/example.com/lib/@v/v1.2.0.info": 200,
			"/example.com/lib/@v/v1.2.0.mod":  200,
			"/example.com/lib/@v/v1.2.0.zip":  http.StatusBadGateway,
		} {
			if resp, body := e.get(t, path); resp.StatusCode != want {
				t.Fatalf("GET %s = %d %q; want %d", path, resp.StatusCode, body, want)
			}
		}
		if e.has(t, "example.com/lib/@v/list") {
			data, _, _ := store.ReadAll(t.Context(), e.store, "example.com/lib/@v/list", 1<<20)
			t.Errorf("stored list = %q after the version's zip was refused; want no list", data)
		}
		offline := newEnv(t, envOptions{offline: true, dir: e.dir})
		if resp, body := offline.get(t, "/example.com/lib/@latest"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("offline @latest = %d %q; want 404: the store holds no whole version", resp.StatusCode, body)
		}
	})

	t.Run("WholeVersionIsListedAndLatestOffline", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		for _, v := range []string{"v1.0.0", "v1.2.0", "v1.1.0"} {
			for _, ext := range []string{".zip", ".mod", ".info"} {
				if resp, body := e.get(t, "/example.com/lib/@v/"+v+ext); resp.StatusCode != 200 {
					t.Fatalf("GET %s%s = %d %q", v, ext, resp.StatusCode, body)
				}
			}
		}
		data, _, err := store.ReadAll(t.Context(), e.store, "example.com/lib/@v/list", 1<<20)
		if err != nil || string(data) != "v1.0.0\nv1.1.0\nv1.2.0\n" {
			t.Errorf("stored list = %q, %v; want the three whole versions", data, err)
		}
		offline := newEnv(t, envOptions{offline: true, dir: e.dir})
		if resp, body := offline.get(t, "/example.com/lib/@latest"); resp.StatusCode != 200 || !strings.Contains(string(body), `"v1.2.0"`) {
			t.Errorf("offline @latest = %d %q; want v1.2.0", resp.StatusCode, body)
		}
	})

	t.Run("PseudoVersionOnlyModuleResolvesLatestOffline", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		resp, latest := e.get(t, "/example.com/pseudo/@latest")
		if resp.StatusCode != 200 {
			t.Fatalf("@latest = %d %q", resp.StatusCode, latest)
		}
		if e.has(t, "example.com/pseudo/@latest") {
			t.Error("@latest stored before the store held the version it names")
		}
		const base = "/example.com/pseudo/@v/v0.0.0-20240102030405-abcdef123456"
		for _, ext := range []string{".info", ".mod", ".zip"} {
			if resp, body := e.get(t, base+ext); resp.StatusCode != 200 {
				t.Fatalf("GET %s = %d %q", base+ext, resp.StatusCode, body)
			}
		}
		if list, _, err := store.ReadAll(t.Context(), e.store, "example.com/pseudo/@v/list", 1<<20); err != nil || len(list) != 0 {
			t.Errorf("stored list = %q, %v; want an empty list, which a static client reads before @latest", list, err)
		}
		stored, _, err := store.ReadAll(t.Context(), e.store, "example.com/pseudo/@latest", 1<<20)
		if err != nil || string(stored) != string(latest) {
			t.Errorf("stored @latest = %q, %v; want the upstream's answer %q", stored, err, latest)
		}
		offline := newEnv(t, envOptions{offline: true, dir: e.dir})
		if resp, body := offline.get(t, "/example.com/pseudo/@latest"); resp.StatusCode != 200 || string(body) != string(latest) {
			t.Errorf("offline @latest = %d %q; want %q", resp.StatusCode, body, latest)
		}
	})

	t.Run("GoModIsCheckedWithoutChecksumDatabase", func(t *testing.T) {
		e := newEnv(t, envOptions{sumdbOff: true})
		for _, tc := range []struct{ version, body string }{
			{"v1.0.0", "this is not a go.mod\n"},
			{"v1.1.0", "module example.com/other\n"},
			{"v1.2.0", "go 1.21\n"},
		} {
			path := "/example.com/lib/@v/" + tc.version + ".mod"
			e.up.Tamper(path, func([]byte) []byte { return []byte(tc.body) })
			resp, body := e.get(t, path)
			if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "invalid .mod") {
				t.Errorf("GET %s (upstream answers %q) = %d %q; want 502 invalid .mod", path, tc.body, resp.StatusCode, body)
			}
			if e.has(t, strings.TrimPrefix(path, "/")) {
				t.Errorf("%s stored although it is no go.mod of example.com/lib", path)
			}
		}
		e.up.Tamper("/example.com/lib/@v/v1.0.0.mod", nil)
		if resp, body := e.get(t, "/example.com/lib/@v/v1.0.0.mod"); resp.StatusCode != 200 {
			t.Errorf("GET the true go.mod = %d %q; want 200", resp.StatusCode, body)
		}
	})

	t.Run("ImpossibleVersionsAreRefusedLocally", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		for _, path := range []string{
			"/example.com/lib/@v/v1.5.0+incompatible.info",
			"/example.com/lib/@v/v1.5.0+incompatible.zip",
			"/example.com/major/v2/@v/v2.1.0+incompatible.mod",
			"/example.com/major/v2/@v/v3.0.0.info",
		} {
			if resp, body := e.get(t, path); resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "version") {
				t.Errorf("GET %s = %d %q; want 404 naming the version", path, resp.StatusCode, body)
			}
		}
		if reqs := e.up.Requests(); len(reqs) != 0 {
			t.Errorf("the upstream was asked %q; impossible versions are refused locally", reqs)
		}
	})
}
