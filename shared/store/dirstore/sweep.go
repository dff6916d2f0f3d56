package dirstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"
)

// Temporary files have owners. A Store names its temporary files .tmp-<owner>-<random>, and with
// the first of them it creates .tmp-<owner>.owner and holds an exclusive flock on it for as long
// as the Store is open: the kernel releases the lock when the process ends, however it ends. A
// temporary file whose owner's lock can be taken belongs to no live Put: its process was killed,
// or stopped before its fills were done. Sweep removes those.

// ownerSuffix ends the name of an owner's lock file.
const ownerSuffix = ".owner"

// StaleAfter is how old a temporary file must be before Sweep removes it when its owner cannot be
// told (no owner file, as before owners were named, or a system without flock): no Put takes
// that long, since a fill is bounded far below it.
const StaleAfter = 24 * time.Hour

func ownerFile(owner string) string { return tempPrefix + owner + ownerSuffix }

// claim creates this Store's owner file and locks it. A Store that cannot (a read-only
// directory, a file system without flock) still works; its temporary files are then left to the
// age rule of Sweep.
func (s *Store) claim() {
	lock, err := lockNew(s.root, ownerFile(s.owner))
	if err == nil {
		s.ownerLock = lock
	}
}

// Swept is what Sweep removed.
type Swept struct {
	Files int
	Bytes int64
}

// Sweep removes the temporary files in the root that no live Put owns: those of owners whose
// lock it can take (their process is gone), and those with no owner to ask that are older than
// StaleAfter. It stops when ctx ends, with what it removed so far. Run it when a process starts
// on a directory: other processes sharing the directory keep their own files.
func (s *Store) Sweep(ctx context.Context, now time.Time) (Swept, error) {
	dir, err := s.root.Open(".")
	if err != nil {
		return Swept{}, fmt.Errorf("sweep %s: %w", s.dir, err)
	}
	entries, err := dir.ReadDir(-1)
	dir.Close()
	if err != nil {
		return Swept{}, fmt.Errorf("sweep %s: %w", s.dir, err)
	}
	// The owners first: alive (their lock is held), gone (taken here), or unknown.
	gone := make(map[string]bool)
	var released []func()
	defer func() {
		for _, release := range released {
			release()
		}
	}()
	for _, e := range entries {
		owner, ok := ownerOf(e.Name())
		if !ok || owner == s.owner {
			continue
		}
		lock, err := lockIfFree(s.root, e.Name())
		if err != nil || lock == nil {
			continue // held, or cannot tell: the owner is treated as alive
		}
		gone[owner] = true
		released = append(released, func() { s.root.Remove(e.Name()); lock.Close() })
	}
	var swept Swept
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return swept, fmt.Errorf("sweep %s: %w", s.dir, err)
		}
		name := e.Name()
		rest, ok := strings.CutPrefix(name, tempPrefix)
		if !ok || strings.HasSuffix(name, ownerSuffix) || !e.Type().IsRegular() {
			continue
		}
		owner, _, named := strings.Cut(rest, "-")
		if named && owner == s.owner {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		if !(named && gone[owner]) && now.Sub(fi.ModTime()) < StaleAfter {
			continue
		}
		if err := s.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return swept, fmt.Errorf("sweep %s: %w", s.dir, err)
		}
		swept.Files++
		swept.Bytes += fi.Size()
	}
	return swept, nil
}

// ownerOf returns the owner an owner file's name names.
func ownerOf(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, tempPrefix)
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, ownerSuffix)
}
