// Package mirror turns pinned dependency sets into a static mirror: it fetches every module
// version's .info, .mod and .zip, checks each against the go.sum hash it came with and against the
// checksum database, and renders them into a store with the list files, the checksum-database
// objects the go command needs to verify everything with no network (one signed tree head, the
// tiles proving every lookup), a record of the hashes (_mirror/go.sum), a manifest of every object
// with its SHA-256 (_mirror/manifest) and, with a key, a hybrid signature of the manifest.
//
// Generation is incremental and deterministic: what the store already holds is neither fetched
// nor written again, and the objects depend only on the inputs and on what the upstream and the
// checksum database serve. A module version that fails writes nothing; the others are kept, and a
// later run resumes.
//
// Verify checks a mirror: its signature, every object against the manifest, every module against
// its recorded hash and the checksum database.
package mirror

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"

	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/config"
	"github.com/modmirror/modmirror/shared/mirror/hybridsig"
	"github.com/modmirror/modmirror/shared/mirror/overlay"
	"github.com/modmirror/modmirror/shared/spool"
	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/upstream"
)

// DefaultJobs is how many module versions are fetched at a time unless Config.Jobs says.
const DefaultJobs = 16

// Upstream is where the objects the mirror lacks come from (an *upstream.Client).
type Upstream interface {
	Get(ctx context.Context, path string) (*upstream.Response, error)
}

// Config configures a Generator.
type Config struct {
	// Store receives the mirror; it must also be a store.Walker.
	Store store.Store
	// Upstream fills what the store lacks; nil: nothing is fetched (only the store is used).
	Upstream Upstream
	// SumDB is the checksum database; nil checks modules against go.sum hashes only and writes
	// no checksum-database objects.
	SumDB *config.SumDB
	// SumDBRemote reaches the database (config.SumDBRemote); nil: only what the store holds.
	SumDBRemote checksum.Remote
	// NoSumDB lists module path patterns (GONOSUMDB syntax) that skip the checksum database.
	NoSumDB string
	// Jobs bounds the module versions fetched at a time; default DefaultJobs.
	Jobs int
	// TempDir holds scratch state and zips being verified; default os.TempDir().
	TempDir string
	// SpoolMemory is how many bytes of zips the jobs together hold in memory while they verify
	// them; a zip that does not fit is written where the mirror keeps it, if its store is a
	// store.Stager, or else to a file in TempDir. 0 means 32 MiB; negative, nothing in memory.
	SpoolMemory int64
	// Signer signs the manifest; nil leaves it unsigned.
	Signer *hybridsig.PrivateKey
	// Logger receives debug and warning records; default none.
	Logger *slog.Logger
	// Progress hears of each module version as it is done; default none.
	Progress Progress
}

// Outcome is what happened to one module version.
type Outcome int

// The outcomes.
const (
	Written Outcome = iota + 1 // at least one object was fetched and written
	Held                       // the mirror already held everything
	Failed                     // nothing was written
)

// Progress hears how a generation goes. Its methods are called from several goroutines.
type Progress interface {
	// Planned says how many module versions the run will process.
	Planned(modules int)
	// Fetched says that n more bytes came from the upstream.
	Fetched(n int64)
	// Finished says one module version is done.
	Finished(m module.Version, o Outcome, err error)
}

// Failure is a module version (or an input) that could not be mirrored.
type Failure struct {
	Module string // module@version, or the input that failed
	Err    error
}

// Result summarizes a generation.
type Result struct {
	Modules    int   // module versions processed
	Written    int   // ... of which new objects were written for
	Held       int   // ... the mirror held already
	Files      int   // objects written, of every kind
	Bytes      int64 // their bytes
	Fetched    int64 // bytes downloaded from the upstream
	Failures   []Failure
	Unverified []module.Version // had neither a go.sum hash nor a checksum-database record
	Lookups    int              // checksum-database lookups the mirror holds
	TreeSize   int64            // the size of the tree head they are under
	Signed     string           // the signing key's ID, if signed
	Duration   time.Duration
}

