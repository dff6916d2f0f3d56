package main

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/modmirror/modmirror/shared/testkit"
)

// TestStoreIsStaticFallback fills modules through the server, stops it and its upstream, and
// serves the store directory as plain files: a fresh go command, verifying against the checksum
// database, downloads, builds and verifies everything that was filled through
// GOPROXY='<dead>|<static>', the static server alone, and file://, and gets the ordinary
// not-found for the rest.
func TestStoreIsStaticFallback(t *testing.T) {
	bin := serverBinary(t)
	shaped := testkit.MustShaped(t, 6)
	up := testkit.NewUpstream(t, testkit.Options{Modules: append(testkit.MustLoadFixtures(t), shaped...)})
	storeDir := t.TempDir()
	p := start(t, bin, []string{
		"MODMIRROR_STORE=" + storeDir,
		"MODMIRROR_UPSTREAM=" + up.URL,
		"MODMIRROR_SUMDB=" + up.SumDBKey,
	})
	fill := testkit.NewGoEnv(t, p.url, up)
	fill.Set("GOSUMDB", up.SumDBKey)
	testkit.TeamFill(t, fill, shaped)
	p.Stop() // a graceful stop: the prefetches of v1.2.0's .mod and .zip are done
	up.Stop()

	static := httptest.NewServer(http.FileServer(http.Dir(storeDir)))
	t.Cleanup(static.Close)
	for _, tc := range []struct{ name, proxy string }{
		{"DeadProxyThenStatic", testkit.DeadURL(t) + "|" + static.URL},
		{"StaticAlone", static.URL},
		{"File", "file://" + filepath.ToSlash(storeDir)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := testkit.NewGoEnv(t, tc.proxy, up)
			g.Set("GOSUMDB", up.SumDBKey) // no URL: the database is reached through the proxies
			// The server prefetched v1.2.0's zip after the fill's @latest: it is whole.
			testkit.CheckStaticGoProxy(t, g, shaped, "v1.2.0")
		})
	}
}
