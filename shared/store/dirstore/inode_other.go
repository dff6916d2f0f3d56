//go:build !unix

package dirstore

import "io/fs"

// inode returns 0: this system has no inode numbers the standard library exposes. ETags rest on
// size and modification time alone, which Put keeps increasing per key.
func inode(fs.FileInfo) uint64 { return 0 }
