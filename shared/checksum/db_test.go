package checksum

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sync/errgroup"

	"github.com/modmirror/modmirror/shared/testkit"
)

const dbName = "sum.example.test"

// testSumDB is a checksum database (sumdb.TestServer behind sumdb.Server) for fixture modules,
// reached in-process through a Remote.
type testSumDB struct {
	skey, vkey string
	srv        *sumdb.TestServer
	handler    http.Handler
	mods       map[string]fixtureMod // by path@version

	calls   atomic.Int64
	down    atomic.Bool                    // Remote fails with a 502
	corrupt func(path string, data []byte) // if set, may alter what Remote returns
	block   chan struct{}                  // if set, Remote waits for it (or ctx)
}

func newTestSumDB(t testing.TB, mods []fixtureMod) *testSumDB {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, dbName)
	if err != nil {
		t.Fatal(err)
	}
	s := &testSumDB{skey: skey, vkey: vkey, mods: make(map[string]fixtureMod)}
	lines := make(map[string]string)
	for _, m := range mods {
		key := m.path + "@" + m.version
		s.mods[key] = m
		lines[key] = fmt.Sprintf("%s %s %s\n%s %s/go.mod %s\n",
			m.path, m.version, hashZipFile(t, m.zip(t)), m.path, m.version, HashMod(m.gomod()))
	}
	s.srv = sumdb.NewTestServer(skey, func(path, vers string) ([]byte, error) {
		l, ok := lines[path+"@"+vers]
		if !ok {
			return nil, os.ErrNotExist // the server answers 404
		}
		return []byte(l), nil
	})
	s.handler = sumdb.NewServer(s.srv)
	return s
}

// remote is a Remote that asks the database in-process, as the upstream would over HTTP.
func (s *testSumDB) remote(ctx context.Context, path string) ([]byte, error) {
	s.calls.Add(1)
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if s.down.Load() {
		return nil, fmt.Errorf("sumdb/%s/%s: 502 Bad Gateway", dbName, path)
	}
	req := httptest.NewRequestWithContext(ctx, "GET", "/"+path, nil)
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	switch rec.Code {
	case http.StatusOK:
		data := rec.Body.Bytes()
		if s.corrupt != nil {
			data = bytes.Clone(data)
			s.corrupt(path, data)
		}
		return data, nil
	case http.StatusNotFound, http.StatusGone:
		return nil, fmt.Errorf("sumdb/%s/%s: %d %s: %w", dbName, path, rec.Code, strings.TrimSpace(rec.Body.String()), fs.ErrNotExist)
	}
	return nil, fmt.Errorf("sumdb/%s/%s: %d %s", dbName, path, rec.Code, strings.TrimSpace(rec.Body.String()))
}

// logBuffer collects log output safely.
type logBuffer = testkit.Buffer

