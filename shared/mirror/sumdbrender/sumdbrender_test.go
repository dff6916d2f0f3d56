package sumdbrender

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/store/memstore"
)

// testLog is a transparent log in memory, signed with its own key.
type testLog struct {
	signer   note.Signer
	verifier note.Verifier
	records  [][]byte
	hashes   []tlog.Hash
}

func newLog(t *testing.T, name string, n int, salt string) *testLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	l := &testLog{}
	if l.signer, err = note.NewSigner(skey); err != nil {
		t.Fatal(err)
	}
	if l.verifier, err = note.NewVerifier(vkey); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		text := fmt.Appendf(nil, "example.com/m%03d v1.0.0 h1:%s%d=\nexample.com/m%03d v1.0.0/go.mod h1:x=\n", i, salt, i, i)
		hs, err := tlog.StoredHashes(int64(i), text, l)
		if err != nil {
			t.Fatal(err)
		}
		l.records = append(l.records, text)
		l.hashes = append(l.hashes, hs...)
	}
	return l
}

func (l *testLog) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x >= int64(len(l.hashes)) {
			return nil, fmt.Errorf("no hash %d", x)
		}
		out[i] = l.hashes[x]
	}
	return out, nil
}

// signed returns the signed tree head of the first n records.
func (l *testLog) signed(t *testing.T, n int64) []byte {
	t.Helper()
	h, err := tlog.TreeHash(n, l)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := note.Sign(&note.Note{Text: string(tlog.FormatTree(tlog.Tree{N: n, Hash: h}))}, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// lookup returns record id's lookup answer under the tree head of size n.
func (l *testLog) lookup(t *testing.T, id int, n int64) Record {
	t.Helper()
	msg, err := tlog.FormatRecord(int64(id), l.records[id])
	if err != nil {
		t.Fatal(err)
	}
	return Record{Path: fmt.Sprintf("example.com/m%03d", id), Version: "v1.0.0", Data: append(msg, l.signed(t, n)...)}
}

// tiles serves the log's tiles, counting the requests.
func (l *testLog) tiles(count *atomic.Int64) TileSource {
	return func(ctx context.Context, path string) ([]byte, error) {
		count.Add(1)
		t, err := tlog.ParseTilePath(path)
		if err != nil {
			return nil, err
		}
		return tlog.ReadTileData(t, l)
	}
}

// countingStore counts Puts.
type countingStore struct {
	*memstore.Store
	puts atomic.Int64
}

func (c *countingStore) Put(ctx context.Context, key string, r io.Reader, size int64, o store.PutOptions) (store.Info, error) {
	c.puts.Add(1)
	return c.Store.Put(ctx, key, r, size, o)
}

func TestRender(t *testing.T) {
	ctx := t.Context()
	l := newLog(t, "db.test", 300, "a")
	mirror := &countingStore{Store: memstore.New()}
	var fetched atomic.Int64
	c := Config{Name: "db.test", Verifier: l.verifier, Mirror: mirror, Sources: []TileSource{l.tiles(&fetched)}}
	// Lookups fetched while the log grew, each under another tree head.
	records := []Record{l.lookup(t, 5, 10), l.lookup(t, 100, 150), l.lookup(t, 255, 256), l.lookup(t, 299, 300)}
	latest := l.signed(t, 300)

	n, err := Render(ctx, c, latest, l.signed(t, 120), records)
	if err != nil {
		t.Fatal(err)
	}
	if n != 300 {
		t.Errorf("tree size %d, want 300", n)
	}
	for _, r := range records {
		key, _ := LookupKey("db.test", r.Path, r.Version)
		data, _, err := store.ReadAll(ctx, mirror, key, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, tree, err := tlog.ParseRecord(data); err != nil || !bytes.Equal(tree, latest) {
			t.Errorf("%s is not under the latest tree head (%v)", key, err)
		}
	}
	for _, key := range []string{"sumdb/db.test/supported", LatestKey("db.test"), "sumdb/db.test/tile/8/0/000", "sumdb/db.test/tile/8/0/001.p/44", "sumdb/db.test/tile/8/1/000.p/1"} {
		if _, err := mirror.Stat(ctx, key); err != nil {
			t.Errorf("missing %s", key)
		}
	}

	// The mirror now proves everything by itself, and a second render writes nothing.
	puts := mirror.puts.Load()
	c.Sources = nil
	if _, err := Render(ctx, c, latest, latest, records); err != nil {
		t.Fatalf("render from the mirror alone: %v", err)
	}
	if p := mirror.puts.Load() - puts; p != 0 {
		t.Errorf("a second render wrote %d objects", p)
	}
}

func TestRenderRefuses(t *testing.T) {
	l := newLog(t, "db.test", 300, "a")
	fork := newLog(t, "db.test", 300, "b")
	fork.signer, fork.verifier = l.signer, l.verifier // the same key signing another history
	other := newLog(t, "db.test", 300, "a")           // another key
	for _, tc := range []struct {
		name    string
		latest  []byte
		prev    []byte
		records []Record
		want    string
	}{
		{"record past the tree", l.signed(t, 100), nil, []Record{l.lookup(t, 150, 200)}, "not in the tree of size 100"},
		{"tree does not extend the mirror's", l.signed(t, 300), fork.signed(t, 200), []Record{l.lookup(t, 1, 10)}, "SECURITY ERROR: the tree of size 300 does not extend the mirror's of size 200"},
		{"older than the mirror's", l.signed(t, 100), l.signed(t, 200), nil, "older than the mirror's"},
		{"unsigned by the key", other.signed(t, 300), nil, nil, "no verifiable signatures"},
		{"record not in the log", l.signed(t, 300), nil, []Record{fork.lookup(t, 7, 300)}, "does not match the tree"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fetched atomic.Int64
			c := Config{Name: "db.test", Verifier: l.verifier, Mirror: memstore.New(), Sources: []TileSource{l.tiles(&fetched)}}
			_, err := Render(t.Context(), c, tc.latest, tc.prev, tc.records)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
