package storeurl_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/store/dirstore"
	"github.com/modmirror/modmirror/shared/store/s3store"
	"github.com/modmirror/modmirror/shared/store/s3store/s3test"
	"github.com/modmirror/modmirror/shared/store/storeurl"
)

func TestOpen(t *testing.T) {
	srv := s3test.Start(t)
	srv.Setenv(t)
	bucket := srv.NewBucket(t)
	dir := t.TempDir()
	tests := []struct {
		spec string
		want string // the store's type, or "" for an error
	}{
		{dir, "dir"},
		{filepath.Join(dir, "sub"), "dir"},
		{"file://" + dir, "dir"},
		{"s3://" + bucket + "/mirror", "s3"},
		{"s3://" + bucket, "s3"},
		{"", ""},
		{"file://relative", ""},
		{"gs://bucket/x", ""},
		{"s3://", ""},
	}
	for _, tt := range tests {
		st, err := storeurl.Open(t.Context(), tt.spec)
		got := ""
		switch st.(type) {
		case *dirstore.Store:
			got = "dir"
		case *s3store.Store:
			got = "s3"
		}
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("Open(%q) = %T, %v; want %q", tt.spec, st, err, tt.want)
			continue
		}
		if st == nil {
			continue
		}
		// Every store opened works: a round trip of a key with '+'.
		const key = "example.com/incompat/@v/v2.0.0+incompatible.mod"
		if _, err := st.Put(t.Context(), key, strings.NewReader("module x\n"), 9, store.PutOptions{}); err != nil {
			t.Errorf("Open(%q): Put: %v", tt.spec, err)
			continue
		}
		if data, _, err := store.ReadAll(t.Context(), st, key, 100); err != nil || string(data) != "module x\n" {
			t.Errorf("Open(%q): read back %q, %v", tt.spec, data, err)
		}
	}
}
