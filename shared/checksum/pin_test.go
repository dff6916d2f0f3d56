package checksum

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/modmirror/modmirror/shared/store"
)

// newGrowingSumDB is a checksum database of n synthetic modules m0..m<n-1>, each logged on its
// first lookup, as a real database logs new versions while a mirror fills.
func newGrowingSumDB(t *testing.T, n int) *testSumDB {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, dbName)
	if err != nil {
		t.Fatal(err)
	}
	s := &testSumDB{skey: skey, vkey: vkey}
	s.srv = sumdb.NewTestServer(skey, func(path, vers string) ([]byte, error) {
		var i int
		if _, err := fmt.Sscanf(path, "example.com/m%d", &i); err != nil || i >= n || vers != "v1.0.0" {
			return nil, os.ErrNotExist
		}
		zip, mod := sha256.Sum256([]byte(path)), sha256.Sum256([]byte(path+"/go.mod"))
		return fmt.Appendf(nil, "%s %s h1:%s\n%s %s/go.mod h1:%s\n", path, vers, base64.StdEncoding.EncodeToString(zip[:]),
			path, vers, base64.StdEncoding.EncodeToString(mod[:])), nil
	})
	s.handler = sumdb.NewServer(s.srv)
	return s
}

// logged makes the database log modules first..last-1, as other clients' lookups would.
func (s *testSumDB) logged(t *testing.T, first, last int) {
	t.Helper()
	for i := first; i < last; i++ {
		if _, err := s.remote(t.Context(), fmt.Sprintf("lookup/example.com/m%d@v1.0.0", i)); err != nil {
			t.Fatal(err)
		}
	}
}

// staticOps is what the go command does with a store served as plain files: a fresh client,
// with no tree head of its own, reading lookups and tiles from the store's keys alone.
type staticOps struct {
	st     store.Store
	vkey   string
	latest []byte
}

func (o *staticOps) ReadRemote(path string) ([]byte, error) {
	data, _, err := store.ReadAll(context.Background(), o.st, "sumdb/"+dbName+path, maxObject)
	return data, err
}

func (o *staticOps) ReadConfig(file string) ([]byte, error) {
	if file == "key" {
		return []byte(o.vkey), nil
	}
	return o.latest, nil
}

func (o *staticOps) WriteConfig(file string, old, new []byte) error {
	if !bytes.Equal(old, o.latest) {
		return sumdb.ErrWriteConflict
	}
	o.latest = new
	return nil
}

func (o *staticOps) ReadCache(string) ([]byte, error) { return nil, os.ErrNotExist }
func (o *staticOps) WriteCache(string, []byte)        {}
func (o *staticOps) Log(string)                       {}
func (o *staticOps) SecurityError(msg string)         { panic(msg) }

// TestLookupsShareOneTreeHead checks that the lookups a DB stores are pinned to the tree head it
// keeps while that head holds their records, move on only for a record logged after it, and
// that a fresh go command reading the store alone verifies them in any order.
func TestLookupsShareOneTreeHead(t *testing.T) {
	s := newGrowingSumDB(t, 1000)
	st := newMemStore()
	d := newTestDB(t, s, st, s.remote, nil, "")
	ctx := t.Context()
	lookup := func(i int) {
		t.Helper()
		if _, err := d.Lookup(ctx, fmt.Sprintf("example.com/m%d", i), "v1.0.0"); err != nil {
			t.Fatal(err)
		}
	}
	head := func() []byte {
		data, _, err := store.ReadAll(ctx, st, d.latestKey, maxObject)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	signedUnder := func(i int) []byte {
		data, _, err := store.ReadAll(ctx, st, fmt.Sprintf("sumdb/%s/lookup/example.com/m%d@v1.0.0", dbName, i), maxObject)
		if err != nil {
			t.Fatal(err)
		}
		_, _, signed, err := tlog.ParseRecord(data)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}

	s.logged(t, 0, 300)
	lookup(5)
	first := head()
	s.logged(t, 300, 600) // the database signs newer heads; m10 is in the first already
	lookup(10)
	if !bytes.Equal(signedUnder(10), first) || !bytes.Equal(head(), first) {
		t.Errorf("m10's lookup is under a head of its own; want it pinned to the stored head of 300 records")
	}
	s.logged(t, 600, 700)
	lookup(650) // logged after the stored head: the head moves on
	if tree, err := d.openTree(head()); err != nil || tree.N != 700 {
		t.Errorf("stored head after a newer record: %+v, %v; want the tree of 700", tree, err)
	}
	if !bytes.Equal(signedUnder(650), head()) || !bytes.Equal(signedUnder(5), first) {
		t.Error("lookups are not under the heads they were stored with")
	}
	if _, _, err := store.ReadAll(ctx, st, "sumdb/"+dbName+"/supported", 1); err != nil {
		t.Errorf("sumdb/%s/supported not stored: %v", dbName, err)
	}

	for _, order := range [][]int{{5, 10, 650}, {650, 5, 10}, {10, 650, 5}} {
		c := sumdb.NewClient(&staticOps{st: st, vkey: s.vkey, latest: []byte{}})
		for _, i := range order {
			lines, err := c.Lookup(fmt.Sprintf("example.com/m%d", i), "v1.0.0")
			if err != nil || len(lines) == 0 || !strings.Contains(lines[0], fmt.Sprintf("m%d ", i)) {
				t.Errorf("order %v: a fresh client reading the store alone: lookup m%d = %q, %v", order, i, lines, err)
			}
		}
	}
}

func TestPinLookupLeavesWhatItCannotPin(t *testing.T) {
	s := newGrowingSumDB(t, 10)
	st := newMemStore()
	d := newTestDB(t, s, st, s.remote, nil, "")
	s.logged(t, 0, 3)
	answer, err := s.remote(t.Context(), "lookup/example.com/m1@v1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	// No stored head yet, a malformed answer: returned as they came.
	for _, data := range [][]byte{answer, []byte("not a record")} {
		if got := d.pinLookup(t.Context(), data); !bytes.Equal(got, data) {
			t.Errorf("pinLookup(%q) = %q; want it unchanged", data, got)
		}
	}
	if _, err := d.Lookup(t.Context(), "example.com/m1", "v1.0.0"); err != nil {
		t.Fatal(err)
	}
	s.logged(t, 3, 5)
	newer, err := s.remote(t.Context(), "lookup/example.com/m4@v1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if got := d.pinLookup(t.Context(), newer); !bytes.Equal(got, newer) {
		t.Error("a record newer than the stored head was pinned to it")
	}
	older, err := s.remote(t.Context(), "lookup/example.com/m0@v1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	got := d.pinLookup(t.Context(), older)
	id, text, signed, err := tlog.ParseRecord(got)
	wantID, wantText, _, _ := tlog.ParseRecord(older)
	head, _, _ := store.ReadAll(t.Context(), st, d.latestKey, maxObject)
	if err != nil || id != wantID || !bytes.Equal(text, wantText) || !bytes.Equal(signed, head) {
		t.Errorf("pinned lookup = %q, %v; want record %d under the stored head", got, err, wantID)
	}
}
