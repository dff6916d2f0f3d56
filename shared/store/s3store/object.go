package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/modmirror/modmirror/shared/store"
)

// drainLimit is how much of an abandoned GetObject body is read to the end, so that its
// connection can be reused, rather than closed.
const drainLimit = 64 << 10

// object is an open S3 object: an io.ReadSeeker over the GetObject answer that Open started,
// re-requested with a Range (and If-Match on the ETag) after a Seek away from where it stands.
type object struct {
	ctx  context.Context
	s    *Store
	info store.Info

	body    io.ReadCloser // nil once closed or abandoned
	bodyPos int64         // the offset body reads next
	pos     int64         // the offset Read reads next
	closed  bool
}

func (o *object) Info() store.Info { return o.info }

// Read implements io.Reader.
func (o *object) Read(p []byte) (int, error) {
	if o.closed {
		return 0, fmt.Errorf("read %q: %w", o.info.Key, errors.New("object is closed"))
	}
	if o.body != nil && o.bodyPos != o.pos {
		o.abandon()
	}
	if o.pos >= o.info.Size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if o.body == nil {
		if err := o.openAt(o.pos); err != nil {
			return 0, err
		}
	}
	n, err := o.body.Read(p)
	o.bodyPos += int64(n)
	o.pos += int64(n)
	if err == io.EOF && o.pos < o.info.Size {
		err = fmt.Errorf("read %q: %w at %d of %d bytes", o.info.Key, io.ErrUnexpectedEOF, o.pos, o.info.Size)
	}
	return n, err
}

// openAt starts a ranged GetObject from off to the end, of the same content.
func (o *object) openAt(off int64) error {
	in := &s3.GetObjectInput{
		Bucket: &o.s.bucket,
		Key:    aws.String(o.s.objectKey(o.info.Key)),
		Range:  aws.String("bytes=" + strconv.FormatInt(off, 10) + "-"),
	}
	if o.info.ETag != "" {
		in.IfMatch = aws.String(o.info.ETag)
	}
	out, err := o.s.client.GetObject(o.ctx, in)
	if err != nil {
		if errorStatus(err) == 412 {
			return fmt.Errorf("read %q at %d: the object was replaced since it was opened: %w", o.info.Key, off, err)
		}
		return fmt.Errorf("read %q at %d: %w", o.info.Key, off, readError(err))
	}
	o.body, o.bodyPos = out.Body, off
	return nil
}

// Seek implements io.Seeker. It does no I/O: the next Read does what is needed.
func (o *object) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = o.pos + offset
	case io.SeekEnd:
		abs = o.info.Size + offset
	default:
		return o.pos, fmt.Errorf("seek %q: invalid whence %d", o.info.Key, whence)
	}
	if abs < 0 {
		return o.pos, fmt.Errorf("seek %q: negative position %d", o.info.Key, abs)
	}
	o.pos = abs
	return abs, nil
}

// abandon closes the current body, first reading what little is left of it so that its
// connection stays reusable.
func (o *object) abandon() {
	if o.body == nil {
		return
	}
	if o.info.Size-o.bodyPos <= drainLimit {
		io.Copy(io.Discard, io.LimitReader(o.body, drainLimit))
	}
	o.body.Close()
	o.body = nil
}

// Close implements io.Closer.
func (o *object) Close() error {
	if o.closed {
		return nil
	}
	o.closed = true
	o.abandon()
	return nil
}
