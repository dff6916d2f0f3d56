package checksum

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sync/singleflight"

	"github.com/modmirror/modmirror/shared/store"
)

const (
	// DefaultRemoteTimeout bounds one call of Remote when DBConfig.RemoteTimeout is zero.
	DefaultRemoteTimeout = 60 * time.Second

	// maxObject bounds what is read back from the store: a lookup is a few hundred bytes, a hash
	// tile 8 KiB, a data tile a few hundred KiB.
	maxObject = 4 << 20

	// generationLookups is how many lookups one sumdb.Client serves before it is replaced. The
	// client caches every record and tile it has read (and every error) for its lifetime; a
	// fresh client re-reads its state from the store, so replacing it bounds memory and forgets
	// transient errors.
	generationLookups = 1024
)

// Remote reads a path under the checksum database's root ("lookup/M@V", "tile/8/0/001",
// "latest"), through the upstream proxy's /sumdb/<name>/ endpoint or the database's own URL.
// An error that means the database has no such path (HTTP 404 or 410) should wrap
// fs.ErrNotExist, or DBConfig.NotFound must recognise it.
type Remote func(ctx context.Context, path string) ([]byte, error)

// DBConfig configures a DB.
type DBConfig struct {
	// Name and Key: the database's name and its verifier key ("name+hash+base64"). Name may be
	// empty: it is then the key's name. A Name that differs from the key's is an error.
	Name, Key string
	Store     store.Store
	Remote    Remote // nil when offline: only what the store holds is read
	Logger    *slog.Logger
	// NoSumDB lists module path patterns (GONOSUMDB syntax) that skip the database.
	NoSumDB string

	// RemoteTimeout bounds each call of Remote made on behalf of the sumdb client, whose
	// operations carry no context. Default DefaultRemoteTimeout.
	RemoteTimeout time.Duration
	// NotFound reports whether an error from Remote means that the database has no such path.
	// Default: errors.Is(err, fs.ErrNotExist).
	NotFound func(error) bool
}

// DB verifies hashes against one checksum database through golang.org/x/mod/sumdb. The signed tree
// head is kept at _mirror/sumdb/<name>/latest (updated with compare-and-swap), tiles and lookups
// at sumdb/<name>/tile/... and sumdb/<name>/lookup/..., exactly the keys the go command requests.
//
// A DB is safe for concurrent use. Lookups of one module version are shared between concurrent
// callers; a caller whose context ends stops waiting, while the shared lookup runs on, each of its
// calls of Remote bounded by DBConfig.RemoteTimeout, until it finishes or Close is called.
type DB struct {
	name     string
	vkey     string
	verifier note.Verifier
	st       store.Store
	remote   Remote
	log      *slog.Logger
	nosumdb  string
	timeout  time.Duration
	notFound func(error) bool

	prefix          string // "sumdb/<name>/"
	latestKey       string // the client's signed tree head
	remoteLatestKey string // the last "latest" Fetch read from Remote

	base    context.Context // for the sumdb client's operations; canceled by Close
	cancel  context.CancelFunc
	lookups singleflight.Group

	mu  sync.Mutex
	cur *generation

	// supportedStored: sumdb/<name>/supported is in the store.
	supportedStored atomic.Bool
	// head is the last signed tree head openHead verified: the store's head changes rarely, and
	// every lookup and tile fetched reads it.
	head atomic.Pointer[verifiedHead]
}

// verifiedHead is a signed tree head whose signature was checked, and its tree.
type verifiedHead struct {
	msg  []byte
	tree tlog.Tree
}

// generation is one sumdb.Client and what its operations observed.
type generation struct {
	client  *sumdb.Client
	lookups atomic.Int64
	missing sync.Map // remote lookup path ("/lookup/M@V") -> true: the database said not found
	// offlineMiss: without Remote, the client needed something the store lacks.
	offlineMiss atomic.Bool
}

// NewDB returns a DB; it does no I/O.
func NewDB(c DBConfig) (*DB, error) {
	if c.Store == nil {
		return nil, errors.New("checksum database: no store")
	}
	vkey := strings.TrimSpace(c.Key)
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("checksum database %s: verifier key: %w", c.Name, err)
	}
	name := c.Name
	if name == "" {
		name = verifier.Name()
	}
	if name != verifier.Name() {
		return nil, fmt.Errorf("checksum database %s: the verifier key is for %s", name, verifier.Name())
	}
	if err := store.CheckKey("sumdb/" + name + "/latest"); err != nil {
		return nil, fmt.Errorf("checksum database %q: name unusable in store keys: %w", name, err)
	}
	d := &DB{
		name:            name,
		vkey:            vkey,
		verifier:        verifier,
		st:              c.Store,
		remote:          c.Remote,
		log:             c.Logger,
		nosumdb:         c.NoSumDB,
		timeout:         c.RemoteTimeout,
		notFound:        c.NotFound,
		prefix:          "sumdb/" + name + "/",
		latestKey:       "_mirror/sumdb/" + name + "/latest",
		remoteLatestKey: "_mirror/sumdb/" + name + "/remote-latest",
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.timeout <= 0 {
		d.timeout = DefaultRemoteTimeout
	}
	if d.notFound == nil {
		d.notFound = func(err error) bool { return errors.Is(err, fs.ErrNotExist) }
	}
	d.base, d.cancel = context.WithCancel(context.Background())
	return d, nil
}

