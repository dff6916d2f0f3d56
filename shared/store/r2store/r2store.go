//go:build js && wasm

package r2store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall/js"
	"time"

	"github.com/modmirror/modmirror/shared/store"
)

// Defaults for the zero fields of Options.
const (
	// DefaultMaxUnsized bounds a Put of unknown size, which is read into memory first.
	DefaultMaxUnsized = 16 << 20
	// DefaultInlinePut is the size up to which a Put of known size is sent as one buffer
	// rather than streamed.
	DefaultInlinePut = 1 << 20
	// chunkSize is how much a streaming Put reads and writes at a time.
	chunkSize = 256 << 10
)

// Options tune a Store.
type Options struct {
	// Prefix is prepended, with a slash, to every key: "" stores keys as they are (the bucket
	// is then itself a GOPROXY). It must itself be a valid key when not empty.
	Prefix string
	// MaxUnsized bounds a Put of unknown size; default DefaultMaxUnsized.
	MaxUnsized int64
}

// Store is a store.Store on an R2 bucket binding.
type Store struct {
	bucket     js.Value
	prefix     string
	maxUnsized int64
}

var (
	_ store.Store  = (*Store)(nil)
	_ store.Walker = (*Store)(nil)
)

// New returns a Store on bucket, an R2 bucket binding (cloudflare.GetBinding("MODULES")).
func New(bucket js.Value, o Options) (*Store, error) {
	if bucket.Type() != js.TypeObject || bucket.Get("put").Type() != js.TypeFunction {
		return nil, errors.New("r2store: the binding is not an R2 bucket (is the R2 binding configured in wrangler.toml?)")
	}
	if o.Prefix != "" {
		if err := store.CheckKey(o.Prefix); err != nil {
			return nil, fmt.Errorf("r2store: prefix: %w", err)
		}
	}
	if o.MaxUnsized <= 0 {
		o.MaxUnsized = DefaultMaxUnsized
	}
	return &Store{bucket: bucket, prefix: o.Prefix, maxUnsized: o.MaxUnsized}, nil
}

// objectKey returns the bucket key for key, after checking it.
func (s *Store) objectKey(key string) (string, error) {
	if err := store.CheckKey(key); err != nil {
		return "", err
	}
	if s.prefix == "" {
		return key, nil
	}
	return s.prefix + "/" + key, nil
}

// info converts an R2Object to an Info under key.
func info(key string, obj js.Value) store.Info {
	i := store.Info{
		Key:  key,
		Size: int64(obj.Get("size").Float()),
		ETag: obj.Get("httpEtag").String(),
	}
	if up := obj.Get("uploaded"); up.Type() == js.TypeObject {
		i.ModTime = time.UnixMilli(int64(up.Call("getTime").Float()))
	}
	if hm := obj.Get("httpMetadata"); hm.Type() == js.TypeObject {
		if v := hm.Get("contentType"); v.Type() == js.TypeString {
			i.ContentType = v.String()
		}
		if v := hm.Get("cacheControl"); v.Type() == js.TypeString {
			i.CacheControl = v.String()
		}
	}
	return i
}

// Stat implements store.Store.
func (s *Store) Stat(ctx context.Context, key string) (store.Info, error) {
	okey, err := s.objectKey(key)
	if err != nil {
		return store.Info{}, err
	}
	p, err := call(s.bucket, "head", okey)
	if err != nil {
		return store.Info{}, fmt.Errorf("r2 head %s: %w", key, err)
	}
	obj, err := Await(ctx, p)
	if err != nil {
		return store.Info{}, fmt.Errorf("r2 head %s: %w", key, err)
	}
	if obj.IsNull() || obj.IsUndefined() {
		return store.Info{}, fmt.Errorf("r2 head %s: %w", key, store.ErrNotExist)
	}
	return info(key, obj), nil
}

