// Package dirstore keeps a store.Store in a local directory: the object under key K is the
// regular file root/K, nothing else is written beside it but dot-named temporary and lock files,
// and so the directory is itself a static GOPROXY (GOPROXY=file:///root).
//
// All file access goes through an [os.Root], so no key, and no symbolic link planted inside the
// directory, can reach a file outside it.
//
// A directory cannot keep a Content-Type or Cache-Control beside a file: Info from this store
// always has them empty, and the HTTP layer derives them from the key.
package dirstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/modmirror/modmirror/shared/store"
)

const (
	// tempPrefix starts the name of every file being written, always in the root:
	// .tmp-<owner>-<random> (see Sweep). No key element starts with a dot (checkKey refuses
	// them), so a temporary file never shadows or collides with an object, and Walk skips it.
	tempPrefix = ".tmp-"
	// lockName is the file in the root that Puts replacing an object lock (with flock, where
	// the system has it) so that processes sharing the directory do not race each other's
	// compare-and-swap. It is created on the first such Put.
	lockName = ".dirstore-lock"

	dirPerm  = 0o755
	filePerm = 0o644
)

// Store is a store.Store and store.Walker over a directory. It is safe for concurrent use, and
// several Stores or processes may share one directory: Puts that replace an object take turns
// through a lock file (with flock; on systems without it, only within one Store).
//
// The Objects Open returns embed the open *os.File, so they are io.ReadSeeker, io.ReaderAt and
// io.WriterTo too.
//
// The ETag of an object is its size, modification time in nanoseconds and, on Unix, inode
// number: computing it reads no content. A Put that replaces an object makes sure the new
// file's modification time is later than the old one's, so an ETag never comes back for a key
// even when the clock is coarse or an inode number is reused.
type Store struct {
	root *os.Root
	dir  string
	// owner names this Store's temporary files; ownerLock, made with the first of them, holds
	// its claim on them (see Sweep).
	owner     string
	ownerOnce sync.Once
	ownerLock io.Closer
	// sem is a one-slot semaphore held, together with the cross-process file lock, while a Put
	// checks what it replaces and renames its file into place: a few system calls, never the
	// copying of content.
	sem chan struct{}
}

var (
	_ store.Store  = (*Store)(nil)
	_ store.Walker = (*Store)(nil)
)

// New returns a Store keeping its objects under the directory root, creating it (and its
// parents) if missing.
func New(root string) (*Store, error) {
	if err := os.MkdirAll(root, dirPerm); err != nil {
		return nil, fmt.Errorf("dirstore: create %s: %w", root, err)
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("dirstore: open %s: %w", root, err)
	}
	return &Store{root: r, dir: root, owner: strconv.FormatUint(rand.Uint64(), 36), sem: make(chan struct{}, 1)}, nil
}

// Dir returns the directory the Store was created on, as given to New.
func (s *Store) Dir() string { return s.dir }

// Close releases the Store's handle on its directory and its claim on its temporary files.
// Objects already open stay readable; every other method fails afterwards.
func (s *Store) Close() error {
	s.ownerOnce.Do(func() {}) // no claim is made after Close
	if s.ownerLock != nil {
		s.root.Remove(ownerFile(s.owner))
		s.ownerLock.Close()
	}
	return s.root.Close()
}

// checkKey is store.CheckKey, and also refuses an element starting with a dot: such names are
// this store's own (temporary and lock files), and no module path, version or checksum-database
// path has one.
func checkKey(key string) error {
	if err := store.CheckKey(key); err != nil {
		return err
	}
	if key[0] == '.' || strings.Contains(key, "/.") {
		return fmt.Errorf("%w: %q has an element starting with a dot", store.ErrInvalidKey, key)
	}
	return nil
}

// Stat implements store.Store.
func (s *Store) Stat(ctx context.Context, key string) (store.Info, error) {
	if err := checkKey(key); err != nil {
		return store.Info{}, fmt.Errorf("stat %q: %w", key, err)
	}
	fi, err := s.root.Stat(key)
	if err != nil {
		return store.Info{}, fmt.Errorf("stat %q: %w", key, notExist(err))
	}
	if !fi.Mode().IsRegular() {
		return store.Info{}, fmt.Errorf("stat %q: %w (%s)", key, store.ErrNotExist, fi.Mode().Type())
	}
	return infoOf(key, fi), nil
}