// Name returns the database's name.
func (d *DB) Name() string { return d.name }

// Close cancels the calls of Remote that lookups still have in flight. The DB must not be used
// afterwards.
func (d *DB) Close() error {
	d.cancel()
	return nil
}

// skip reports whether path matches NoSumDB.
func (d *DB) skip(path string) bool {
	return d.nosumdb != "" && module.MatchPrefixPatterns(d.nosumdb, path)
}

// checkModVer checks a module path and a canonical version, as the checksum database holds them.
func checkModVer(path, version string) error {
	if err := module.Check(path, version); err != nil {
		return err
	}
	if v := module.CanonicalVersion(version); v != version {
		return fmt.Errorf("version %q is not canonical (should be %q)", version, v)
	}
	return nil
}

// Lookup returns the database's go.sum lines for path@version (the zip hash and the go.mod hash).
// A module version the database does not know, or one that matches NoSumDB, is an error wrapping
// ErrNotInDB.
func (d *DB) Lookup(ctx context.Context, path, version string) ([]Line, error) {
	if err := checkModVer(path, version); err != nil {
		return nil, fmt.Errorf("look up %s@%s in checksum database %s: %w", path, version, d.name, err)
	}
	if d.skip(path) {
		return nil, fmt.Errorf("look up %s@%s in checksum database %s: %w (the path matches NoSumDB %q)",
			path, version, d.name, ErrNotInDB, d.nosumdb)
	}
	if err := context.Cause(ctx); err != nil {
		return nil, fmt.Errorf("look up %s@%s in checksum database %s: %w", path, version, d.name, err)
	}
	ch := d.lookups.DoChan(path+"@"+version, func() (any, error) {
		return d.lookupNow(path, version)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return slices.Clone(r.Val.([]Line)), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("look up %s@%s in checksum database %s: %w", path, version, d.name, context.Cause(ctx))
	}
}

// generation returns the current sumdb client, making one if needed.
func (d *DB) generation() *generation {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cur == nil {
		g := new(generation)
		g.client = sumdb.NewClient(&clientOps{d: d, g: g})
		if d.nosumdb != "" {
			g.client.SetGONOSUMDB(d.nosumdb)
		}
		d.cur = g
	}
	return d.cur
}

// retire makes the next lookup use a fresh client, unless g was already replaced.
func (d *DB) retire(g *generation) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cur == g {
		d.cur = nil
	}
}

// lookupNow runs the sumdb client's lookups of path@version and path@version/go.mod.
func (d *DB) lookupNow(path, version string) ([]Line, error) {
	g := d.generation()
	if g.lookups.Add(1) >= generationLookups {
		d.retire(g)
	}
	texts, err := g.client.Lookup(path, version)
	if err == nil {
		var mod []string
		mod, err = g.client.Lookup(path, version+"/go.mod")
		texts = append(texts, mod...)
	}
	if err != nil {
		// The client keeps every error for its lifetime; start afresh next time.
		d.retire(g)
		if errors.Is(err, sumdb.ErrGONOSUMDB) {
			return nil, fmt.Errorf("look up %s@%s in checksum database %s: %w (%v)", path, version, d.name, ErrNotInDB, err)
		}
		epath, _ := module.EscapePath(path)
		evers, _ := module.EscapeVersion(version)
		if _, ok := g.missing.Load("/lookup/" + epath + "@" + evers); ok {
			return nil, fmt.Errorf("look up %s@%s in checksum database %s: %w (%v)", path, version, d.name, ErrNotInDB, err)
		}
		if g.offlineMiss.Load() {
			return nil, fmt.Errorf("look up %s@%s in checksum database %s: %w (%v)", path, version, d.name, ErrOffline, err)
		}
		return nil, fmt.Errorf("look up %s@%s in checksum database %s: %v", path, version, d.name, err)
	}
	lines := make([]Line, 0, len(texts))
	for _, t := range texts {
		l, err := parseLine(t)
		if err != nil {
			return nil, fmt.Errorf("look up %s@%s in checksum database %s: %w", path, version, d.name, err)
		}
		lines = append(lines, l)
	}
	return lines, nil
}