// Open implements store.Store. The Object reads the binding's stream; it also implements
// io.WriterTo (handing the stream to a Worker response) and io.ReaderAt (ranged gets).
func (s *Store) Open(ctx context.Context, key string) (store.Object, error) {
	okey, err := s.objectKey(key)
	if err != nil {
		return nil, err
	}
	p, err := call(s.bucket, "get", okey)
	if err != nil {
		return nil, fmt.Errorf("r2 get %s: %w", key, err)
	}
	obj, err := Await(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("r2 get %s: %w", key, err)
	}
	if obj.IsNull() || obj.IsUndefined() {
		return nil, fmt.Errorf("r2 get %s: %w", key, store.ErrNotExist)
	}
	return &Object{
		s:      s,
		ctx:    ctx,
		okey:   okey,
		info:   info(key, obj),
		stream: obj.Get("body"),
		body:   newStreamReader(ctx, obj.Get("body")),
	}, nil
}

// OpenRange opens length bytes of the object under key from offset, as a ranged get: for
// answering HTTP Range requests without reading the rest. The Object's Info describes the
// whole object.
func (s *Store) OpenRange(ctx context.Context, key string, offset, length int64) (*Object, error) {
	okey, err := s.objectKey(key)
	if err != nil {
		return nil, err
	}
	body, obj, err := s.getRange(ctx, okey, offset, length)
	if err != nil {
		return nil, fmt.Errorf("r2 get %s: %w", key, err)
	}
	return &Object{s: s, ctx: ctx, okey: okey, info: info(key, obj), stream: body, body: newStreamReader(ctx, body)}, nil
}

