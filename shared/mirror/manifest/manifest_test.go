package manifest

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/store/memstore"
)

func put(t *testing.T, st store.Store, key, data string) {
	t.Helper()
	if _, err := st.Put(context.Background(), key, strings.NewReader(data), int64(len(data)), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestBuildParseCheck(t *testing.T) {
	ctx := t.Context()
	st := memstore.New()
	put(t, st, "b/@v/v1.0.0.mod", "module b\n")
	put(t, st, "a-b/@v/list", "v1.0.0\n")
	put(t, st, "a/@v/v1.0.0.zip", "zip")
	put(t, st, Key, "an old manifest, not listed")
	m, err := Build(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	data := m.Marshal()
	// The first entry is sha256("v1.0.0\n"), its size and key.
	const first = "modmirror-manifest-v1\n86f0555bccd069ac54e4c54a19a0f1aed9d328e13aa34aa090f3f3d43aaad441 7 a-b/@v/list\n"
	if !strings.HasPrefix(string(data), first) || strings.Count(string(data), "\n") != 4 {
		t.Fatalf("manifest:\n%s", data)
	}
	keys := []string{"a-b/@v/list", "a/@v/v1.0.0.zip", "b/@v/v1.0.0.mod"}
	for i, e := range m.Entries {
		if e.Key != keys[i] {
			t.Errorf("entry %d is %s, want %s (byte-wise key order)", i, e.Key, keys[i])
		}
	}
	back, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Marshal(), data) {
		t.Errorf("parse and marshal changed the manifest")
	}
	if p, n, err := Check(ctx, st, back); err != nil || len(p) != 0 || n != 3 {
		t.Fatalf("check of an unchanged store: %v %d %v", p, n, err)
	}

	// A known entry is taken as it is if its size is right; otherwise the object is hashed.
	reused := &Manifest{Entries: append([]Entry(nil), m.Entries...)}
	reused.Entries[0].SHA256[0] ^= 1
	reused.Entries[2].SHA256[0] ^= 1
	reused.Entries[2].Size++
	again, err := Build(ctx, st, reused.Lookup)
	if err != nil {
		t.Fatal(err)
	}
	if again.Entries[0].SHA256 != reused.Entries[0].SHA256 {
		t.Errorf("Build hashed an object it knew")
	}
	if again.Entries[2] != m.Entries[2] {
		t.Errorf("Build took a known entry of the wrong size")
	}

	put(t, st, "a/@v/v1.0.0.zip", "ZIP")
	put(t, st, "c/@v/v1.0.0.mod", "module c\n")
	put(t, st, "a-b/@v/list", "v1.0.0\nv1.1.0\n")
	p, _, err := Check(ctx, st, back)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range p {
		got = append(got, x.String())
	}
	wantProblems := []string{
		"a-b/@v/list: 14 bytes, the manifest says 7",
		"a/@v/v1.0.0.zip: SHA-256 ",
		"c/@v/v1.0.0.mod: not in the manifest",
	}
	if len(got) != len(wantProblems) {
		t.Fatalf("problems %q", got)
	}
	for i := range got {
		if !strings.HasPrefix(got[i], wantProblems[i]) {
			t.Errorf("problem %q, want %q...", got[i], wantProblems[i])
		}
	}
}

func TestParseErrors(t *testing.T) {
	const sum = "0000000000000000000000000000000000000000000000000000000000000000"
	for _, tc := range []struct {
		name, data, want string
	}{
		{"header", "manifest\n", "first line"},
		{"fields", "modmirror-manifest-v1\n" + sum + " 1\n", "line 2"},
		{"hash", "modmirror-manifest-v1\nxyz 1 a/b\n", "malformed SHA-256"},
		{"size", "modmirror-manifest-v1\n" + sum + " -1 a/b\n", "malformed size"},
		{"order", "modmirror-manifest-v1\n" + sum + " 1 b\n" + sum + " 1 a\n", "out of order"},
		{"key", "modmirror-manifest-v1\n" + sum + " 1 a/../b\n", "invalid key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse([]byte(tc.data)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
