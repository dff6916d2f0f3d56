package main

import (
	"testing"

	"github.com/modmirror/modmirror/shared/store/s3store"
	"github.com/modmirror/modmirror/shared/store/s3store/s3test"
	"github.com/modmirror/modmirror/shared/testkit"
)

// TestServerOnS3 runs the server on an s3://bucket/prefix store (a real S3-compatible server),
// configured from the SDK's standard variables alone, and the go command through it.
func TestServerOnS3(t *testing.T) {
	bin := serverBinary(t)
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t)
	up := testkit.NewUpstream(t, testkit.Options{Modules: testkit.MustLoadFixtures(t)})
	p := start(t, bin, append(srv.Env(),
		"MODMIRROR_STORE=s3://"+bucket+"/mirror",
		"MODMIRROR_UPSTREAM="+up.URL,
		"MODMIRROR_SUMDB="+up.SumDBKey,
	))
	g := testkit.NewGoEnv(t, p.url, up)
	g.Set("GOSUMDB", up.SumDBKey)
	g.MustRun(testkit.CopyProject(t), "mod", "download")

	st, err := s3store.New(t.Context(), "s3://"+bucket+"/mirror", s3store.WithClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{
		"example.com/incompat/@v/v2.0.0+incompatible.zip",
		"example.com/!upper/!mod/@v/v1.0.0.mod",
		"example.com/lib/@v/list",
	} {
		if _, err := st.Stat(t.Context(), key); err != nil {
			t.Errorf("bucket lacks %s: %v", key, err)
		}
	}
	// A second client, the upstream gone: served from the bucket alone.
	up.Stop()
	g2 := testkit.NewGoEnv(t, p.url, up)
	g2.Set("GOSUMDB", up.SumDBKey)
	g2.MustRun(testkit.CopyProject(t), "mod", "download")
}