// Input is a pinned dependency set.
type Input struct {
	// GoSum lines: M V/go.mod brings .info and .mod, M V also .zip; each is checked against its
	// hash.
	GoSum []checksum.Line
	// Modules bring their build lists: everything `go install M/cmd/x@V` needs.
	Modules []module.Version
}

// Generator renders pinned sets into a store. Make one with New; Close it.
type Generator struct {
	cfg      Config
	log      *slog.Logger
	progress Progress
	jobs     int

	st         *mirrorStore
	scratchDir string
	scratch    *scratchStore  // the checksum database's state during the run
	state      *overlay.Store // the scratch store over the mirror: the database client's view
	db         *checksum.DB   // nil: off
	verifier   note.Verifier

	held *sumSet // what the mirror holds: _mirror/go.sum plus what this run adds

	fetched      atomic.Int64  // bytes downloaded
	spoolOptions spool.Options // where zips are held while they are verified
	// hasher hashes zips on as many goroutines as Ps in all, however many jobs verify at once,
	// and keeps its decoders from one zip to the next.
	hasher *checksum.Hasher

	mu   sync.Mutex
	mods map[module.Version]*modEntry
}

// New returns a Generator; it lists the store's objects and creates a scratch directory under
// Config.TempDir.
func New(ctx context.Context, c Config) (*Generator, error) {
	if c.Store == nil {
		return nil, errors.New("mirror: no store")
	}
	st, err := newMirrorStore(c.Store)
	if err != nil {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	if err := st.index(ctx); err != nil {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	g := &Generator{cfg: c, st: st, log: c.Logger, progress: c.Progress, jobs: c.Jobs, mods: map[module.Version]*modEntry{}}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.progress == nil {
		g.progress = nopProgress{}
	}
	if g.jobs <= 0 {
		g.jobs = DefaultJobs
	}
	if g.cfg.TempDir == "" {
		g.cfg.TempDir = os.TempDir()
	}
	if g.scratchDir, err = os.MkdirTemp(g.cfg.TempDir, "modmirror-generate-"); err != nil {
		return nil, fmt.Errorf("mirror: scratch directory: %w", err)
	}
	memory := cmp.Or(c.SpoolMemory, defaultSpoolMemory)
	g.hasher = checksum.NewHasher(runtime.GOMAXPROCS(0))
	g.spoolOptions = spool.Options{Dir: g.scratchDir, MemoryMax: max(memory, 0), Shared: spool.NewBudget(max(memory, 0))}
	g.scratch = newScratchStore(filepath.Join(g.scratchDir, "sumdb"), scratchBudget)
	g.state = overlay.New(g.scratch, g.st, nil)
	if c.SumDB != nil {
		if g.verifier, err = note.NewVerifier(c.SumDB.Key); err != nil {
			g.Close()
			return nil, fmt.Errorf("mirror: checksum database %s: %w", c.SumDB.Name, err)
		}
		// The database's client starts from the mirror's own state (tree head, lookups and
		// tiles) and keeps what it learns in the scratch store: the mirror gets only what
		// renderSumDB derives from it.
		g.db, err = checksum.NewDB(checksum.DBConfig{
			Name:    c.SumDB.Name,
			Key:     c.SumDB.Key,
			Store:   g.state,
			Remote:  c.SumDBRemote,
			Logger:  g.log,
			NoSumDB: c.NoSumDB,
		})
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("mirror: %w", err)
		}
	}
	return g, nil
}

// Close removes the scratch state.
func (g *Generator) Close() error {
	if g.db != nil {
		g.db.Close()
	}
	if g.scratch != nil {
		g.scratch.Close()
	}
	return os.RemoveAll(g.scratchDir)
}

// private reports whether path skips the checksum database.
func (g *Generator) private(path string) bool {
	return g.cfg.NoSumDB != "" && module.MatchPrefixPatterns(g.cfg.NoSumDB, path)
}

type nopProgress struct{}

func (nopProgress) Planned(int)                             {}
func (nopProgress) Fetched(int64)                           {}
func (nopProgress) Finished(module.Version, Outcome, error) {}