func (s *Store) getRange(ctx context.Context, okey string, offset, length int64) (body, obj js.Value, err error) {
	rng := map[string]any{"offset": float64(offset), "length": float64(length)}
	p, err := call(s.bucket, "get", okey, map[string]any{"range": rng})
	if err != nil {
		return js.Value{}, js.Value{}, err
	}
	obj, err = Await(ctx, p)
	if err != nil {
		return js.Value{}, js.Value{}, err
	}
	if obj.IsNull() || obj.IsUndefined() {
		return js.Value{}, js.Value{}, store.ErrNotExist
	}
	return obj.Get("body"), obj, nil
}

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, o store.PutOptions) (store.Info, error) {
	okey, err := s.objectKey(key)
	if err != nil {
		return store.Info{}, err
	}
	if err := o.Check(); err != nil {
		return store.Info{}, fmt.Errorf("r2 put %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return store.Info{}, fmt.Errorf("r2 put %s: %w", key, err)
	}
	opts := map[string]any{}
	switch {
	case o.IfAbsent:
		opts["onlyIf"] = map[string]any{"etagDoesNotMatch": "*"}
	case o.IfMatch != "":
		etag, ok := strongETag(o.IfMatch)
		if !ok {
			// Drain nothing: a precondition that can never hold fails before reading.
			return store.Info{}, fmt.Errorf("r2 put %s: if-match %s: %w", key, o.IfMatch, store.ErrPrecondition)
		}
		opts["onlyIf"] = map[string]any{"etagMatches": etag}
	}
	hm := map[string]any{}
	if o.ContentType != "" {
		hm["contentType"] = o.ContentType
	}
	if o.CacheControl != "" {
		hm["cacheControl"] = o.CacheControl
	}
	if len(hm) > 0 {
		opts["httpMetadata"] = hm
	}

	var obj js.Value
	if size < 0 || size <= DefaultInlinePut {
		obj, err = s.putBuffered(ctx, okey, r, size, opts)
	} else {
		obj, err = s.putStreaming(ctx, okey, r, size, opts)
	}
	if err != nil {
		return store.Info{}, fmt.Errorf("r2 put %s: %w", key, err)
	}
	if obj.IsNull() || obj.IsUndefined() {
		if o.IfAbsent {
			return store.Info{}, fmt.Errorf("r2 put %s: %w", key, store.ErrExist)
		}
		return store.Info{}, fmt.Errorf("r2 put %s: if-match %s: %w", key, o.IfMatch, store.ErrPrecondition)
	}
	return info(key, obj), nil
}

// strongETag returns the unquoted form of a quoted strong ETag, as R2's etagMatches takes it.
func strongETag(etag string) (string, bool) {
	if len(etag) < 3 || etag[0] != '"' || etag[len(etag)-1] != '"' {
		return "", false
	}
	inner := etag[1 : len(etag)-1]
	if strings.ContainsAny(inner, `"*, `) {
		return "", false
	}
	return inner, true
}

// putBuffered reads r whole (at most maxUnsized bytes, or exactly size) and puts it.
func (s *Store) putBuffered(ctx context.Context, okey string, r io.Reader, size int64, opts map[string]any) (js.Value, error) {
	limit := s.maxUnsized
	if size >= 0 {
		limit = size
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return js.Value{}, fmt.Errorf("read content: %w", err)
	}
	if int64(len(data)) > limit {
		if size >= 0 {
			return js.Value{}, fmt.Errorf("content is longer than the %d bytes announced", size)
		}
		return js.Value{}, fmt.Errorf("content of unknown size is over the %d-byte limit", limit)
	}
	if size >= 0 && int64(len(data)) != size {
		return js.Value{}, fmt.Errorf("content is %d bytes, not the %d announced", len(data), size)
	}
	if err := ctx.Err(); err != nil {
		return js.Value{}, err
	}
	p, err := call(s.bucket, "put", okey, bytesToJS(data), opts)
	if err != nil {
		return js.Value{}, err
	}
	return Await(ctx, p)
}

// putStreaming streams exactly size bytes of r into the bucket through a FixedLengthStream. On
// any failure the writer is aborted, so R2 stores nothing.
func (s *Store) putStreaming(ctx context.Context, okey string, r io.Reader, size int64, opts map[string]any) (js.Value, error) {
	fls := js.Global().Get("FixedLengthStream")
	if fls.Type() != js.TypeFunction {
		return js.Value{}, errors.New("no FixedLengthStream: not running in a Worker")
	}
	stream := fls.New(float64(size))
	writer, err := call(stream.Get("writable"), "getWriter")
	if err != nil {
		return js.Value{}, err
	}
	putPromise, err := call(s.bucket, "put", okey, stream.Get("readable"), opts)
	if err != nil {
		return js.Value{}, err
	}
	// The put settles when the stream ends or fails; settle it in the background so that an
	// early rejection (R2 refusing the write) is seen while we are still writing.
	type result struct {
		v   js.Value
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := Await(context.WithoutCancel(ctx), putPromise)
		done <- result{v, err}
	}()
	abort := func(cause error) (js.Value, error) {
		if p, err := call(writer, "abort", js.Global().Get("Error").New(cause.Error())); err == nil {
			_, _ = Await(context.WithoutCancel(ctx), p)
		}
		<-done // the put rejects once the stream is aborted
		return js.Value{}, cause
	}
	buf := make([]byte, chunkSize)
	var written int64
	for written < size {
		if err := ctx.Err(); err != nil {
			return abort(err)
		}
		n, rerr := io.ReadFull(r, buf[:min(int64(len(buf)), size-written)])
		if n > 0 {
			select {
			case res := <-done:
				// R2 gave up on the body before it was complete.
				if res.err == nil {
					res.err = errors.New("the put finished before the body was complete")
				}
				return js.Value{}, res.err
			default:
			}
			p, err := call(writer, "write", bytesToJS(buf[:n]))
			if err != nil {
				return abort(err)
			}
			if _, err := Await(ctx, p); err != nil {
				return abort(err)
			}
			written += int64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			if written < size {
				return abort(fmt.Errorf("content is %d bytes, not the %d announced", written, size))
			}
			break
		}
		if rerr != nil {
			return abort(fmt.Errorf("read content: %w", rerr))
		}
	}
	// The content must end here.
	var one [1]byte
	if n, _ := io.ReadFull(r, one[:]); n > 0 {
		return abort(fmt.Errorf("content is longer than the %d bytes announced", size))
	}
	if err := ctx.Err(); err != nil {
		return abort(err)
	}
	p, err := call(writer, "close")
	if err != nil {
		return abort(err)
	}
	if _, err := Await(ctx, p); err != nil {
		return abort(err)
	}
	res := <-done
	return res.v, res.err
}

// Walk implements store.Walker with the binding's list, which returns keys in lexical order.
func (s *Store) Walk(ctx context.Context, prefix string, fn func(store.Info) error) error {
	full := prefix
	if s.prefix != "" {
		full = s.prefix + "/" + prefix
	}
	cursor := ""
	for {
		opts := map[string]any{"prefix": full, "limit": 1000, "include": []any{"httpMetadata"}}
		if cursor != "" {
			opts["cursor"] = cursor
		}
		p, err := call(s.bucket, "list", opts)
		if err != nil {
			return fmt.Errorf("r2 list %q: %w", prefix, err)
		}
		res, err := Await(ctx, p)
		if err != nil {
			return fmt.Errorf("r2 list %q: %w", prefix, err)
		}
		objs := res.Get("objects")
		for i := range objs.Length() {
			obj := objs.Index(i)
			key := obj.Get("key").String()
			if s.prefix != "" {
				key = strings.TrimPrefix(key, s.prefix+"/")
			}
			if err := fn(info(key, obj)); err != nil {
				return err
			}
		}
		if !res.Get("truncated").Truthy() {
			return nil
		}
		cursor = res.Get("cursor").String()
	}
}

// Object is an open R2 object.
type Object struct {
	s      *Store
	ctx    context.Context
	okey   string
	info   store.Info
	stream js.Value
	body   *streamReader
	handed bool // the stream went to a response
}

var (
	_ store.Object = (*Object)(nil)
	_ io.WriterTo  = (*Object)(nil)
	_ io.ReaderAt  = (*Object)(nil)
)

// Info implements store.Object.
func (o *Object) Info() store.Info { return o.info }

// Read implements io.Reader: the object's bytes, copied from the binding's stream into Go.
func (o *Object) Read(p []byte) (int, error) {
	if o.handed {
		return 0, errors.New("r2 object: body already handed to the response")
	}
	return o.body.Read(p)
}

// Close implements io.Closer.
func (o *Object) Close() error {
	if o.handed {
		return nil
	}
	return o.body.Close()
}

// rawBodyWriter is implemented by syumai/workers' ResponseWriter: it takes a ReadableStream as
// the response body, which then never passes through Go.
type rawBodyWriter interface {
	WriteRawJSBody(body js.Value)
}

// WriteTo implements io.WriterTo. If w is, or wraps (through Unwrap() http.ResponseWriter, as
// http.ResponseController does), a Worker ResponseWriter that takes a raw body, the object's
// stream is handed to it and the bytes never enter Go; n is then the object's size. Otherwise
// the bytes are copied.
func (o *Object) WriteTo(w io.Writer) (int64, error) {
	if o.body.reader.IsUndefined() && !o.handed {
		for target := w; target != nil; {
			if raw, ok := target.(rawBodyWriter); ok {
				raw.WriteRawJSBody(o.stream)
				o.handed = true
				return o.info.Size, nil
			}
			u, ok := target.(interface{ Unwrap() http.ResponseWriter })
			if !ok {
				break
			}
			target = u.Unwrap()
		}
	}
	return io.Copy(w, struct{ io.Reader }{o})
}

// ReadAt implements io.ReaderAt with a ranged get.
func (o *Object) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("r2 object: negative offset")
	}
	if off >= o.info.Size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), o.info.Size-off)
	if n == 0 {
		return 0, nil
	}
	body, _, err := o.s.getRange(o.ctx, o.okey, off, n)
	if err != nil {
		return 0, fmt.Errorf("r2 ranged get %s: %w", o.info.Key, err)
	}
	r := newStreamReader(o.ctx, body)
	defer r.Close()
	got, err := io.ReadFull(r, p[:n])
	if err != nil {
		return got, fmt.Errorf("r2 ranged get %s: %w", o.info.Key, err)
	}
	if got < len(p) {
		return got, io.EOF
	}
	return got, nil
}
