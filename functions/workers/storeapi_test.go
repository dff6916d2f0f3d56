//go:build !(js && wasm)

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/modmirror/modmirror/shared/store"
)

// apiStore is a store.Store whose every operation is one request to the test Worker's
// /_storeapi/ endpoint (storeapi.go), which performs it with r2store on the R2 binding inside
// workerd: the conformance suite runs here, the store under test runs there.
//
// What the adapter adds is transport only: content streams in the request body (always
// chunked, with the announced size as a parameter, so that a size mismatch reaches R2 rather
// than being caught by net/http), errors come back as their kind. Its Seek is local; its
// ReadAt is a ranged R2 get.
type apiStore struct {
	base   string // the Worker's URL
	prefix string // the r2store Prefix: one per store the suite asks for
	client *http.Client
}

var (
	_ store.Store  = (*apiStore)(nil)
	_ store.Walker = (*apiStore)(nil)
)

func (s *apiStore) url(op string, params url.Values) string {
	params.Set("prefix", s.prefix)
	return s.base + "/_storeapi/" + op + "?" + params.Encode()
}

// do sends a request and decodes an error answer.
func (s *apiStore) do(req *http.Request) (*http.Response, error) {
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	var e struct{ Kind, Message string }
	body, _ := io.ReadAll(resp.Body)
	if json.Unmarshal(body, &e) != nil || resp.StatusCode != http.StatusConflict {
		return nil, fmt.Errorf("store API: %s: %q", resp.Status, body)
	}
	kinds := map[string]error{
		"notexist":     store.ErrNotExist,
		"exist":        store.ErrExist,
		"precondition": store.ErrPrecondition,
		"invalidkey":   store.ErrInvalidKey,
	}
	if k, ok := kinds[e.Kind]; ok {
		return nil, fmt.Errorf("%s (in the Worker): %w", e.Message, k)
	}
	return nil, fmt.Errorf("%s (in the Worker)", e.Message)
}

func (s *apiStore) get(ctx context.Context, op string, params url.Values) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url(op, params), nil)
	if err != nil {
		return nil, err
	}
	return s.do(req)
}

func decode[T any](resp *http.Response, err error) (T, error) {
	var v T
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return v, fmt.Errorf("store API: decode: %w", err)
	}
	return v, nil
}

// Stat implements store.Store.
func (s *apiStore) Stat(ctx context.Context, key string) (store.Info, error) {
	return decode[store.Info](s.get(ctx, "stat", url.Values{"key": {key}}))
}

// Open implements store.Store.
func (s *apiStore) Open(ctx context.Context, key string) (store.Object, error) {
	resp, err := s.get(ctx, "open", url.Values{"key": {key}})
	if err != nil {
		return nil, err
	}
	var info store.Info
	if err := json.Unmarshal([]byte(resp.Header.Get("X-Store-Info")), &info); err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("store API: X-Store-Info: %w", err)
	}
	return &apiObject{s: s, ctx: ctx, info: info, body: resp.Body}, nil
}

// errReader remembers the error its reader returned, so that Put can wrap the content's own
// error as the contract asks, whatever net/http made of it.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// Put implements store.Store.
func (s *apiStore) Put(ctx context.Context, key string, r io.Reader, size int64, o store.PutOptions) (store.Info, error) {
	params := url.Values{"key": {key}, "size": {strconv.FormatInt(size, 10)}, "ifmatch": {o.IfMatch}, "ct": {o.ContentType}, "cc": {o.CacheControl}}
	if o.IfAbsent {
		params.Set("ifabsent", "1")
	}
	if store.CheckKey(key) != nil {
		// Ask the Worker to store nothing under the key: it must refuse the key before it reads
		// any content, so the content stays unread here too (the suite checks that).
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.url("put", params), http.NoBody)
		if err != nil {
			return store.Info{}, err
		}
		return decode[store.Info](s.do(req))
	}
	er := &errReader{r: r}
	// A plain io.Reader: net/http sends it chunked, whatever its length.
	body := struct{ io.Reader }{er}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.url("put", params), body)
	if err != nil {
		return store.Info{}, err
	}
	info, err := decode[store.Info](s.do(req))
	if err != nil && er.err != nil {
		return store.Info{}, fmt.Errorf("%v: %w", err, er.err)
	}
	return info, err
}

// Walk implements store.Walker.
func (s *apiStore) Walk(ctx context.Context, prefix string, fn func(store.Info) error) error {
	infos, err := decode[[]store.Info](s.get(ctx, "walk", url.Values{"under": {prefix}}))
	if err != nil {
		return err
	}
	for _, info := range infos {
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// apiObject is an open object: its content streams from the Worker (which hands R2's stream to
// the response); Seek and ReadAt make ranged reads in the Worker.
type apiObject struct {
	s    *apiStore
	ctx  context.Context
	info store.Info
	body io.ReadCloser // nil after a Seek until the next Read
	off  int64
}

func (o *apiObject) Info() store.Info { return o.info }

func (o *apiObject) Read(p []byte) (int, error) {
	if o.body == nil {
		// After a Seek: read on from the offset, in ranged reads of up to 1 MiB.
		if o.off >= o.info.Size {
			return 0, io.EOF
		}
		n, err := o.ReadAt(p[:min(len(p), 1<<20)], o.off)
		o.off += int64(n)
		if err == io.EOF && n > 0 {
			err = nil
		}
		return n, err
	}
	n, err := o.body.Read(p)
	o.off += int64(n)
	return n, err
}

func (o *apiObject) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += o.off
	case io.SeekEnd:
		offset += o.info.Size
	}
	if offset < 0 {
		return 0, errors.New("negative position")
	}
	if o.body != nil {
		o.body.Close()
		o.body = nil
	}
	o.off = offset
	return offset, nil
}

// ReadAt is r2store's ReadAt, run in the Worker.
func (o *apiObject) ReadAt(p []byte, off int64) (int, error) {
	resp, err := o.s.get(o.ctx, "readat", url.Values{"key": {o.info.Key}, "off": {strconv.FormatInt(off, 10)}, "n": {strconv.Itoa(len(p))}})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, resp.Body); err != nil {
		return 0, err
	}
	n := copy(p, buf.Bytes())
	if resp.Header.Get("X-Store-EOF") == "1" {
		return n, io.EOF
	}
	return n, nil
}

func (o *apiObject) Close() error {
	if o.body == nil {
		return nil
	}
	return o.body.Close()
}