func newTestDB(t testing.TB, s *testSumDB, st *memStore, remote Remote, logs *logBuffer, nosumdb string) *DB {
	t.Helper()
	cfg := DBConfig{Name: dbName, Key: s.vkey, Store: st, NoSumDB: nosumdb}
	if remote != nil {
		cfg.Remote = remote
	}
	if logs != nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	d, err := NewDB(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestNewDB(t *testing.T) {
	_, vkey, err := note.GenerateKey(rand.Reader, dbName)
	if err != nil {
		t.Fatal(err)
	}
	st := newMemStore()
	tests := []struct {
		name    string
		cfg     DBConfig
		wantErr bool
	}{
		{"ok", DBConfig{Name: dbName, Key: vkey, Store: st}, false},
		{"name from key", DBConfig{Key: vkey + "\n", Store: st}, false},
		{"other name", DBConfig{Name: "sum.other.test", Key: vkey, Store: st}, true},
		{"bad key", DBConfig{Name: dbName, Key: "sum.example.test+1234+AAAA", Store: st}, true},
		{"no store", DBConfig{Name: dbName, Key: vkey}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NewDB(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NewDB: err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && d.Name() != dbName {
				t.Errorf("Name() = %q, want %q", d.Name(), dbName)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	s := newTestSumDB(t, fixtures)
	st := newMemStore()
	logs := new(logBuffer)
	d := newTestDB(t, s, st, s.remote, logs, "")
	ctx := context.Background()

	for _, m := range fixtures {
		t.Run(m.path, func(t *testing.T) {
			zipHash := hashZipFile(t, m.zip(t))
			modHash := HashMod(m.gomod())

			lines, err := d.Lookup(ctx, m.path, m.version)
			if err != nil {
				t.Fatal(err)
			}
			want := []Line{
				{Path: m.path, Version: m.version, Hash: zipHash},
				{Path: m.path, Version: m.version, GoMod: true, Hash: modHash},
			}
			if !slices.Equal(lines, want) {
				t.Errorf("Lookup = %v, want %v", lines, want)
			}

			if err := d.VerifyMod(ctx, m.path, m.version, m.gomod()); err != nil {
				t.Errorf("VerifyMod: %v", err)
			}
			if err := d.VerifyZipHash(ctx, m.path, m.version, zipHash); err != nil {
				t.Errorf("VerifyZipHash: %v", err)
			}

			// Wrong content: a mismatch, logged as a security event.
			bad := append(m.gomod(), "// tampered\n"...)
			err = d.VerifyMod(ctx, m.path, m.version, bad)
			checkMismatch(t, err, m, "go.mod", HashMod(bad), modHash)
			checkSecurityLog(t, logs, m, "go.mod", HashMod(bad))

			badZip := HashMod([]byte("not the zip"))
			err = d.VerifyZipHash(ctx, m.path, m.version, badZip)
			checkMismatch(t, err, m, "zip", badZip, zipHash)
			checkSecurityLog(t, logs, m, "zip", badZip)
		})
	}

	t.Run("not in database", func(t *testing.T) {
		for _, err := range []error{
			d.VerifyMod(ctx, "example.com/unknown", "v1.0.0", []byte("module example.com/unknown\n")),
			d.VerifyZipHash(ctx, "example.com/unknown", "v1.0.0", HashMod(nil)),
			func() error { _, err := d.Lookup(ctx, "example.com/unknown", "v1.0.0"); return err }(),
		} {
			if !errors.Is(err, ErrNotInDB) || !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrMismatch) {
				t.Errorf("err = %v, want ErrNotInDB (and fs.ErrNotExist), not ErrMismatch", err)
			}
		}
	})

	t.Run("invalid module", func(t *testing.T) {
		for _, mv := range [][2]string{{"example.com/a", "v1.0"}, {"Example..com", "v1.0.0"}, {"example.com/a", "latest"}} {
			err := d.VerifyMod(ctx, mv[0], mv[1], nil)
			if err == nil || errors.Is(err, ErrMismatch) {
				t.Errorf("VerifyMod(%s@%s) = %v, want a non-mismatch error", mv[0], mv[1], err)
			}
		}
	})

	t.Run("database down, then back", func(t *testing.T) {
		m := fixtureMod{path: "example.com/later", version: "v1.0.0", files: map[string]string{"go.mod": "module example.com/later\n"}}
		s2 := newTestSumDB(t, []fixtureMod{m})
		d2 := newTestDB(t, s2, newMemStore(), s2.remote, nil, "")
		s2.down.Store(true)
		err := d2.VerifyMod(ctx, m.path, m.version, m.gomod())
		if err == nil || errors.Is(err, ErrMismatch) || errors.Is(err, ErrNotInDB) {
			t.Fatalf("VerifyMod with the database down = %v, want an error that is neither mismatch nor not-in-db", err)
		}
		s2.down.Store(false)
		if err := d2.VerifyMod(ctx, m.path, m.version, m.gomod()); err != nil {
			t.Errorf("VerifyMod after the database came back: %v (was the failure cached?)", err)
		}
	})
}

func checkMismatch(t *testing.T, err error, m fixtureMod, file, got, want string) {
	t.Helper()
	if !errors.Is(err, ErrMismatch) {
		t.Fatalf("err = %v, want ErrMismatch", err)
	}
	var me *MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("err = %v, not a *MismatchError", err)
	}
	wantME := MismatchError{Path: m.path, Version: m.version, File: file, Got: got, Want: want,
		Source: "checksum database " + dbName}
	if *me != wantME {
		t.Errorf("MismatchError = %+v, want %+v", *me, wantME)
	}
}

func checkSecurityLog(t *testing.T, logs *logBuffer, m fixtureMod, file, got string) {
	t.Helper()
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"level":"ERROR"`) && strings.Contains(line, `"event":"security"`) &&
			strings.Contains(line, `"module":"`+m.path+`"`) && strings.Contains(line, `"version":"`+m.version+`"`) &&
			strings.Contains(line, `"file":"`+file+`"`) && strings.Contains(line, `"got":"`+got+`"`) {
			return
		}
	}
	t.Errorf("no security log line for %s@%s %s; log:\n%s", m.path, m.version, file, logs)
}

func TestNoSumDB(t *testing.T) {
	private := fixtureMod{path: "corp.example.com/secret", version: "v1.0.0", files: map[string]string{"go.mod": "module corp.example.com/secret\n"}}
	s := newTestSumDB(t, append([]fixtureMod{private}, fixtures[0]))
	d := newTestDB(t, s, newMemStore(), s.remote, nil, "corp.example.com,*.internal.example")
	ctx := context.Background()

	if err := d.VerifyMod(ctx, private.path, private.version, []byte("anything")); err != nil {
		t.Errorf("VerifyMod of a NoSumDB module: %v", err)
	}
	if err := d.VerifyZipHash(ctx, private.path, private.version, "h1:whatever"); err != nil {
		t.Errorf("VerifyZipHash of a NoSumDB module: %v", err)
	}
	if _, err := d.Lookup(ctx, private.path, private.version); !errors.Is(err, ErrNotInDB) {
		t.Errorf("Lookup of a NoSumDB module: %v, want ErrNotInDB", err)
	}
	if _, _, err := d.Fetch(ctx, "lookup/corp.example.com/secret@v1.0.0"); !errors.Is(err, ErrNotInDB) {
		t.Errorf("Fetch of a NoSumDB module's lookup: %v, want ErrNotInDB", err)
	}
	if n := s.calls.Load(); n != 0 {
		t.Errorf("the database was asked %d times about a NoSumDB module", n)
	}
	if err := d.VerifyMod(ctx, fixtures[0].path, fixtures[0].version, []byte("tampered")); !errors.Is(err, ErrMismatch) {
		t.Errorf("VerifyMod of a public module with NoSumDB set: %v, want a mismatch", err)
	}
}

func TestOffline(t *testing.T) {
	s := newTestSumDB(t, fixtures)
	st := newMemStore()
	online := newTestDB(t, s, st, s.remote, nil, "")
	ctx := context.Background()
	verified := fixtures[:3]
	for _, m := range verified {
		if err := online.VerifyMod(ctx, m.path, m.version, m.gomod()); err != nil {
			t.Fatal(err)
		}
	}

	// The state the go command's URL paths name, plus the tree head.
	want := []string{
		"_mirror/sumdb/" + dbName + "/latest",
		"sumdb/" + dbName + "/lookup/example.com/!upper!case/!mod@v1.2.3-pre.1",
		"sumdb/" + dbName + "/lookup/example.com/a@v1.0.0",
		"sumdb/" + dbName + "/lookup/example.com/old@v2.0.0+incompatible",
		"sumdb/" + dbName + "/supported",
		"sumdb/" + dbName + "/tile/8/0/000.p/1",
		"sumdb/" + dbName + "/tile/8/0/000.p/2",
		"sumdb/" + dbName + "/tile/8/0/000.p/3",
	}
	if got := st.keys(""); !slices.Equal(got, want) {
		t.Errorf("store keys:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	latest, _ := st.get("_mirror/sumdb/" + dbName + "/latest")
	if tree, err := online.openTree(latest); err != nil || tree.N != 3 {
		t.Errorf("stored latest: tree %+v, %v; want a verified tree of 3 records", tree, err)
	}

	offline := newTestDB(t, s, st, nil, nil, "")
	before := s.calls.Load()
	for _, m := range verified {
		if err := offline.VerifyMod(ctx, m.path, m.version, m.gomod()); err != nil {
			t.Errorf("offline VerifyMod %s: %v", m.path, err)
		}
		if err := offline.VerifyZipHash(ctx, m.path, m.version, hashZipFile(t, m.zip(t))); err != nil {
			t.Errorf("offline VerifyZipHash %s: %v", m.path, err)
		}
		if err := offline.VerifyMod(ctx, m.path, m.version, []byte("tampered")); !errors.Is(err, ErrMismatch) {
			t.Errorf("offline VerifyMod of tampered %s: %v, want a mismatch", m.path, err)
		}
	}
	m := fixtures[3] // never looked up
	err := offline.VerifyMod(ctx, m.path, m.version, m.gomod())
	if !errors.Is(err, ErrOffline) || errors.Is(err, ErrMismatch) || errors.Is(err, ErrNotInDB) {
		t.Errorf("offline VerifyMod of a module the store lacks: %v, want ErrOffline", err)
	}
	if n := s.calls.Load(); n != before {
		t.Errorf("the offline DB reached the database %d times", n-before)
	}
}

func TestFetch(t *testing.T) {
	s := newTestSumDB(t, fixtures)
	st := newMemStore()
	d := newTestDB(t, s, st, s.remote, nil, "")
	ctx := context.Background()
	pre := "sumdb/" + dbName + "/"

	fetch := func(path string, wantHit bool) []byte {
		t.Helper()
		data, hit, err := d.Fetch(ctx, path)
		if err != nil {
			t.Fatalf("Fetch(%q): %v", path, err)
		}
		if hit != wantHit {
			t.Errorf("Fetch(%q): hit = %v, want %v", path, hit, wantHit)
		}
		return data
	}

	if data := fetch("supported", true); len(data) != 0 {
		t.Errorf("supported = %q, want empty", data)
	}

	// Lookups: from the database, verified, stored, then served from the store.
	lookups := map[string][]byte{}
	for _, m := range fixtures[:3] {
		ep, _ := module.EscapePath(m.path)
		ev, _ := module.EscapeVersion(m.version)
		p := "lookup/" + ep + "@" + ev
		data := fetch(p, false)
		id, text, _, err := tlog.ParseRecord(data)
		if err != nil {
			t.Fatalf("Fetch(%q): %v\n%s", p, err, data)
		}
		if !strings.Contains(string(text), m.path+" "+m.version+"/go.mod "+HashMod(m.gomod())) {
			t.Errorf("record %d for %s lacks its go.mod line:\n%s", id, p, text)
		}
		stored, ok := st.get(pre + p)
		if !ok || !bytes.Equal(stored, data) {
			t.Errorf("Fetch(%q) did not store what it served", p)
		}
		if again := fetch(p, true); !bytes.Equal(again, data) {
			t.Errorf("Fetch(%q) from the store differs", p)
		}
		lookups[p] = data
	}

	// Tiles: the lookups' own verification stored the hash tiles.
	fetch("tile/8/0/000.p/3", true)
	// A data tile: from the database, authenticated against the tree head, stored.
	data := fetch("tile/8/data/000.p/3", false)
	if stored, ok := st.get(pre + "tile/8/data/000.p/3"); !ok || !bytes.Equal(stored, data) {
		t.Errorf("data tile not stored")
	}
	fetch("tile/8/data/000.p/3", true)
	// A narrower data tile than the tree's: authenticated, stored.
	fetch("tile/8/data/000.p/2", false)
	fetch("tile/8/data/000.p/2", true)

	// latest: from the database, a copy kept.
	latest := fetch("latest", false)
	if stored, ok := st.get("_mirror/sumdb/" + dbName + "/remote-latest"); !ok || !bytes.Equal(stored, latest) {
		t.Errorf("latest not kept")
	}
	// Stale on error.
	s.down.Store(true)
	if again := fetch("latest", true); !bytes.Equal(again, latest) {
		t.Errorf("stale latest = %q, want %q", again, latest)
	}
	s.down.Store(false)

	// A tile beyond the mirror's tree: served, not stored.
	if _, err := s.srv.Lookup(ctx, module.Version{Path: fixtures[3].path, Version: fixtures[3].version}); err != nil {
		t.Fatal(err)
	}
	fetch("tile/8/0/000.p/4", false)
	if _, ok := st.get(pre + "tile/8/0/000.p/4"); ok {
		t.Errorf("a tile the mirror could not authenticate was stored")
	}

	// Not in the database.
	if _, _, err := d.Fetch(ctx, "lookup/example.com/unknown@v1.0.0"); !errors.Is(err, ErrNotInDB) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Fetch of an unknown module: %v, want ErrNotInDB", err)
	}

	// Bad paths.
	for _, p := range []string{
		"", "../x", "x", "latest/", "supported/x", "lookup/", "lookup/NoEscape@v1", "lookup/example.com/a",
		"lookup/example.com/a@v1.0", "lookup/example.com/a@v1", "lookup/example.com/a@latest",
		"lookup/example.com/a@v1.0.0/../../x", "lookup/example.com/!a@v1.0.0!", "tile/x", "tile/8/0/x001",
		"tile/8/0/000.p/0", "tile/8/0/000.p/256", "tile/0/0/000", "tile/8/-1/000", "tile/8/0/000/",
		"tile/8/0/../000",
	} {
		data, _, err := d.Fetch(ctx, p)
		if !errors.Is(err, ErrBadPath) || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Fetch(%q) = %q, %v; want ErrBadPath", p, data, err)
		}
	}

	// Offline on the same store: what was stored is served, the rest is a miss.
	offline := newTestDB(t, s, st, nil, nil, "")
	for p, want := range lookups {
		data, hit, err := offline.Fetch(ctx, p)
		if err != nil || !hit || !bytes.Equal(data, want) {
			t.Errorf("offline Fetch(%q) = %v, %v; want the stored lookup", p, hit, err)
		}
	}
	for _, p := range []string{"supported", "tile/8/0/000.p/3", "tile/8/data/000.p/3", "latest"} {
		if _, hit, err := offline.Fetch(ctx, p); err != nil || !hit {
			t.Errorf("offline Fetch(%q): hit %v, %v", p, hit, err)
		}
	}
	for _, p := range []string{"lookup/example.com/m/v3@v3.1.0", "tile/8/0/000.p/4", "tile/8/1/000"} {
		if _, _, err := offline.Fetch(ctx, p); !errors.Is(err, ErrOffline) || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("offline Fetch(%q) = %v, want ErrOffline and fs.ErrNotExist", p, err)
		}
	}
	offline2 := newTestDB(t, s, newMemStore(), nil, nil, "")
	if _, _, err := offline2.Fetch(ctx, "latest"); !errors.Is(err, ErrOffline) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("offline Fetch(latest) on an empty store = %v, want ErrOffline", err)
	}
}

// TestFetchAuthenticates checks that tiles are stored only when they match the mirror's tree.
func TestFetchAuthenticates(t *testing.T) {
	s := newTestSumDB(t, fixtures)
	ctx := context.Background()
	// The database logs four records before the mirror looks anything up, so the mirror's first
	// tree has five records and it stores tile 000.p/5 only.
	for _, m := range fixtures[1:] {
		if _, err := s.srv.Lookup(ctx, module.Version{Path: m.path, Version: m.version}); err != nil {
			t.Fatal(err)
		}
	}
	st := newMemStore()
	d := newTestDB(t, s, st, s.remote, nil, "")
	if err := d.VerifyMod(ctx, fixtures[0].path, fixtures[0].version, fixtures[0].gomod()); err != nil {
		t.Fatal(err)
	}
	pre := "sumdb/" + dbName + "/"
	if got := st.keys(pre + "tile/"); !slices.Equal(got, []string{pre + "tile/8/0/000.p/5"}) {
		t.Fatalf("tiles stored: %v", got)
	}

	// A corrupted narrower hash tile and data tile: refused, not stored.
	s.corrupt = func(path string, data []byte) {
		switch {
		case strings.HasPrefix(path, "tile/8/data/"):
			data[bytes.Index(data, []byte(" h1:"))+5] ^= 1 // a hash in a record
		case strings.HasPrefix(path, "tile/"):
			data[len(data)-2] ^= 1
		}
	}
	for _, p := range []string{"tile/8/0/000.p/3", "tile/8/data/000.p/3"} {
		if _, _, err := d.Fetch(ctx, p); err == nil || !strings.Contains(err.Error(), "contradicts") {
			t.Errorf("Fetch(%q) of a corrupted tile: %v, want an error", p, err)
		}
		if _, ok := st.get(pre + p); ok {
			t.Errorf("corrupted %s stored", p)
		}
	}
	s.corrupt = nil

	// Uncorrupted: authenticated and stored.
	for _, p := range []string{"tile/8/0/000.p/3", "tile/8/data/000.p/3", "tile/8/data/000.p/5"} {
		if _, hit, err := d.Fetch(ctx, p); err != nil || hit {
			t.Errorf("Fetch(%q): hit %v, %v", p, hit, err)
		}
		if _, ok := st.get(pre + p); !ok {
			t.Errorf("%s not stored", p)
		}
	}
}

// TestOtherKey checks that a database signed by another key is refused.
func TestOtherKey(t *testing.T) {
	s := newTestSumDB(t, fixtures)
	impostor := newTestSumDB(t, fixtures) // same name, another key
	st := newMemStore()
	logs := new(logBuffer)
	d := newTestDB(t, s, st, impostor.remote, logs, "")
	ctx := context.Background()
	m := fixtures[0]
	err := d.VerifyMod(ctx, m.path, m.version, m.gomod())
	if err == nil || errors.Is(err, ErrMismatch) || errors.Is(err, ErrNotInDB) {
		t.Errorf("VerifyMod through an impostor = %v, want an error", err)
	}
	if _, _, err := d.Fetch(ctx, "lookup/example.com/a@v1.0.0"); err == nil {
		t.Errorf("Fetch of a lookup from an impostor succeeded")
	}
	if _, _, err := d.Fetch(ctx, "latest"); err == nil {
		t.Errorf("Fetch of latest from an impostor succeeded")
	}
	if keys := st.keys(""); len(keys) != 0 {
		t.Errorf("stored from an impostor: %v", keys)
	}

	// A tree head signed by another key in the store is refused too.
	good := newTestDB(t, impostor, st, impostor.remote, nil, "")
	if err := good.VerifyMod(ctx, m.path, m.version, m.gomod()); err != nil {
		t.Fatal(err)
	}
	d2 := newTestDB(t, s, st, s.remote, nil, "")
	if err := d2.VerifyMod(ctx, m.path, m.version, m.gomod()); err == nil {
		t.Errorf("VerifyMod with a tree head of another key in the store succeeded")
	}
}

// TestFork checks that a database that rewrites its history is caught as a security event.
func TestFork(t *testing.T) {
	ctx := context.Background()
	s := newTestSumDB(t, fixtures)
	st := newMemStore()
	logs := new(logBuffer)
	d := newTestDB(t, s, st, s.remote, logs, "")
	for _, m := range fixtures[:2] {
		if err := d.VerifyMod(ctx, m.path, m.version, m.gomod()); err != nil {
			t.Fatal(err)
		}
	}
	// Another log with the same key, holding the modules in another order.
	fork := &testSumDB{skey: s.skey, vkey: s.vkey, mods: s.mods}
	fork.srv = sumdb.NewTestServer(s.skey, func(path, vers string) ([]byte, error) {
		m := s.mods[path+"@"+vers]
		return fmt.Appendf(nil, "%s %s %s\n%s %s/go.mod %s\n", m.path, m.version, hashZipFile(t, m.zip(t)),
			m.path, m.version, HashMod(m.gomod())), nil
	})
	fork.handler = sumdb.NewServer(fork.srv)
	for _, m := range []fixtureMod{fixtures[1], fixtures[0], fixtures[2]} {
		if _, err := fork.srv.Lookup(ctx, module.Version{Path: m.path, Version: m.version}); err != nil {
			t.Fatal(err)
		}
	}
	d2 := newTestDB(t, fork, st, fork.remote, logs, "")
	m := fixtures[2]
	err := d2.VerifyMod(ctx, m.path, m.version, m.gomod())
	if err == nil || errors.Is(err, ErrMismatch) {
		t.Errorf("VerifyMod against a forked database = %v, want an error", err)
	}
	if !strings.Contains(logs.String(), `"event":"security"`) {
		t.Errorf("no security event logged for the fork:\n%s", logs)
	}
}

func TestConcurrentVerify(t *testing.T) {
	var mods []fixtureMod
	for i := range 20 {
		p := fmt.Sprintf("example.com/m%02d", i)
		mods = append(mods, fixtureMod{path: p, version: "v1.0.0", files: map[string]string{
			"go.mod": "module " + p + "\n", "x.go": "package x\n",
		}})
	}
	s := newTestSumDB(t, mods)
	st := newMemStore()
	// Two instances share the store, as two edge functions share the bucket.
	dbs := []*DB{newTestDB(t, s, st, s.remote, nil, ""), newTestDB(t, s, st, s.remote, nil, "")}
	zipHashes := make([]string, len(mods))
	for i, m := range mods {
		zipHashes[i] = hashZipFile(t, m.zip(t))
	}
	ctx := context.Background()
	var g errgroup.Group
	for round := range 2 {
		for i, m := range mods {
			d := dbs[(i+round)%2]
			g.Go(func() error {
				if err := d.VerifyMod(ctx, m.path, m.version, m.gomod()); err != nil {
					return err
				}
				return d.VerifyZipHash(ctx, m.path, m.version, zipHashes[i])
			})
			g.Go(func() error {
				if err := d.VerifyMod(ctx, m.path, m.version, []byte("tampered")); !errors.Is(err, ErrMismatch) {
					return fmt.Errorf("tampered %s: %v, want a mismatch", m.path, err)
				}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	latest, _ := st.get("_mirror/sumdb/" + dbName + "/latest")
	if tree, err := dbs[0].openTree(latest); err != nil || tree.N != int64(len(mods)) {
		t.Errorf("stored latest: %+v, %v; want the tree of %d records", tree, err, len(mods))
	}
	if n := len(st.keys("sumdb/" + dbName + "/lookup/")); n != len(mods) {
		t.Errorf("%d lookups stored, want %d", n, len(mods))
	}
	// All verifiable offline.
	offline := newTestDB(t, s, st, nil, nil, "")
	for _, m := range mods {
		if err := offline.VerifyMod(ctx, m.path, m.version, m.gomod()); err != nil {
			t.Errorf("offline %s: %v", m.path, err)
		}
	}
}

// TestCancel checks that a caller whose context ends stops waiting, and that the shared lookup
// finishes for the others.
func TestCancel(t *testing.T) {
	s := newTestSumDB(t, fixtures)
	s.block = make(chan struct{})
	d := newTestDB(t, s, newMemStore(), s.remote, nil, "")
	m := fixtures[0]

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := d.VerifyMod(ctx, m.path, m.version, m.gomod())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("VerifyMod with an expiring context = %v, want DeadlineExceeded", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("VerifyMod took %v to notice its context ended", time.Since(start))
	}

	done := make(chan error, 1)
	go func() { done <- d.VerifyMod(context.Background(), m.path, m.version, m.gomod()) }()
	close(s.block)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("VerifyMod after unblocking: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("VerifyMod hangs")
	}

	// Close cancels what is in flight.
	s2 := newTestSumDB(t, fixtures)
	s2.block = make(chan struct{})
	d2 := newTestDB(t, s2, newMemStore(), s2.remote, nil, "")
	go func() { time.Sleep(20 * time.Millisecond); d2.Close() }()
	if err := d2.VerifyMod(context.Background(), m.path, m.version, m.gomod()); err == nil {
		t.Errorf("VerifyMod on a closed DB succeeded")
	}
}

// TestWriteConfigCAS checks the compare-and-swap of the tree head.
func TestWriteConfigCAS(t *testing.T) {
	s := newTestSumDB(t, fixtures)
	st := newMemStore()
	d := newTestDB(t, s, st, s.remote, nil, "")
	ops := &clientOps{d: d, g: new(generation)}
	file := dbName + "/latest"

	if data, err := ops.ReadConfig(file); err != nil || len(data) != 0 {
		t.Fatalf("ReadConfig on an empty store = %q, %v; want empty", data, err)
	}
	if err := ops.WriteConfig(file, nil, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := ops.WriteConfig(file, nil, []byte("two")); err != sumdb.ErrWriteConflict {
		t.Errorf("WriteConfig with a stale empty old = %v, want ErrWriteConflict", err)
	}
	if err := ops.WriteConfig(file, []byte("zero"), []byte("two")); err != sumdb.ErrWriteConflict {
		t.Errorf("WriteConfig with a wrong old = %v, want ErrWriteConflict", err)
	}
	if err := ops.WriteConfig(file, []byte("one"), []byte("two")); err != nil {
		t.Fatal(err)
	}
	if data, err := ops.ReadConfig(file); err != nil || string(data) != "two" {
		t.Errorf("ReadConfig = %q, %v; want two", data, err)
	}
	if data, _ := st.get("_mirror/sumdb/" + dbName + "/latest"); string(data) != "two" {
		t.Errorf("stored %q", data)
	}
	if err := ops.WriteConfig("key", nil, []byte("x")); err == nil {
		t.Errorf("WriteConfig(key) succeeded")
	}
	if data, err := ops.ReadConfig("key"); err != nil || string(data) != s.vkey {
		t.Errorf("ReadConfig(key) = %q, %v", data, err)
	}
}

// upstreamError stands for an upstream client's error type that does not wrap fs.ErrNotExist.
type upstreamError struct{ status int }

func (e *upstreamError) Error() string { return fmt.Sprintf("upstream answered %d", e.status) }

// TestNotFoundFunc checks DBConfig.NotFound.
func TestNotFoundFunc(t *testing.T) {
	s := newTestSumDB(t, fixtures)
	remote := func(ctx context.Context, path string) ([]byte, error) {
		if path == "tile/8/0/007" {
			return nil, &upstreamError{410}
		}
		data, err := s.remote(ctx, path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &upstreamError{404}
		}
		return data, err
	}
	d, err := NewDB(DBConfig{Key: s.vkey, Store: newMemStore(), Remote: remote, NotFound: func(err error) bool {
		var ue *upstreamError
		return errors.As(err, &ue) && (ue.status == 404 || ue.status == 410)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	if err := d.VerifyMod(ctx, "example.com/unknown", "v1.0.0", nil); !errors.Is(err, ErrNotInDB) {
		t.Errorf("VerifyMod of an unknown module: %v, want ErrNotInDB", err)
	}
	var ue *upstreamError
	if _, _, err := d.Fetch(ctx, "tile/8/0/007"); !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &ue) {
		t.Errorf("Fetch of a tile the upstream lacks: %v, want fs.ErrNotExist wrapping the upstream's error", err)
	}
	if err := d.VerifyMod(ctx, fixtures[0].path, fixtures[0].version, fixtures[0].gomod()); err != nil {
		t.Errorf("VerifyMod: %v", err)
	}
}
