//go:build unix

package dirstore

import (
	"io/fs"
	"syscall"
)

// inode returns fi's inode number, or 0 if fi does not say.
func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
