package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"golang.org/x/mod/module"

	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/config"
	"github.com/modmirror/modmirror/shared/goproxy"
	"github.com/modmirror/modmirror/shared/mirror/hybridsig"
	"github.com/modmirror/modmirror/shared/mirror/manifest"
	"github.com/modmirror/modmirror/shared/mirror/overlay"
	"github.com/modmirror/modmirror/shared/mirror/sumdbrender"
	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/store/memstore"
)

// VerifyConfig configures Verify.
type VerifyConfig struct {
	// Store is the mirror; it must also be a store.Walker. Verify never writes to it.
	Store store.Store
	// PublicKey, if set, must have signed the manifest.
	PublicKey *hybridsig.PublicKey
	// SumDB is the checksum database to check modules against; nil skips that check.
	SumDB *config.SumDB
	// SumDBRemote reaches the database, for a store without a manifest; nil: only what the
	// store holds. A mirror with a manifest is checked offline, as the go command would.
	SumDBRemote checksum.Remote
	// NoSumDB lists module path patterns (GONOSUMDB syntax) that skip the checksum database.
	NoSumDB string
	Logger  *slog.Logger
}

// Report is what Verify found.
type Report struct {
	// Problems name a key and what is wrong with it, in key order. A mirror verifies when
	// there are none.
	Problems []manifest.Problem
	// Notes say what was not checked, and why.
	Notes []string
	// Files is the number of objects checked against the manifest; Modules the number of .mod
	// and .zip files hashed; Lookups the number of checksum-database records checked.
	Files, Modules, Lookups int
	// Manifest says the store has one; SignedBy is the key that signed it, if checked.
	Manifest bool
	SignedBy string
}

func (r *Report) problem(key, format string, args ...any) {
	r.Problems = append(r.Problems, manifest.Problem{Key: key, Reason: fmt.Sprintf(format, args...)})
}

// Verify checks a mirror. With a manifest: the signature (if a public key is given), every object
// against the manifest, every .mod and .zip against _mirror/go.sum, and every module's
// checksum-database record as the go command would read it, offline. Without a manifest (a
// store the proxy filled): every .mod and .zip against the checksum database.
func Verify(ctx context.Context, c VerifyConfig) (*Report, error) {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if _, ok := c.Store.(store.Walker); !ok {
		return nil, errors.New("verify: the store cannot list its objects")
	}
	rep := &Report{}
	mdata, _, err := store.ReadAll(ctx, c.Store, manifest.Key, 1<<30)
	switch {
	case errors.Is(err, store.ErrNotExist):
		return rep, verifyFilled(ctx, c, rep)
	case err != nil:
		return nil, fmt.Errorf("verify: read %s: %w", manifest.Key, err)
	}
	rep.Manifest = true

	sig, _, sigErr := store.ReadAll(ctx, c.Store, manifest.SigKey, 1<<20)
	switch {
	case sigErr != nil && !errors.Is(sigErr, store.ErrNotExist):
		return nil, fmt.Errorf("verify: read %s: %w", manifest.SigKey, sigErr)
	case c.PublicKey == nil && sigErr == nil:
		id, _ := hybridsig.SignatureKeyID(sig)
		rep.Notes = append(rep.Notes, fmt.Sprintf("the manifest is signed by key %s: give -pub to check the signature", id))
	case c.PublicKey == nil:
		rep.Notes = append(rep.Notes, "the mirror is not signed")
	case sigErr != nil:
		rep.problem(manifest.SigKey, "missing: the mirror is not signed, and a public key was given")
	default:
		if err := c.PublicKey.Verify(mdata, manifest.SignatureContext, sig); err != nil {
			rep.problem(manifest.Key, "does not match its signature %s: %v", manifest.SigKey, err)
		} else {
			rep.SignedBy = c.PublicKey.ID()
		}
	}

	m, err := manifest.Parse(mdata)
	if err != nil {
		rep.problem(manifest.Key, "%v", err)
	} else {
		problems, n, err := manifest.Check(ctx, c.Store, m)
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		rep.Files = n
		rep.Problems = append(rep.Problems, problems...)
	}

	held, err := readHeld(ctx, c.Store)
	if err != nil {
		rep.problem(GoSumKey, "%v", err)
		held = newSumSet()
	}
	if err := verifyHashes(ctx, c.Store, held, rep); err != nil {
		return nil, err
	}
	if err := verifyRecords(ctx, c, held, rep); err != nil {
		return nil, err
	}
	slices.SortStableFunc(rep.Problems, func(a, b manifest.Problem) int { return strings.Compare(a.Key, b.Key) })
	return rep, nil
}

// moduleObjects calls fn for every .mod and .zip of the store.
func moduleObjects(ctx context.Context, st store.Store, fn func(req goproxy.Request, info store.Info) error) error {
	return st.(store.Walker).Walk(ctx, "", func(info store.Info) error {
		if !strings.HasSuffix(info.Key, ".mod") && !strings.HasSuffix(info.Key, ".zip") {
			return nil
		}
		req, err := goproxy.Parse("/" + info.Key)
		if err != nil || (req.Kind != goproxy.Mod && req.Kind != goproxy.Zip) {
			return nil
		}
		return fn(req, info)
	})
}

