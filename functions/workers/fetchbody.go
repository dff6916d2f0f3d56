//go:build js && wasm

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"syscall/js"
	"time"
)

// bodyTransport reads fetch responses' bodies with a fetchBody instead of syumai/workers' reader,
// which allocates two Go buffers and two JavaScript callbacks for every chunk of the stream (4
// KiB under workerd): for a large zip, tens of thousands of chunks, that cost most of a fill's
// time. A fetchBody reads workerd's byte streams at least 128 KiB at a time, and honours the
// request's context, which syumai/workers' reader does not: see fetchBody.Read.
type bodyTransport struct{ next http.RoundTripper }

// rawJSBody is implemented by syumai/workers' response bodies.
type rawJSBody interface{ GetRawJSBody() js.Value }

func (t bodyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if raw, ok := resp.Body.(rawJSBody); ok {
		if stream := raw.GetRawJSBody(); stream.Type() == js.TypeObject {
			resp.Body = newFetchBody(req.Context(), stream, resp.ContentLength)
		}
	}
	return resp, nil
}

// fetchBody reads a ReadableStream of Uint8Arrays into Go through one buffer and one pair of
// callbacks for its whole life. Close may come from another goroutine while a Read waits, and a
// Read waiting on the stream ends when ctx is done.
type fetchBody struct {
	ctx         context.Context // the request's: once done, the body fails with its cause
	stream      js.Value
	then, catch js.Func
	results     chan jsResult
	buf         []byte // reused for every chunk
	chunk       []byte // what is left of the last chunk, in buf

	mu       sync.Mutex
	reader   js.Value // the stream's reader, once reading started
	view     js.Value // with a BYOB reader: the Uint8Array the next read fills
	viewSize int
	pending  bool // a read is in flight: its callbacks must live until it settles
	released bool
	err      error // the body's end: io.EOF, a failure, or closed
}

type jsResult struct {
	v   js.Value
	err error
}

// newFetchBody returns a reader of stream, whose length is size (-1: unknown), for the request
// whose context is ctx.
func newFetchBody(ctx context.Context, stream js.Value, size int64) *fetchBody {
	b := &fetchBody{ctx: ctx, stream: stream, results: make(chan jsResult, 1), viewSize: byobSize}
	if size >= 0 && size < byobSize {
		b.viewSize = max(int(size), 1) // a small body takes a small buffer
	}
	b.then = js.FuncOf(func(_ js.Value, args []js.Value) any {
		b.results <- jsResult{v: args[0]}
		return nil
	})
	b.catch = js.FuncOf(func(_ js.Value, args []js.Value) any {
		b.results <- jsResult{err: fmt.Errorf("read the fetch body: %s", args[0].Call("toString").String())}
		return nil
	})
	return b
}

// Read implements io.Reader.
func (b *fetchBody) Read(p []byte) (int, error) {
	for len(b.chunk) == 0 {
		b.mu.Lock()
		if b.err != nil {
			err := b.err
			b.release()
			b.mu.Unlock()
			return 0, err
		}
		if b.reader.IsUndefined() {
			b.startReading()
		}
		b.pending = true
		if b.view.IsUndefined() {
			b.reader.Call("read").Call("then", b.then, b.catch)
		} else {
			b.reader.Call("readAtLeast", min(byobMin, b.viewSize), b.view).Call("then", b.then, b.catch)
		}
		b.mu.Unlock()

		res, ok := b.await()
		if !ok {
			return 0, b.err
		}
		b.mu.Lock()
		b.pending = false
		switch {
		case b.err != nil: // closed meanwhile
		case res.err != nil:
			b.err = res.err
		default:
			// A BYOB read may end the stream with its last bytes.
			v := res.v.Get("value")
			n := 0
			if v.Type() == js.TypeObject {
				n = v.Get("byteLength").Int()
			}
			if cap(b.buf) < n {
				b.buf = make([]byte, n)
			}
			b.chunk = b.buf[:js.CopyBytesToGo(b.buf[:n], v)]
			if !b.view.IsUndefined() && v.Type() == js.TypeObject {
				// The read took the view's buffer over and hands it back in its answer.
				b.view = js.Global().Get("Uint8Array").New(v.Get("buffer"))
			}
			if res.v.Get("done").Bool() {
				b.err = io.EOF
			}
		}
		b.mu.Unlock()
	}
	n := copy(p, b.chunk)
	b.chunk = b.chunk[n:]
	return n, nil
}

// await waits for the read in flight to settle, or for the request's context to end. A read
// waits on the upstream's next bytes, and nothing but the stream's cancel settles it early: the
// proxy core's timeouts (the idle timeout of a body that stalls, the fill's deadline) cancel the
// request's context, which the fetch API knows nothing of, so without this a stalled body held
// its Read, and the client, until workerd gave up on the request. When ctx ends first, the
// stream is canceled (which settles the read; its callbacks are freed then) and ok is false,
// with b.err the context's cause.
func (b *fetchBody) await() (res jsResult, ok bool) {
	select {
	case res = <-b.results:
		return res, true
	case <-b.ctx.Done():
	}
	b.mu.Lock()
	if b.err == nil {
		b.err = fmt.Errorf("read the fetch body: %w", context.Cause(b.ctx))
		b.cancel()
	}
	b.mu.Unlock()
	// The cancel settles the read at once; should it not, the callbacks stay (a Go instance
	// lives for one request) rather than the Read waiting on.
	select {
	case <-b.results:
		b.mu.Lock()
		b.pending = false
		b.release()
		b.mu.Unlock()
	case <-time.After(time.Second):
	}
	return res, false
}

// Sizes of a BYOB reader's reads.
const (
	byobSize = 256 << 10 // the buffer it reads into
	byobMin  = 128 << 10 // the least a read waits for, unless the stream ends
)

// startReading takes a reader of the stream: a BYOB one with workerd's readAtLeast where there
// is one (a byte stream, as fetch bodies are), else the default reader. b.mu is held.
func (b *fetchBody) startReading() {
	if r, ok := tryCall(b.stream, "getReader", map[string]any{"mode": "byob"}); ok {
		if r.Get("readAtLeast").Type() == js.TypeFunction {
			b.reader = r
			b.view = js.Global().Get("Uint8Array").New(b.viewSize)
			return
		}
		r.Call("releaseLock")
	}
	b.reader = b.stream.Call("getReader")
}

// tryCall calls method on v, reporting an exception as not ok.
func tryCall(v js.Value, method string, args ...any) (res js.Value, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return v.Call(method, args...), true
}

// release frees the callbacks once no read can call them; b.mu is held.
func (b *fetchBody) release() {
	if !b.released && !b.pending {
		b.then.Release()
		b.catch.Release()
		b.released = true
	}
}

// Close implements io.Closer: a body not read to its end is canceled (which settles a read in
// flight, whose Read then releases the callbacks).
func (b *fetchBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == io.EOF {
		b.release()
		return nil
	}
	if b.err == nil {
		b.err = errors.New("read the fetch body: closed")
		b.cancel()
	}
	b.release()
	return nil
}

// cancel cancels the stream through its reader, if one was taken; b.mu is held.
func (b *fetchBody) cancel() {
	target := b.stream
	if !b.reader.IsUndefined() {
		target = b.reader
	}
	target.Call("cancel").Call("catch", js.FuncOf(func(js.Value, []js.Value) any { return nil }))
}
