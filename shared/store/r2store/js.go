//go:build js && wasm

package r2store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall/js"
)

// jsError is an exception thrown or a promise rejected on the JavaScript side.
type jsError struct{ msg string }

func (e *jsError) Error() string { return e.msg }

// errorOf turns a JavaScript rejection reason into a Go error.
func errorOf(v js.Value) error {
	if v.Type() == js.TypeObject {
		if msg := v.Get("message"); msg.Type() == js.TypeString {
			return &jsError{msg: msg.String()}
		}
	}
	return &jsError{msg: v.Call("toString").String()}
}

// Await waits for a JavaScript promise to settle (the Worker's other bindings, its Cache API,
// use it too). A promise cannot be canceled, so a done ctx only stops the wait: the caller must
// not rely on the operation not happening. A rejection is an error with the reason's message.
func Await(ctx context.Context, promise js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1)
	var then, catch js.Func
	then = js.FuncOf(func(_ js.Value, args []js.Value) any {
		ch <- result{v: args[0]}
		return nil
	})
	catch = js.FuncOf(func(_ js.Value, args []js.Value) any {
		ch <- result{err: errorOf(args[0])}
		return nil
	})
	promise.Call("then", then, catch)
	select {
	case r := <-ch:
		then.Release()
		catch.Release()
		return r.v, r.err
	case <-ctx.Done():
		// The callbacks stay registered: the promise may still settle and call them.
		return js.Value{}, ctx.Err()
	}
}

// call calls method on v and turns a synchronous exception into an error.
func call(v js.Value, method string, args ...any) (res js.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			if jerr, ok := r.(js.Error); ok {
				err = errorOf(jerr.Value)
				return
			}
			err = fmt.Errorf("%s: %v", method, r)
		}
	}()
	return v.Call(method, args...), nil
}

// bytesToJS copies p into a new Uint8Array.
func bytesToJS(p []byte) js.Value {
	a := js.Global().Get("Uint8Array").New(len(p))
	js.CopyBytesToJS(a, p)
	return a
}

// streamReader reads a JavaScript ReadableStream of Uint8Arrays (an R2 object's body).
type streamReader struct {
	ctx    context.Context
	stream js.Value
	reader js.Value // its default reader, once reading started
	chunk  []byte   // what is left of the last chunk
	err    error
}

func newStreamReader(ctx context.Context, stream js.Value) *streamReader {
	return &streamReader{ctx: ctx, stream: stream}
}

// Read implements io.Reader.
func (r *streamReader) Read(p []byte) (int, error) {
	for len(r.chunk) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.reader.IsUndefined() {
			if r.stream.IsNull() || r.stream.IsUndefined() {
				r.err = io.EOF
				continue
			}
			rd, err := call(r.stream, "getReader")
			if err != nil {
				r.err = fmt.Errorf("read R2 object: %w", err)
				continue
			}
			r.reader = rd
		}
		res, err := Await(r.ctx, r.reader.Call("read"))
		if err != nil {
			r.err = fmt.Errorf("read R2 object: %w", err)
			continue
		}
		if res.Get("done").Bool() {
			r.err = io.EOF
			continue
		}
		v := res.Get("value")
		buf := make([]byte, v.Get("byteLength").Int())
		js.CopyBytesToGo(buf, v)
		r.chunk = buf
	}
	n := copy(p, r.chunk)
	r.chunk = r.chunk[n:]
	return n, nil
}

// Close cancels the stream if it was not read to the end.
func (r *streamReader) Close() error {
	if r.err == io.EOF {
		return nil
	}
	if r.err == nil {
		r.err = errors.New("read R2 object: closed")
	}
	var target js.Value
	switch {
	case !r.reader.IsUndefined():
		target = r.reader
	case !r.stream.IsNull() && !r.stream.IsUndefined():
		target = r.stream
	default:
		return nil
	}
	if p, err := call(target, "cancel"); err == nil {
		// Settle quietly: a rejection here has nobody to report to.
		p.Call("catch", js.FuncOf(func(js.Value, []js.Value) any { return nil }))
	}
	return nil
}