// Open implements store.Store. The Object embeds the open *os.File.
func (s *Store) Open(ctx context.Context, key string) (store.Object, error) {
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("open %q: %w", key, err)
	}
	f, err := s.root.Open(key)
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", key, notExist(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %q: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open %q: %w (%s)", key, store.ErrNotExist, fi.Mode().Type())
	}
	return &object{File: f, info: infoOf(key, fi)}, nil
}

// object is an open stored file.
type object struct {
	*os.File
	info store.Info
}

func (o *object) Info() store.Info { return o.info }

// Put implements store.Store. The content is written to a temporary file in the key's
// directory, then linked (IfAbsent) or renamed (otherwise) into place, so readers see the old
// object or the new one, never part of one.
//
// Nothing is synced to disk: a mirror's objects can all be fetched again, and syncing every
// file would make filling it several times slower. After a system crash an object may be
// missing or empty, never another object's content.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, o store.PutOptions) (store.Info, error) {
	info, err := s.put(ctx, key, r, size, o)
	if err != nil {
		return store.Info{}, fmt.Errorf("put %q: %w", key, err)
	}
	return info, nil
}

func (s *Store) put(ctx context.Context, key string, r io.Reader, size int64, o store.PutOptions) (store.Info, error) {
	if err := checkKey(key); err != nil {
		return store.Info{}, err
	}
	if err := o.Check(); err != nil {
		return store.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return store.Info{}, err
	}

	// Fail early, before reading r (it may be a large download): the checks are repeated
	// atomically when the file is put in place.
	switch {
	case o.IfAbsent:
		if _, err := s.root.Lstat(key); err == nil {
			return store.Info{}, store.ErrExist
		}
	case o.IfMatch != "":
		if err := s.checkMatch(key, o.IfMatch); err != nil {
			return store.Info{}, err
		}
	}

	if _, err := s.mkdirFor(key); err != nil {
		return store.Info{}, err
	}
	tmp, fi, err := s.writeTemp(ctx, r, size)
	if err != nil {
		return store.Info{}, err
	}
	return s.place(ctx, key, tmp, fi, o)
}

