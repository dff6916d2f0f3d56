package main

import (
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/modmirror/modmirror/shared/store/s3store"
	"github.com/modmirror/modmirror/shared/store/s3store/s3test"
	"github.com/modmirror/modmirror/shared/testkit"
)

// TestTimedOutInvocationLeavesNothing runs the bootstrap with a 2 s timeout against a zip whose
// body stops half-way: the invocation times out, nothing is left in the function's /tmp (a
// spool has no name from the moment it is made) or in the bucket, and the function serves the
// next invocation.
func TestTimedOutInvocationLeavesNothing(t *testing.T) {
	bootstrap := buildBootstrap(t)
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t)
	big := testkit.NewBig(t, "example.com/big", "v1.0.0", 20<<20)
	up := testkit.NewUpstream(t, testkit.Options{Modules: testkit.MustLoadFixtures(t), Big: []*testkit.BigModule{big}})
	const path = "/example.com/big/@v/v1.0.0.zip"
	up.Stall(path, 8<<20)
	spec := "s3://" + bucket + "/mirror"
	fn := startFunctionTimeout(t, bootstrap, 2*time.Second, append(srv.Env(),
		"MODMIRROR_STORE="+spec,
		"MODMIRROR_UPSTREAM="+up.URL,
		"MODMIRROR_SUMDB="+up.SumDBKey,
	)...)

	during := make(chan []os.DirEntry, 1)
	go func() {
		// Once the upstream has been asked for the zip, its first 8 MiB are on their way to a
		// spool; whenever it is looked at, the spool has no name.
		for up.Count(path) == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		ents, _ := os.ReadDir(fn.spool)
		during <- ents
	}()
	resp, err := http.Get(fn.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 500 {
		t.Errorf("GET %s from a stalled upstream past the function's timeout = %d; want a 5xx", path, resp.StatusCode)
	}
	if ents := <-during; len(ents) != 0 {
		t.Errorf("the function's /tmp holds %v while it spools", ents)
	}
	if ents, err := os.ReadDir(fn.spool); err != nil || len(ents) != 0 {
		t.Errorf("the function's /tmp holds %v (%v) after the timeout; want nothing", ents, err)
	}
	st, err := s3store.New(t.Context(), spec, s3store.WithClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Stat(t.Context(), "example.com/big/@v/v1.0.0.zip"); err == nil {
		t.Error("the zip of a timed-out invocation was stored")
	}
	if resp, body := get(t, fn.URL+"/example.com/lib/@v/v1.0.0.mod"); resp.StatusCode != 200 {
		t.Errorf("the next invocation = %d %q; want 200", resp.StatusCode, body)
	}
}