// VerifyMod checks go.mod content of path@version against the database; a different hash returns
// a *MismatchError and logs a security event. A module that matches NoSumDB is accepted
// unchecked; one the database does not know is an error wrapping ErrNotInDB.
func (d *DB) VerifyMod(ctx context.Context, path, version string, gomod []byte) error {
	return d.VerifyModHash(ctx, path, version, HashMod(gomod))
}

// VerifyModHash is VerifyMod given the go.mod file's hash (from HashMod).
func (d *DB) VerifyModHash(ctx context.Context, path, version, hash string) error {
	if d.skip(path) {
		return nil
	}
	lines, err := d.Lookup(ctx, path, version)
	if err != nil {
		return fmt.Errorf("verify %s@%s go.mod: %w", path, version, err)
	}
	return d.check(path, version, true, hash, lines)
}

// VerifyZipHash checks a zip's h1 hash (from HashZip) against the database, like VerifyMod.
func (d *DB) VerifyZipHash(ctx context.Context, path, version, hash string) error {
	if d.skip(path) {
		return nil
	}
	lines, err := d.Lookup(ctx, path, version)
	if err != nil {
		return fmt.Errorf("verify %s@%s zip: %w", path, version, err)
	}
	return d.check(path, version, false, hash, lines)
}

// check compares got with the database's hash for the go.mod file or the zip.
func (d *DB) check(path, version string, gomod bool, got string, lines []Line) error {
	file := "zip"
	if gomod {
		file = "go.mod"
	}
	want := ""
	for _, l := range lines {
		if l.Path != path || l.Version != version || l.GoMod != gomod {
			continue
		}
		if l.Hash == got {
			return nil
		}
		if want == "" {
			want = l.Hash
		}
	}
	if want == "" {
		return fmt.Errorf("verify %s@%s %s: checksum database %s has no hash for it", path, version, file, d.name)
	}
	e := &MismatchError{Path: path, Version: version, File: file, Got: got, Want: want,
		Source: "checksum database " + d.name}
	d.log.Error("checksum mismatch", "event", "security", "module", path, "version", version,
		"file", file, "got", got, "want", want, "source", e.Source)
	return e
}

// readObject reads a small object from the store.
func (d *DB) readObject(ctx context.Context, key string) ([]byte, store.Info, error) {
	return store.ReadAll(ctx, d.st, key, maxObject)
}

// writeCache stores an immutable checksum database object under key; an object already there is
// fine (it was written by an identical verified fill). With the first lookup it stores
// sumdb/<name>/supported too, which the go command asks a proxy for before it trusts it with the
// database: the store served as plain files then proxies the database as the proxy does.
func (d *DB) writeCache(ctx context.Context, key string, data []byte) {
	if !d.supportedStored.Load() && strings.HasPrefix(key, d.prefix+"lookup/") {
		_, err := d.st.Put(ctx, d.prefix+"supported", bytes.NewReader(nil), 0,
			store.PutOptions{IfAbsent: true, ContentType: "text/plain; charset=utf-8"})
		if err == nil || errors.Is(err, store.ErrExist) {
			d.supportedStored.Store(true)
		} else {
			d.log.Warn("checksum database: storing supported failed", "database", d.name, "err", err)
		}
	}
	ct := "application/octet-stream"
	if strings.HasPrefix(key, d.prefix+"lookup/") || strings.HasPrefix(key, d.prefix+"tile/") && strings.Contains(key, "/data/") {
		ct = "text/plain; charset=utf-8"
	}
	_, err := d.st.Put(ctx, key, bytes.NewReader(data), int64(len(data)), store.PutOptions{IfAbsent: true, ContentType: ct})
	if err != nil && !errors.Is(err, store.ErrExist) {
		d.log.Warn("checksum database: storing a verified object failed", "database", d.name, "key", key, "err", err)
	}
}

// clientOps are the sumdb.ClientOps of one generation, kept in the DB's store.
type clientOps struct {
	d *DB
	g *generation
}

func (o *clientOps) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(o.d.base, o.d.timeout)
}

// ReadRemote reads path ("/lookup/M@V", "/tile/8/0/001") through Remote.
func (o *clientOps) ReadRemote(path string) ([]byte, error) {
	d := o.d
	if d.remote == nil {
		o.g.offlineMiss.Store(true)
		return nil, fmt.Errorf("checksum database %s is offline and the mirror lacks %s: %w", d.name, path, ErrOffline)
	}
	ctx, cancel := o.ctx()
	defer cancel()
	data, err := d.remote(ctx, strings.TrimPrefix(path, "/"))
	if err != nil {
		if strings.HasPrefix(path, "/lookup/") && d.notFound(err) {
			o.g.missing.Store(path, true)
		}
		return nil, fmt.Errorf("checksum database %s: read %s: %w", d.name, path, err)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("checksum database %s: read %s: empty answer", d.name, path)
	}
	if strings.HasPrefix(path, "/lookup/") {
		data = d.pinLookup(ctx, data)
	}
	return data, nil
}

