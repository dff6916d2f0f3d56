// Package storeurl opens the store a host names in its -store flag: a directory, or an S3 bucket
// as s3://bucket/prefix.
//
// It links the AWS SDK, so only hosts that run on a real operating system import it (the
// self-hosted server, the Lambda function, the generator), never the WebAssembly build.
package storeurl

import (
	"context"
	"fmt"
	"strings"

	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/store/dirstore"
	"github.com/modmirror/modmirror/shared/store/s3store"
)

// Open returns the store spec names: s3://bucket/prefix is an S3 bucket (configured from the
// SDK's standard environment, see s3store), file:///dir or a plain path a directory. Other
// URL schemes are errors, so that a mistyped URL never becomes a directory named after it.
func Open(ctx context.Context, spec string) (store.Store, error) {
	switch {
	case spec == "":
		return nil, fmt.Errorf("storeurl: no store given")
	case strings.HasPrefix(spec, "s3://"):
		s, err := s3store.New(ctx, spec)
		if err != nil {
			return nil, err
		}
		return s, nil
	case strings.HasPrefix(spec, "file://"):
		dir := strings.TrimPrefix(spec, "file://")
		if !strings.HasPrefix(dir, "/") {
			return nil, fmt.Errorf("storeurl: %q is not file:///absolute/path", spec)
		}
		return openDir(dir)
	case strings.Contains(spec, "://"):
		return nil, fmt.Errorf("storeurl: unknown store %q: want a directory or s3://bucket/prefix", spec)
	}
	return openDir(spec)
}

// openDir returns a dirstore, or a nil interface (not a nil *dirstore.Store) on error.
func openDir(dir string) (store.Store, error) {
	s, err := dirstore.New(dir)
	if err != nil {
		return nil, err
	}
	return s, nil
}
