//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package dirstore

import (
	"errors"
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
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	var ferr error
	err = rc.Control(func(fd uintptr) {
		for {
			ferr = syscall.Flock(int(fd), syscall.LOCK_EX)
			if ferr != syscall.EINTR { // the runtime's preemption signals interrupt waits
				return
			}
		}
	})
	if err == nil {
		err = ferr
	}
	if errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOLCK) {
		err = nil // no flock here: rely on the in-process lock
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil // closing the only descriptor releases the lock
}