// hashObject returns the go.sum hash of a stored .mod or .zip.
func hashObject(ctx context.Context, st store.Store, req goproxy.Request, size int64) (string, []byte, error) {
	if req.Kind == goproxy.Mod {
		data, _, err := store.ReadAll(ctx, st, req.Key, maxMod)
		if err != nil {
			return "", nil, err
		}
		return checksum.HashMod(data), data, nil
	}
	obj, err := st.Open(ctx, req.Key)
	if err != nil {
		return "", nil, err
	}
	defer obj.Close()
	ra, ok := obj.(io.ReaderAt)
	if !ok {
		f, err := os.CreateTemp("", "modmirror-verify-*")
		if err != nil {
			return "", nil, err
		}
		defer os.Remove(f.Name())
		defer f.Close()
		if size, err = io.Copy(f, obj); err != nil {
			return "", nil, err
		}
		ra = f
	}
	h, err := checksum.HashZip(ra, size, req.Path, req.Version)
	return h, nil, err
}

// verifyHashes checks every .mod and .zip against the hashes the mirror recorded.
func verifyHashes(ctx context.Context, st store.Store, held *sumSet, rep *Report) error {
	seen := map[string]bool{}
	err := moduleObjects(ctx, st, func(req goproxy.Request, info store.Info) error {
		seen[req.Key] = true
		rep.Modules++
		m := module.Version{Path: req.Path, Version: req.Version}
		h, _ := held.get(m)
		want := h.Mod
		if req.Kind == goproxy.Zip {
			want = h.Zip
		}
		got, _, err := hashObject(ctx, st, req, info.Size)
		switch {
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			rep.problem(req.Key, "%v", err)
		case want == "":
			rep.problem(req.Key, "has no hash in %s", GoSumKey)
		case got != want:
			rep.problem(req.Key, "hash %s, %s says %s", got, GoSumKey, want)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	for _, m := range held.versions() {
		h, _ := held.get(m)
		for ext, hash := range map[string]string{"mod": h.Mod, "zip": h.Zip} {
			key, err := objectKey(m, ext)
			if hash != "" && err == nil && !seen[key] {
				rep.problem(key, "missing (%s lists %s)", GoSumKey, hash)
			}
		}
	}
	return nil
}

// verifyRecords checks every recorded module against the checksum-database objects the mirror
// holds, offline and from no tree head of its own, as the go command reads them.
func verifyRecords(ctx context.Context, c VerifyConfig, held *sumSet, rep *Report) error {
	if c.SumDB == nil {
		rep.Notes = append(rep.Notes, "checksum database off: records not checked")
		return nil
	}
	name := c.SumDB.Name
	if _, err := c.Store.Stat(ctx, "sumdb/"+name+"/supported"); err != nil {
		rep.Notes = append(rep.Notes, fmt.Sprintf("the mirror holds no records of checksum database %s: not checked", name))
		return nil
	}
	view := overlay.New(memstore.New(), c.Store, func(key string) bool { return strings.HasPrefix(key, "_mirror/") })
	db, err := checksum.NewDB(checksum.DBConfig{Name: name, Key: c.SumDB.Key, Store: view, Logger: c.Logger, NoSumDB: c.NoSumDB})
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer db.Close()
	for _, m := range held.versions() {
		if c.NoSumDB != "" && module.MatchPrefixPatterns(c.NoSumDB, m.Path) {
			continue
		}
		key, err := sumdbrender.LookupKey(name, m.Path, m.Version)
		if err != nil {
			return err
		}
		rep.Lookups++
		lines, err := db.Lookup(ctx, m.Path, m.Version)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			rep.problem(key, "%v", err)
			continue
		}
		h, _ := held.get(m)
		for _, l := range lines {
			want := h.Zip
			if l.GoMod {
				want = h.Mod
			}
			if want != "" && want != l.Hash {
				rep.problem(key, "says %s, %s says %s", l, GoSumKey, want)
			}
		}
	}
	return nil
}

// verifyFilled checks a store with no manifest: every .mod and .zip against the database.
func verifyFilled(ctx context.Context, c VerifyConfig, rep *Report) error {
	rep.Notes = append(rep.Notes, "no manifest: checking every .mod and .zip against the checksum database")
	if c.SumDB == nil {
		return errors.New("verify: the store has no manifest and the checksum database is off: nothing to check against")
	}
	view := overlay.New(memstore.New(), c.Store, nil)
	db, err := checksum.NewDB(checksum.DBConfig{Name: c.SumDB.Name, Key: c.SumDB.Key, Store: view, Remote: c.SumDBRemote, Logger: c.Logger, NoSumDB: c.NoSumDB})
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer db.Close()
	err = moduleObjects(ctx, c.Store, func(req goproxy.Request, info store.Info) error {
		rep.Modules++
		got, data, err := hashObject(ctx, c.Store, req, info.Size)
		if err == nil {
			if req.Kind == goproxy.Mod {
				err = db.VerifyMod(ctx, req.Path, req.Version, data)
			} else {
				err = db.VerifyZipHash(ctx, req.Path, req.Version, got)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			rep.problem(req.Key, "%v", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	slices.SortStableFunc(rep.Problems, func(a, b manifest.Problem) int { return strings.Compare(a.Key, b.Key) })
	return nil
}
