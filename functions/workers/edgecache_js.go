//go:build js && wasm

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall/js"

	"github.com/modmirror/modmirror/shared/store/r2store"
)

// workersCache is the Workers Cache API's default cache (caches.default). It keeps nothing on
// a workers.dev hostname: the Worker needs a route on a zone (a custom domain) for it to work.
// It calls the API directly rather than through syumai/workers' cache package, which splits
// header values at commas ("public, max-age=60" came back as two values).
type workersCache struct{ cache js.Value }

// newWorkersCache returns the default cache, or nil if the runtime has none.
func newWorkersCache() edgeCache {
	caches := js.Global().Get("caches")
	if caches.Type() != js.TypeObject || caches.Get("default").Type() != js.TypeObject {
		return nil
	}
	return workersCache{cache: caches.Get("default")}
}

func (wc workersCache) match(ctx context.Context, key string) (*http.Response, error) {
	res, err := r2store.Await(ctx, wc.cache.Call("match", key))
	if err != nil {
		return nil, fmt.Errorf("cache match %s: %w", key, err)
	}
	if res.IsUndefined() || res.IsNull() {
		return nil, nil
	}
	hdr := http.Header{}
	entries := js.Global().Get("Array").Call("from", res.Get("headers").Call("entries"))
	for i := range entries.Length() {
		e := entries.Index(i)
		hdr[http.CanonicalHeaderKey(e.Index(0).String())] = []string{e.Index(1).String()}
	}
	return &http.Response{StatusCode: res.Get("status").Int(), Header: hdr, Body: &jsBody{ctx: ctx, res: res}}, nil
}

func (wc workersCache) put(ctx context.Context, key string, resp *http.Response) error {
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	headers := js.Global().Get("Headers").New()
	for k, vs := range resp.Header {
		for _, v := range vs {
			headers.Call("append", k, v)
		}
	}
	body := js.Global().Get("Uint8Array").New(len(data))
	js.CopyBytesToJS(body, data)
	init := map[string]any{"status": resp.StatusCode, "headers": headers}
	res := js.Global().Get("Response").New(body, init)
	if _, err := r2store.Await(ctx, wc.cache.Call("put", key, res)); err != nil {
		return fmt.Errorf("cache put %s: %w", key, err)
	}
	return nil
}

// jsBody is a cached response's body. Written to the Worker's ResponseWriter it hands the
// stream over as it is (the bytes never enter Go); read, it is read whole (it is small).
type jsBody struct {
	ctx    context.Context
	res    js.Value
	r      *bytes.Reader
	handed bool
}

func (b *jsBody) WriteTo(w io.Writer) (int64, error) {
	if raw, ok := w.(rawBodyWriter); ok && b.r == nil && !b.handed {
		raw.WriteRawJSBody(b.res.Get("body"))
		b.handed = true
		return 0, nil
	}
	return io.Copy(w, struct{ io.Reader }{b})
}

func (b *jsBody) Read(p []byte) (int, error) {
	if b.handed {
		return 0, errors.New("cached body: already handed to the response")
	}
	if b.r == nil {
		buf, err := r2store.Await(b.ctx, b.res.Call("arrayBuffer"))
		if err != nil {
			return 0, fmt.Errorf("read cached body: %w", err)
		}
		data := make([]byte, buf.Get("byteLength").Int())
		js.CopyBytesToGo(data, js.Global().Get("Uint8Array").New(buf))
		b.r = bytes.NewReader(data)
	}
	return b.r.Read(p)
}

func (b *jsBody) Close() error { return nil }
