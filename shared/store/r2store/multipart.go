//go:build js && wasm

package r2store

import (
	"context"
	"errors"
	"fmt"
	"syscall/js"

	"github.com/modmirror/modmirror/shared/store"
)

// PartSize is the size of every part of a multipart upload but the last: R2 wants them all
// equal and at least 5 MiB. A Pending holds one part in Go memory and at most two in the
// isolate's (one being uploaded while the next fills).
const PartSize = 8 << 20

// maxParts is R2's limit on the parts of an upload.
const maxParts = 10000

var _ store.StreamStager = (*Store)(nil)

// StageStream implements store.StreamStager with an R2 multipart upload: what is written goes
// up in parts of PartSize, and the object appears only when Commit completes the upload. Close
// before Commit aborts it, and an aborted upload leaves no object.
func (s *Store) StageStream(ctx context.Context, key string, o store.PutOptions) (store.Pending, error) {
	okey, err := s.objectKey(key)
	if err != nil {
		return nil, err
	}
	if err := o.Check(); err != nil {
		return nil, fmt.Errorf("r2 multipart %s: %w", key, err)
	}
	if o.IfMatch != "" {
		return nil, fmt.Errorf("r2 multipart %s: IfMatch is not supported", key)
	}
	hm := map[string]any{}
	if o.ContentType != "" {
		hm["contentType"] = o.ContentType
	}
	if o.CacheControl != "" {
		hm["cacheControl"] = o.CacheControl
	}
	p, err := call(s.bucket, "createMultipartUpload", okey, map[string]any{"httpMetadata": hm})
	if err != nil {
		return nil, fmt.Errorf("r2 multipart %s: create: %w", key, err)
	}
	up, err := Await(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("r2 multipart %s: create: %w", key, err)
	}
	return &Pending{s: s, ctx: ctx, key: key, opts: o, upload: up, buf: make([]byte, 0, PartSize)}, nil
}

// Pending is an R2 multipart upload in progress: a store.Pending.
type Pending struct {
	s      *Store
	ctx    context.Context
	key    string
	opts   store.PutOptions
	upload js.Value // the R2MultipartUpload
	buf    []byte   // the part being filled
	parts  []any    // the R2UploadedParts so far
	// inflight is the upload of the last full part, not awaited yet.
	inflight js.Value
	err      error // the first failure: the upload is then only aborted
	done     bool  // committed or aborted
}

// Write implements io.Writer, sending each part as it fills.
func (p *Pending) Write(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	if p.done {
		return 0, errors.New("r2 multipart: write after commit or close")
	}
	n := 0
	for len(b) > 0 {
		k := copy(p.buf[len(p.buf):cap(p.buf)], b)
		p.buf = p.buf[:len(p.buf)+k]
		b = b[k:]
		n += k
		if len(p.buf) == cap(p.buf) {
			if err := p.sendPart(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// sendPart starts uploading the buffered part, after waiting for the one before it.
func (p *Pending) sendPart() error {
	if err := p.settle(); err != nil {
		return err
	}
	if len(p.parts) >= maxParts {
		return p.fail(fmt.Errorf("over %d parts", maxParts))
	}
	data := bytesToJS(p.buf)
	p.buf = p.buf[:0]
	promise, err := call(p.upload, "uploadPart", len(p.parts)+1, data)
	if err != nil {
		return p.fail(fmt.Errorf("upload part %d: %w", len(p.parts)+1, err))
	}
	p.inflight = promise
	return nil
}

// settle waits for the part in flight, if any.
func (p *Pending) settle() error {
	if p.inflight.IsUndefined() {
		return nil
	}
	promise := p.inflight
	p.inflight = js.Value{}
	part, err := Await(p.ctx, promise)
	if err != nil {
		return p.fail(fmt.Errorf("upload part %d: %w", len(p.parts)+1, err))
	}
	p.parts = append(p.parts, part)
	return nil
}

func (p *Pending) fail(err error) error {
	if p.err == nil {
		p.err = fmt.Errorf("r2 multipart %s: %w", p.key, err)
	}
	return p.err
}

// Commit implements store.Pending: the last part goes up and the upload is completed. With
// IfAbsent, an object already under the key aborts the upload and returns store.ErrExist (R2's
// complete takes no condition: a write that lands between that check and the completion is
// replaced, which for the verified, immutable objects stored this way changes only the ETag).
func (p *Pending) Commit(ctx context.Context) (store.Info, error) {
	if p.err != nil {
		return store.Info{}, p.err
	}
	if p.done {
		return store.Info{}, errors.New("r2 multipart: commit after commit or close")
	}
	p.ctx = ctx
	if len(p.buf) > 0 || len(p.parts) == 0 && p.inflight.IsUndefined() {
		if err := p.sendPart(); err != nil {
			return store.Info{}, err
		}
	}
	if err := p.settle(); err != nil {
		return store.Info{}, err
	}
	if p.opts.IfAbsent {
		if _, err := p.s.Stat(ctx, p.key); err == nil {
			return store.Info{}, fmt.Errorf("r2 multipart %s: %w", p.key, store.ErrExist)
		} else if !errors.Is(err, store.ErrNotExist) {
			return store.Info{}, p.fail(err)
		}
	}
	promise, err := call(p.upload, "complete", p.parts)
	if err != nil {
		return store.Info{}, p.fail(fmt.Errorf("complete: %w", err))
	}
	obj, err := Await(ctx, promise)
	if err != nil {
		return store.Info{}, p.fail(fmt.Errorf("complete: %w", err))
	}
	p.done = true
	p.buf = nil
	return info(p.key, obj), nil
}

// Close implements store.Pending: an upload not committed is aborted, and nothing remains of
// it.
func (p *Pending) Close() error {
	if p.done {
		return nil
	}
	p.done = true
	p.buf = nil
	ctx := context.WithoutCancel(p.ctx)
	if !p.inflight.IsUndefined() {
		_, _ = Await(ctx, p.inflight) // a part still going up would outlive the abort
		p.inflight = js.Value{}
	}
	promise, err := call(p.upload, "abort")
	if err == nil {
		_, err = Await(ctx, promise)
	}
	if err != nil {
		return fmt.Errorf("r2 multipart %s: abort: %w", p.key, err)
	}
	return nil
}