// pinLookup issues a lookup answer again under the signed tree head the store keeps, when that
// tree already holds the record, instead of the newer head the database signed it under.
//
// The go command reads the lookups it verifies from the store served as plain files (a static
// fallback, a file:// mirror), with no database to ask: it takes the tree head of the first
// lookup it reads as its own, proves each record from the tiles of its newest head, and proves
// that each head extends the one before. With every lookup under a head of its own, as the
// database serves them, that would take tiles of every head, which nobody fetched. Pinned, the
// lookups stored at any time share one head, whose tiles the proxy's own proof of each record
// stored; the head moves on only for a record logged after it, and the proof that the new head
// extends the old is stored as it moves. A record proves the same under any signed head that
// holds it, so this changes nothing a client can verify. A lookup that cannot be pinned is
// returned as it came, and the sumdb client judges it.
func (d *DB) pinLookup(ctx context.Context, data []byte) []byte {
	id, text, signed, err := tlog.ParseRecord(data)
	if err != nil {
		return data
	}
	head, _, err := d.readObject(ctx, d.latestKey)
	if err != nil || bytes.Equal(head, signed) {
		return data
	}
	tree, err := d.openHead(head)
	if err != nil || id >= tree.N {
		return data
	}
	msg, err := tlog.FormatRecord(id, text)
	if err != nil {
		return data
	}
	return append(msg, head...)
}

// ReadConfig reads "key" (the verifier key) or "<name>/latest" (the signed tree head, empty when
// the store has none yet).
func (o *clientOps) ReadConfig(file string) ([]byte, error) {
	d := o.d
	switch file {
	case "key":
		return []byte(d.vkey), nil
	case d.name + "/latest":
		ctx, cancel := o.ctx()
		defer cancel()
		data, _, err := d.readObject(ctx, d.latestKey)
		if errors.Is(err, store.ErrNotExist) {
			return []byte{}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("checksum database %s: %w", d.name, err)
		}
		return data, nil
	}
	return nil, fmt.Errorf("checksum database %s: unknown config file %q", d.name, file)
}

// WriteConfig replaces the signed tree head old with new, by compare-and-swap.
func (o *clientOps) WriteConfig(file string, old, new []byte) error {
	d := o.d
	if file != d.name+"/latest" {
		return fmt.Errorf("checksum database %s: cannot write config file %q", d.name, file)
	}
	ctx, cancel := o.ctx()
	defer cancel()
	cur, info, err := d.readObject(ctx, d.latestKey)
	exists := err == nil
	if err != nil && !errors.Is(err, store.ErrNotExist) {
		return fmt.Errorf("checksum database %s: %w", d.name, err)
	}
	if !bytes.Equal(cur, old) {
		return sumdb.ErrWriteConflict // the client compares with ==
	}
	opts := store.PutOptions{ContentType: "text/plain; charset=utf-8"}
	if exists {
		opts.IfMatch = info.ETag
	} else {
		opts.IfAbsent = true
	}
	_, err = d.st.Put(ctx, d.latestKey, bytes.NewReader(new), int64(len(new)), opts)
	if errors.Is(err, store.ErrExist) || errors.Is(err, store.ErrPrecondition) {
		return sumdb.ErrWriteConflict
	}
	if err != nil {
		return fmt.Errorf("checksum database %s: write %s: %w", d.name, d.latestKey, err)
	}
	return nil
}

// ReadCache reads "<name>/lookup/..." or "<name>/tile/..." from store key "sumdb/" + file.
func (o *clientOps) ReadCache(file string) ([]byte, error) {
	ctx, cancel := o.ctx()
	defer cancel()
	data, _, err := o.d.readObject(ctx, "sumdb/"+file)
	if err != nil && !errors.Is(err, store.ErrNotExist) {
		o.d.log.Debug("checksum database: reading the store failed", "database", o.d.name, "key", "sumdb/"+file, "err", err)
	}
	return data, err
}

// WriteCache stores a verified lookup or tile at store key "sumdb/" + file.
func (o *clientOps) WriteCache(file string, data []byte) {
	ctx, cancel := o.ctx()
	defer cancel()
	o.d.writeCache(ctx, "sumdb/"+file, data)
}

func (o *clientOps) Log(msg string) {
	o.d.log.Debug("checksum database client", "database", o.d.name, "msg", msg)
}

func (o *clientOps) SecurityError(msg string) {
	o.d.log.Error("checksum database misbehavior", "event", "security", "database", o.d.name, "detail", msg)
}
