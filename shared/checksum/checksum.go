// Package checksum computes and checks module hashes: go.sum parsing, the h1 hashes of .mod files
// and module zips, and verification against a checksum database whose state (signed tree head,
// tiles, lookups) lives in a store, so every instance shares one verified view.
//
// Errors callers tell apart with errors.Is:
//
//   - ErrMismatch: content whose hash differs from the one it must have (a security event; answer
//     502 and store nothing).
//   - ErrNotInDB: the checksum database has no record of the module version (it answered 404 or
//     410 to the lookup), or the module is excluded from the database (DBConfig.NoSumDB). Such a
//     module must not be served as verified; answer 404. ErrNotInDB also matches fs.ErrNotExist.
//   - ErrBadPath: DB.Fetch got a path that is not a checksum database path; answer 404. It also
//     matches fs.ErrNotExist.
//   - ErrOffline: the DB has no Remote and the store lacks what was needed (it wraps the store's
//     fs.ErrNotExist when the miss was a store miss).
//
// Any other error (the database unreachable, a misbehaving database, a store failure) means that
// nothing could be verified: answer 502.
package checksum

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb/dirhash"
)

// ErrMismatch is wrapped by every *MismatchError.
var ErrMismatch = errors.New("checksum mismatch")

// notExistError is a sentinel error that also matches fs.ErrNotExist, so that an HTTP layer that
// maps "does not exist" to 404 does the right thing without knowing this package.
type notExistError string

func (e notExistError) Error() string        { return string(e) }
func (e notExistError) Is(target error) bool { return target == fs.ErrNotExist }

var (
	// ErrNotInDB: the checksum database has no record of the module version, or the module
	// matches DBConfig.NoSumDB (for Lookup and Fetch; VerifyMod and VerifyZipHash accept such
	// modules without a check). errors.Is(err, fs.ErrNotExist) also holds.
	ErrNotInDB error = notExistError("module version not in checksum database")
	// ErrBadPath: a path given to DB.Fetch is not one the checksum database serves.
	// errors.Is(err, fs.ErrNotExist) also holds.
	ErrBadPath error = notExistError("not a checksum database path")
	// ErrOffline: the DB has no Remote and the store lacks what the operation needs.
	ErrOffline = errors.New("checksum database offline")
)

// MismatchError reports content whose hash differs from the one it must have.
type MismatchError struct {
	Path, Version string
	File          string // "go.mod" or "zip"
	Got, Want     string
	Source        string // where Want came from: "go.sum", "checksum database <name>"
}

func (e *MismatchError) Error() string {
	src := e.Source
	if src == "" {
		src = "expected"
	}
	return fmt.Sprintf("verify %s@%s %s: %v: downloaded %s, %s %s",
		e.Path, e.Version, e.File, ErrMismatch, e.Got, src, e.Want)
}

func (e *MismatchError) Unwrap() error { return ErrMismatch }

// Line is one go.sum line.
type Line struct {
	Path, Version string // Version without the "/go.mod" suffix
	GoMod         bool   // the line hashes the go.mod file only
	Hash          string // "h1:..."
}

// String formats l as a go.sum line (without the newline).
func (l Line) String() string {
	v := l.Version
	if l.GoMod {
		v += "/go.mod"
	}
	return l.Path + " " + v + " " + l.Hash
}

// ParseGoSum parses go.sum (and go.work.sum) content. Blank lines are skipped; a malformed line is
// an error naming its line number. Paths and versions are checked with module.Check-like rules.
// The lines keep their order; exact duplicates are dropped.
func ParseGoSum(data []byte) ([]Line, error) {
	var lines []Line
	seen := make(map[Line]bool)
	for i, text := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(text) == "" {
			continue
		}
		l, err := parseLine(text)
		if err != nil {
			return nil, fmt.Errorf("go.sum line %d: %w", i+1, err)
		}
		if seen[l] {
			continue
		}
		seen[l] = true
		lines = append(lines, l)
	}
	return lines, nil
}

// parseLine parses one go.sum line: "path version hash" or "path version/go.mod hash".
func parseLine(text string) (Line, error) {
	f := strings.Fields(text)
	if len(f) != 3 {
		return Line{}, fmt.Errorf("malformed line %q: want 3 fields, have %d", text, len(f))
	}
	l := Line{Path: f[0], Version: f[1], Hash: f[2]}
	if v, ok := strings.CutSuffix(l.Version, "/go.mod"); ok {
		l.Version, l.GoMod = v, true
	}
	if err := module.CheckPath(l.Path); err != nil {
		return Line{}, fmt.Errorf("malformed line %q: %w", text, err)
	}
	if !semver.IsValid(l.Version) {
		return Line{}, fmt.Errorf("malformed line %q: invalid version %q", text, l.Version)
	}
	if err := checkHash(l.Hash); err != nil {
		return Line{}, fmt.Errorf("malformed line %q: %w", text, err)
	}
	return l, nil
}

// checkHash accepts "hN:..." hashes; h1 hashes must be base64 SHA-256 sums.
func checkHash(h string) error {
	alg, sum, ok := strings.Cut(h, ":")
	if !ok || len(alg) < 2 || alg[0] != 'h' || strings.Trim(alg[1:], "0123456789") != "" || sum == "" {
		return fmt.Errorf("invalid hash %q", h)
	}
	if alg == "h1" {
		b, err := base64.StdEncoding.DecodeString(sum)
		if err != nil || len(b) != 32 {
			return fmt.Errorf("invalid h1 hash %q", h)
		}
	}
	return nil
}

// HashMod returns the go.sum hash of a go.mod file ("h1:..." over the single file go.mod).
func HashMod(data []byte) string {
	h, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	if err != nil {
		// Hash1 fails only when open fails or a name holds a newline: neither can happen here.
		panic(fmt.Sprintf("checksum: hashing go.mod: %v", err))
	}
	return h
}
