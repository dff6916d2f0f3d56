//go:build js && wasm

package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"syscall/js"
	"time"
)

// subrequests counts what Cloudflare counts against a request's limit of 1,000 subrequests:
// fetches (the upstream, the checksum database) and R2 calls. A Go instance serves one request,
// so an instance's counts are its request's.
type subrequests struct{ fetches, r2 atomic.Int64 }

// transport counts every fetch made through rt.
func (s *subrequests) transport(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		s.fetches.Add(1)
		return rt.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// r2Methods are the R2 bucket binding's methods, each call one subrequest.
var r2Methods = [...]string{"head", "get", "put", "list", "delete", "createMultipartUpload"}

// multipartMethods are an R2MultipartUpload's methods, each call one subrequest.
var multipartMethods = [...]string{"uploadPart", "complete", "abort"}

// bucket returns an object that stands for the R2 binding b, counting each call of its methods
// (and of a multipart upload's, which resumeMultipartUpload and createMultipartUpload return).
func (s *subrequests) bucket(b js.Value) js.Value {
	if b.Type() != js.TypeObject || b.Get("put").Type() != js.TypeFunction {
		return b // not an R2 binding: r2store.New says so
	}
	w := js.Global().Get("Object").New()
	for _, m := range r2Methods {
		w.Set(m, s.counted(b, m))
	}
	w.Set("resumeMultipartUpload", js.FuncOf(func(_ js.Value, args []js.Value) any {
		return s.multipart(b.Call("resumeMultipartUpload", jsArgs(args)...))
	}))
	return w
}

// counted is b's method m, counted; a multipart upload it resolves to is wrapped too.
func (s *subrequests) counted(b js.Value, m string) js.Func {
	return js.FuncOf(func(_ js.Value, args []js.Value) (result any) {
		s.r2.Add(1)
		defer func() {
			// A synchronous exception becomes a rejection: a panic would end the Go program.
			if r := recover(); r != nil {
				reason := js.ValueOf(fmt.Sprint(r))
				if jerr, ok := r.(js.Error); ok {
					reason = jerr.Value
				}
				result = js.Global().Get("Promise").Call("reject", reason)
			}
		}()
		res := b.Call(m, jsArgs(args)...)
		if m == "createMultipartUpload" {
			return res.Call("then", js.FuncOf(func(_ js.Value, a []js.Value) any { return s.multipart(a[0]) }))
		}
		return res
	})
}

// multipart wraps an R2MultipartUpload so that its calls are counted.
func (s *subrequests) multipart(u js.Value) js.Value {
	w := js.Global().Get("Object").New()
	w.Set("key", u.Get("key"))
	w.Set("uploadId", u.Get("uploadId"))
	for _, m := range multipartMethods {
		w.Set(m, s.counted(u, m))
	}
	return w
}

func jsArgs(args []js.Value) []any {
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = a
	}
	return out
}

// withSubrequestLog logs, after each request that made any, its subrequests.
func withSubrequestLog(next http.Handler, s *subrequests, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		next.ServeHTTP(w, r)
		f, b := s.fetches.Load(), s.r2.Load()
		if f+b > 0 {
			logger.Info("subrequests", "method", r.Method, "path", r.URL.EscapedPath(), "fetches", f, "r2", b, "total", f+b,
				"ms", time.Since(start).Milliseconds())
		}
	})
}
