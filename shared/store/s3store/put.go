package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/modmirror/modmirror/shared/store"
)

// abortTimeout bounds the AbortMultipartUpload of a failed Put, which runs even when the Put's
// context is done.
const abortTimeout = 30 * time.Second

// Put implements store.Store. Content up to the part size goes up in one PutObject; longer
// content in a multipart upload of part-size parts, each read into memory before it is sent, so
// a Put of any length holds at most one part. See Store for atomicity and conditions.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, o store.PutOptions) (store.Info, error) {
	info, err := s.put(ctx, key, r, size, o)
	if err != nil {
		return store.Info{}, fmt.Errorf("put %q: %w", key, err)
	}
	return info, nil
}

func (s *Store) put(ctx context.Context, key string, r io.Reader, size int64, o store.PutOptions) (store.Info, error) {
	if err := store.CheckKey(key); err != nil {
		return store.Info{}, err
	}
	if err := o.Check(); err != nil {
		return store.Info{}, err
	}
	if o.IfMatch != "" && !strongETag(o.IfMatch) {
		// S3 would take "*" as "any object" and may accept an unquoted ETag; the store's
		// ETags are always quoted and strong, so nothing else ever matches.
		return store.Info{}, fmt.Errorf("%w: %s is not an ETag this store gives", store.ErrPrecondition, o.IfMatch)
	}
	if err := ctx.Err(); err != nil {
		return store.Info{}, err
	}
	src := &exactReader{r: store.ContextReader(ctx, r), size: size}
	first, err := src.next(s.partSize)
	if err != nil {
		return store.Info{}, err
	}
	if src.done {
		return s.putObject(ctx, key, first, o)
	}
	return s.putMultipart(ctx, key, first, src, o)
}

// strongETag reports whether etag is a quoted, strong entity tag.
func strongETag(etag string) bool {
	return len(etag) >= 2 && etag[0] == '"' && etag[len(etag)-1] == '"' && !strings.Contains(etag[1:len(etag)-1], `"`)
}

// putObject stores content that fits in one part.
func (s *Store) putObject(ctx context.Context, key string, data []byte, o store.PutOptions) (store.Info, error) {
	in := &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           aws.String(s.objectKey(key)),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
	}
	setHeaders(&in.ContentType, &in.CacheControl, o)
	setConditions(&in.IfNoneMatch, &in.IfMatch, o)
	out, err := s.client.PutObject(ctx, in)
	if err != nil {
		return store.Info{}, writeError(err, o)
	}
	return s.putInfo(key, int64(len(data)), aws.ToString(out.ETag), o), nil
}

// putMultipart stores content longer than a part: first is the first part, src yields the
// rest. Only CompleteMultipartUpload makes the object visible, under the Put's conditions; any
// failure aborts the upload.
func (s *Store) putMultipart(ctx context.Context, key string, first []byte, src *exactReader, o store.PutOptions) (_ store.Info, err error) {
	// Fail early, before sending much: the condition is checked again, atomically, on
	// completion.
	if err := s.precheck(ctx, key, o); err != nil {
		return store.Info{}, err
	}
	objKey := s.objectKey(key)
	create := &s3.CreateMultipartUploadInput{
		Bucket:            &s.bucket,
		Key:               &objKey,
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
	}
	setHeaders(&create.ContentType, &create.CacheControl, o)
	up, err := s.client.CreateMultipartUpload(ctx, create)
	if err != nil {
		return store.Info{}, fmt.Errorf("create multipart upload: %w", err)
	}
	defer func() {
		if err == nil {
			return
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		defer cancel()
		if _, aerr := s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
			Bucket: &s.bucket, Key: &objKey, UploadId: up.UploadId,
		}); aerr != nil {
			err = errors.Join(err, fmt.Errorf("abort multipart upload: %w", aerr))
		}
	}()

	var parts []types.CompletedPart
	part, total := first, int64(0)
	for n := int32(1); ; n++ {
		out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket:            &s.bucket,
			Key:               &objKey,
			UploadId:          up.UploadId,
			PartNumber:        aws.Int32(n),
			Body:              bytes.NewReader(part),
			ContentLength:     aws.Int64(int64(len(part))),
			ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
		})
		if err != nil {
			return store.Info{}, fmt.Errorf("upload part %d: %w", n, err)
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.ETag, ChecksumCRC32: out.ChecksumCRC32})
		total += int64(len(part))
		if src.done {
			break
		}
		if part, err = src.next(s.partSize); err != nil {
			return store.Info{}, err
		}
		if len(part) == 0 {
			break // the content was a whole number of parts
		}
	}

	complete := &s3.CompleteMultipartUploadInput{
		Bucket:          &s.bucket,
		Key:             &objKey,
		UploadId:        up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}
	setConditions(&complete.IfNoneMatch, &complete.IfMatch, o)
	out, err := s.client.CompleteMultipartUpload(ctx, complete)
	if err != nil {
		return store.Info{}, writeError(err, o)
	}
	return s.putInfo(key, total, aws.ToString(out.ETag), o), nil
}

