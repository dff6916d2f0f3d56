package proxy

import (
	"fmt"
	"io"
	"os"
)

// SpoolFile holds one zip while it is hashed and verified, so that a zip of any size passes
// through in bounded memory. Close discards it.
type SpoolFile interface {
	io.ReadWriteSeeker
	io.ReaderAt
	io.Closer
}

// Spooler makes SpoolFiles. Hosts without a file system supply their own.
type Spooler interface {
	Spool() (SpoolFile, error)
}

// TempFileSpool spools to temporary files in dir.
func TempFileSpool(dir string) Spooler { return tempFileSpool(dir) }

type tempFileSpool string

func (dir tempFileSpool) Spool() (SpoolFile, error) {
	f, err := os.CreateTemp(string(dir), "modmirror-spool-*")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return removeOnClose{f}, nil
}

type removeOnClose struct{ *os.File }

func (f removeOnClose) Close() error {
	err := f.File.Close()
	if rerr := os.Remove(f.Name()); err == nil {
		err = rerr
	}
	return err
}
