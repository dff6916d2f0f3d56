//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package dirstore

import "os"

// lockFile does nothing: this system has no flock in the standard library, so only Puts in
// one process (on one Store) are serialized, and processes sharing the directory must not
// replace the same keys concurrently.
func lockFile(*os.Root) (unlock func(), err error) { return func() {}, nil }