// precheck returns the error a conditional Put would end with if the object were as it is now.
func (s *Store) precheck(ctx context.Context, key string, o store.PutOptions) error {
	if !o.IfAbsent && o.IfMatch == "" {
		return nil
	}
	info, err := s.Stat(ctx, key)
	switch {
	case errors.Is(err, store.ErrNotExist) && o.IfMatch != "":
		return fmt.Errorf("%w: no object to match %s", store.ErrPrecondition, o.IfMatch)
	case errors.Is(err, store.ErrNotExist):
		return nil
	case err != nil:
		return err
	case o.IfAbsent:
		return store.ErrExist
	case info.ETag != o.IfMatch:
		return fmt.Errorf("%w: ETag is %s, not %s", store.ErrPrecondition, info.ETag, o.IfMatch)
	}
	return nil
}

func (s *Store) putInfo(key string, size int64, etag string, o store.PutOptions) store.Info {
	return store.Info{
		Key:          key,
		Size:         size,
		ETag:         etag,
		ModTime:      time.Now(),
		ContentType:  o.ContentType,
		CacheControl: o.CacheControl,
	}
}

func setHeaders(contentType, cacheControl **string, o store.PutOptions) {
	if o.ContentType != "" {
		*contentType = aws.String(o.ContentType)
	}
	if o.CacheControl != "" {
		*cacheControl = aws.String(o.CacheControl)
	}
}

func setConditions(ifNoneMatch, ifMatch **string, o store.PutOptions) {
	if o.IfAbsent {
		*ifNoneMatch = aws.String("*")
	}
	if o.IfMatch != "" {
		*ifMatch = aws.String(o.IfMatch)
	}
}

// writeError maps a failed conditional write: 412 Precondition Failed, and 409
// ConditionalRequestConflict (a concurrent conditional write of the key won), are ErrExist for a
// create-only Put and ErrPrecondition for a compare-and-swap; a compare-and-swap of a missing
// object (404) is ErrPrecondition too.
func writeError(err error, o store.PutOptions) error {
	status := errorStatus(err)
	switch {
	case o.IfAbsent && (status == 412 || status == 409):
		return fmt.Errorf("%w (%w)", store.ErrExist, err)
	case o.IfMatch != "" && (status == 412 || status == 409 || status == 404):
		return fmt.Errorf("%w (%w)", store.ErrPrecondition, err)
	}
	return err
}

// exactReader reads content in parts and fails if it is not exactly size bytes long (when size
// is not negative). It reports the end of the content with the last part, so that a Put can
// choose between one PutObject and a multipart upload, and never sends all of a content that
// turns out to be too long.
type exactReader struct {
	r    io.Reader
	size int64 // -1 if unknown
	read int64
	done bool
	peek []byte // a byte read ahead, if any
}

// next returns the next part of up to n bytes. After the last part, done is set. Memory grows
// with what is read, so small content costs little.
func (e *exactReader) next(n int64) ([]byte, error) {
	var b bytes.Buffer
	if e.size >= 0 && e.size-e.read < n {
		b.Grow(int(e.size-e.read) + 1)
	}
	b.Write(e.peek)
	e.peek = nil
	// One byte more than a part, to tell a full part from the last one.
	if _, err := b.ReadFrom(io.LimitReader(e.r, n+1-int64(b.Len()))); err != nil {
		return nil, fmt.Errorf("read content: %w", err)
	}
	part := b.Bytes()
	if int64(len(part)) > n {
		e.peek = []byte{part[n]}
		part = part[:n]
	} else {
		e.done = true
	}
	e.read += int64(len(part))
	if e.size >= 0 {
		if e.read > e.size || (e.peek != nil && e.read == e.size) {
			return nil, fmt.Errorf("content is longer than the %d bytes announced", e.size)
		}
		if e.done && e.read != e.size {
			return nil, fmt.Errorf("content is %d bytes, not the %d announced", e.read, e.size)
		}
	}
	return part, nil
}