// mkdirFor makes the directory key's file goes in and returns its name.
func (s *Store) mkdirFor(key string) (string, error) {
	dir := path.Dir(key)
	if dir != "." {
		if err := s.root.MkdirAll(dir, dirPerm); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// place puts the finished temporary file tmp (described by fi) in place under key, as Put with
// o does. Unless it is placed, tmp is removed.
func (s *Store) place(ctx context.Context, key, tmp string, fi fs.FileInfo, o store.PutOptions) (store.Info, error) {
	placed := false
	defer func() {
		if !placed {
			s.root.Remove(tmp)
		}
	}()

	if o.IfAbsent {
		// link fails atomically if key exists. The deferred Remove drops the temporary name.
		err := s.root.Link(tmp, key)
		if err == nil {
			return infoOf(key, fi), nil
		}
		if errors.Is(err, fs.ErrExist) {
			return store.Info{}, store.ErrExist
		}
		// Most likely a file system without hard links: check and rename under the lock.
	}

	unlock, err := s.lock(ctx)
	if err != nil {
		return store.Info{}, err
	}
	defer unlock()
	cur, err := s.root.Stat(key)
	switch {
	case err == nil && cur.IsDir():
		return store.Info{}, fmt.Errorf("%s is a directory", key)
	case err == nil && o.IfAbsent:
		return store.Info{}, store.ErrExist
	case err == nil && o.IfMatch != "" && etag(cur) != o.IfMatch:
		return store.Info{}, fmt.Errorf("%w: ETag is %s, not %s", store.ErrPrecondition, etag(cur), o.IfMatch)
	case err == nil:
		if fi, err = s.laterThan(tmp, fi, cur.ModTime()); err != nil {
			return store.Info{}, err
		}
	case !errors.Is(notExist(err), fs.ErrNotExist):
		return store.Info{}, err
	case o.IfMatch != "":
		return store.Info{}, fmt.Errorf("%w: no object to match %s", store.ErrPrecondition, o.IfMatch)
	}
	if err := s.root.Rename(tmp, key); err != nil {
		return store.Info{}, err
	}
	placed = true
	return infoOf(key, fi), nil
}

// checkMatch returns an error wrapping store.ErrPrecondition unless key holds an object with
// the ETag want.
func (s *Store) checkMatch(key, want string) error {
	fi, err := s.root.Stat(key)
	if err != nil {
		if errors.Is(notExist(err), fs.ErrNotExist) {
			return fmt.Errorf("%w: no object to match %s", store.ErrPrecondition, want)
		}
		return err
	}
	if got := etag(fi); got != want {
		return fmt.Errorf("%w: ETag is %s, not %s", store.ErrPrecondition, got, want)
	}
	return nil
}

// writeTemp copies r into a new temporary file and returns its name and description. On error
// the file is gone. size, if not negative, is the exact number of bytes r must yield.
func (s *Store) writeTemp(ctx context.Context, r io.Reader, size int64) (string, fs.FileInfo, error) {
	name, f, err := s.createTemp(os.O_WRONLY)
	if err != nil {
		return "", nil, err
	}
	fi, err := copyInto(ctx, f, r, size)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		s.root.Remove(name)
		return "", nil, err
	}
	return name, fi, nil
}

// createTemp creates a new temporary file in the root, opened with flag, and returns its name.
func (s *Store) createTemp(flag int) (string, *os.File, error) {
	s.ownerOnce.Do(s.claim)
	var (
		name string
		f    *os.File
		err  error
	)
	for range 10 {
		name = tempPrefix + s.owner + "-" + strconv.FormatUint(rand.Uint64(), 36)
		f, err = s.root.OpenFile(name, flag|os.O_CREATE|os.O_EXCL, filePerm)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return "", nil, fmt.Errorf("create temporary file: %w", err)
	}
	return name, f, nil
}

// Stage implements store.Stager: the object is a temporary file in the root, and Commit puts it
// in place as Put does, by a link or a rename. Until then key's directories are not made, so an
// object that is never committed leaves nothing behind.
func (s *Store) Stage(ctx context.Context, key string) (store.Staged, error) {
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("stage %q: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name, f, err := s.createTemp(os.O_RDWR)
	if err != nil {
		return nil, fmt.Errorf("stage %q: %w", key, err)
	}
	return &staged{File: f, s: s, key: key, name: name}, nil
}

// staged is an object being written: a temporary file in the store's root, linked or renamed
// to its key by Commit.
type staged struct {
	*os.File
	s         *Store
	key, name string
	done      bool // committed or discarded: the temporary name is gone
}

func (f *staged) Commit(ctx context.Context, o store.PutOptions) (store.Info, error) {
	if f.done {
		return store.Info{}, fmt.Errorf("put %q: staged object already committed or discarded", f.key)
	}
	if err := o.Check(); err != nil {
		f.Close()
		return store.Info{}, fmt.Errorf("put %q: %w", f.key, err)
	}
	fi, err := f.File.Stat()
	if err != nil {
		f.Close()
		return store.Info{}, fmt.Errorf("put %q: %w", f.key, err)
	}
	if _, err := f.s.mkdirFor(f.key); err != nil {
		f.Close()
		return store.Info{}, fmt.Errorf("put %q: %w", f.key, err)
	}
	f.done = true // place puts the file in place or removes it
	info, err := f.s.place(ctx, f.key, f.name, fi, o)
	if err != nil {
		return store.Info{}, fmt.Errorf("put %q: %w", f.key, err)
	}
	return info, nil
}

func (f *staged) Close() error {
	err := f.File.Close()
	if !f.done {
		f.done = true
		if rerr := f.s.root.Remove(f.name); err == nil {
			err = rerr
		}
	}
	if errors.Is(err, fs.ErrClosed) {
		err = nil // closed before, by a failed Commit
	}
	return err
}

func copyInto(ctx context.Context, f *os.File, r io.Reader, size int64) (fs.FileInfo, error) {
	src := io.Reader(store.ContextReader(ctx, r))
	if size >= 0 {
		// One byte more than promised, to notice a reader that has more.
		src = io.LimitReader(src, size+1)
	}
	n, err := io.Copy(f, src)
	if err != nil {
		return nil, fmt.Errorf("write content: %w", err)
	}
	if size >= 0 && n != size {
		if n > size {
			return nil, fmt.Errorf("content is longer than the %d bytes announced", size)
		}
		return nil, fmt.Errorf("content is %d bytes, not the %d announced", n, size)
	}
	return f.Stat()
}

// laterThan makes sure the temporary file name (described by fi) has a modification time after
// old, so that the object it replaces cannot share its ETag, and returns its new description.
// Usually it already has; if not (a coarse clock, or two Puts in one tick) the time is set to
// just after old, in steps coarse enough for the file system to keep.
func (s *Store) laterThan(name string, fi fs.FileInfo, old time.Time) (fs.FileInfo, error) {
	for step := time.Nanosecond; !fi.ModTime().After(old); step *= 10 {
		if step > time.Minute {
			return nil, fmt.Errorf("cannot give %s a modification time after %v", name, old)
		}
		t := old.Add(step)
		if err := s.root.Chtimes(name, t, t); err != nil {
			return nil, err
		}
		var err error
		if fi, err = s.root.Lstat(name); err != nil {
			return nil, err
		}
	}
	return fi, nil
}

// lock serializes, in this process and (where the system has flock) across processes, the step
// of a Put that checks what it replaces and renames its file into place.
func (s *Store) lock(ctx context.Context) (unlock func(), err error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	unlockFile, err := lockFile(s.root)
	if err != nil {
		<-s.sem
		return nil, fmt.Errorf("lock %s: %w", lockName, err)
	}
	return func() {
		unlockFile()
		<-s.sem
	}, nil
}

// Walk implements store.Walker: it calls fn for every object whose key starts with prefix, in
// lexical key order, skipping dot-named files and directories (temporary and lock files) and
// not following symbolic links to directories. It returns fn's first error unchanged.
func (s *Store) Walk(ctx context.Context, prefix string, fn func(store.Info) error) error {
	dir, rest := "", prefix
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dir, rest = prefix[:i], prefix[i+1:]
		if checkKey(dir) != nil {
			return nil // no key starts with this prefix
		}
	}
	return s.walk(ctx, dir, rest, fn)
}

// walk calls fn for the objects in dir (a key, or "" for the root) and below whose name in dir
// starts with namePrefix.
func (s *Store) walk(ctx context.Context, dir, namePrefix string, fn func(store.Info) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("walk %q: %w", dir, err)
	}
	name := dir
	if name == "" {
		name = "."
	}
	f, err := s.root.Open(name)
	if err != nil {
		if errors.Is(notExist(err), fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("walk %q: %w", dir, err)
	}
	ents, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		if errors.Is(err, syscall.ENOTDIR) {
			return nil // dir is an object; no key is below it
		}
		return fmt.Errorf("walk %q: %w", dir, err)
	}

	type entry struct {
		order string // the name, with a slash after a directory's: how its keys sort
		key   string
		fi    fs.FileInfo // nil for a directory
	}
	var list []entry
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") || !strings.HasPrefix(n, namePrefix) {
			continue
		}
		key := n
		if dir != "" {
			key = dir + "/" + n
		}
		var fi fs.FileInfo
		switch t := e.Type(); {
		case t.IsDir():
			list = append(list, entry{order: n + "/", key: key})
			continue
		case t.IsRegular():
			fi, err = e.Info()
		case t&fs.ModeSymlink != 0:
			fi, err = s.root.Stat(key) // followed only to a regular file inside the root
		default:
			continue
		}
		if err != nil || !fi.Mode().IsRegular() {
			continue // gone since ReadDir, or not an object
		}
		list = append(list, entry{order: n, key: key, fi: fi})
	}
	slices.SortFunc(list, func(a, b entry) int { return strings.Compare(a.order, b.order) })

	for _, e := range list {
		if e.fi == nil {
			err = s.walk(ctx, e.key, "", fn)
		} else {
			err = fn(infoOf(e.key, e.fi))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// infoOf describes the object key, whose file fi describes.
func infoOf(key string, fi fs.FileInfo) store.Info {
	return store.Info{Key: key, Size: fi.Size(), ETag: etag(fi), ModTime: fi.ModTime()}
}

// etag derives an ETag from a file's size, modification time and inode number; see Store.
func etag(fi fs.FileInfo) string {
	return fmt.Sprintf(`"%x-%x-%x"`, fi.Size(), fi.ModTime().UnixNano(), inode(fi))
}

// notExist makes err wrap fs.ErrNotExist if it says that a path element is not a directory,
// that is, that the key is below an object and so names none.
func notExist(err error) error {
	if errors.Is(err, syscall.ENOTDIR) && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w (%w)", fs.ErrNotExist, err)
	}
	return err
}
