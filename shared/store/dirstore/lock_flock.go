//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package dirstore

import (
	"errors"
	"io"
	"os"
	"syscall"
)

// lockFile takes an exclusive flock on the store's lock file, so that processes sharing the
// directory take turns, and returns the function releasing it. The lock is on a file opened for
// this call alone: flock locks belong to an open file, so two Stores on one directory in one
// process exclude each other too. A file system without flock gets no cross-process lock.
func lockFile(root *os.Root) (unlock func(), err error) {
	f, err := root.OpenFile(lockName, os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return nil, err
	}
	err = flock(f, syscall.LOCK_EX)
	if errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOLCK) {
		err = nil // no flock here: rely on the in-process lock
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil // closing the only descriptor releases the lock
}

// lockNew creates the file name and takes an exclusive flock on it, held until the returned
// Closer is closed (or the process ends).
func lockNew(root *os.Root, name string) (io.Closer, error) {
	f, err := root.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return nil, err
	}
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		root.Remove(name)
		return nil, err
	}
	return f, nil
}

// lockIfFree takes an exclusive flock on the existing file name if nobody holds one: it returns
// the lock, or nil if another open file holds it.
func lockIfFree(root *os.Root, name string) (io.Closer, error) {
	f, err := root.OpenFile(name, os.O_RDWR, filePerm)
	if err != nil {
		return nil, err
	}
	err = flock(f, syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		f.Close()
		return nil, nil
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// flock applies how to f, retrying when a signal interrupts it.
func flock(f *os.File, how int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	err = rc.Control(func(fd uintptr) {
		for {
			if ferr = syscall.Flock(int(fd), how); ferr != syscall.EINTR {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return ferr
}
