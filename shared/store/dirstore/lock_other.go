//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package dirstore

import (
	"io"
	"os"
)

// lockFile does nothing: this system has no flock in the standard library, so only Puts in
// one process (on one Store) are serialized, and processes sharing the directory must not
// replace the same keys concurrently.
func lockFile(*os.Root) (unlock func(), err error) { return func() {}, nil }

// lockNew creates the file name; with no flock, it holds no lock.
func lockNew(root *os.Root, name string) (io.Closer, error) {
	return root.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, filePerm)
}

// lockIfFree cannot tell whether the owner of name is alive: it says it is.
func lockIfFree(*os.Root, string) (io.Closer, error) { return nil, nil }
