//go:build js && wasm && modmirror_storeapi

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall/js"

	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/store/r2store"
)

// storeAPIPrefix is where the test build answers raw store operations.
const storeAPIPrefix = "/_storeapi/"

// withStoreAPI adds, in the test build only (build tag modmirror_storeapi), raw operations on
// the R2 store at /_storeapi/, so that a test outside workerd can run the store conformance
// suite against the real R2 binding and list what the proxy stored. Production builds have no
// such endpoint (storeapi_off.go).
//
//	GET  /_storeapi/stat?prefix=P&key=K                     the Info as JSON
//	GET  /_storeapi/open?prefix=P&key=K                     the content; the Info in X-Store-Info
//	GET  /_storeapi/readat?prefix=P&key=K&off=N&n=N         ReadAt; X-Store-EOF: 1 at the end
//	PUT  /_storeapi/put?prefix=P&key=K&size=N&ifabsent=1&ifmatch=E&ct=T&cc=C   body = content
//	GET  /_storeapi/walk?prefix=P&under=W                   Walk as a JSON array of Infos
//	PUT  /_storeapi/stream?prefix=P&key=K&ifabsent=1&ct=T&cc=C&commit=1   body = content, written
//	     into StageStream's Pending in 1 MiB writes, then committed (commit=1) or closed
//
// Errors answer 409 with {"kind": "notexist|exist|precondition|invalidkey|other", "message"}.
func withStoreAPI(next http.Handler, bucket js.Value) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op, ok := strings.CutPrefix(r.URL.Path, storeAPIPrefix)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		q := r.URL.Query()
		st, err := r2store.New(bucket, r2store.Options{Prefix: q.Get("prefix")})
		if err != nil {
			apiError(w, err)
			return
		}
		if err := storeOp(w, r, st, op, q); err != nil {
			apiError(w, err)
		}
	})
}

func storeOp(w http.ResponseWriter, r *http.Request, st *r2store.Store, op string, q map[string][]string) error {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	ctx := r.Context()
	key := get("key")
	switch op {
	case "stat":
		info, err := st.Stat(ctx, key)
		if err != nil {
			return err
		}
		return writeJSON(w, info)
	case "open":
		obj, err := st.Open(ctx, key)
		if err != nil {
			return err
		}
		defer obj.Close()
		data, err := json.Marshal(obj.Info())
		if err != nil {
			return err
		}
		w.Header().Set("X-Store-Info", string(data))
		w.Header().Set("Content-Length", strconv.FormatInt(obj.Info().Size, 10))
		_, err = io.Copy(w, obj) // hands the R2 stream to the response
		return err
	case "readat":
		off, err1 := strconv.ParseInt(get("off"), 10, 64)
		n, err2 := strconv.Atoi(get("n"))
		if err := errors.Join(err1, err2); err != nil || n < 0 || n > 1<<20 {
			return fmt.Errorf("bad off or n: %v", err)
		}
		obj, err := st.Open(ctx, key)
		if err != nil {
			return err
		}
		defer obj.Close()
		buf := make([]byte, n)
		got, err := obj.(io.ReaderAt).ReadAt(buf, off)
		if err != nil && err != io.EOF {
			return err
		}
		if err == io.EOF {
			w.Header().Set("X-Store-EOF", "1")
		}
		_, err = w.Write(buf[:got])
		return err
	case "put":
		size, err := strconv.ParseInt(get("size"), 10, 64)
		if err != nil {
			return fmt.Errorf("bad size: %w", err)
		}
		o := store.PutOptions{IfAbsent: get("ifabsent") == "1", IfMatch: get("ifmatch"), ContentType: get("ct"), CacheControl: get("cc")}
		info, err := st.Put(ctx, key, r.Body, size, o)
		if err != nil {
			return err
		}
		return writeJSON(w, info)
	case "stream":
		o := store.PutOptions{IfAbsent: get("ifabsent") == "1", ContentType: get("ct"), CacheControl: get("cc")}
		pending, err := st.StageStream(ctx, key, o)
		if err != nil {
			return err
		}
		defer pending.Close()
		if _, err := io.CopyBuffer(pending, struct{ io.Reader }{r.Body}, make([]byte, 1<<20)); err != nil {
			return err
		}
		if get("commit") != "1" {
			if err := pending.Close(); err != nil {
				return err
			}
			return writeJSON(w, store.Info{Key: key, Size: -1})
		}
		info, err := pending.Commit(ctx)
		if err != nil {
			return err
		}
		return writeJSON(w, info)
	case "walk":
		infos := []store.Info{}
		err := st.Walk(ctx, get("under"), func(i store.Info) error {
			infos = append(infos, i)
			return nil
		})
		if err != nil {
			return err
		}
		return writeJSON(w, infos)
	}
	return fmt.Errorf("unknown operation %q", op)
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(v)
}

// apiError answers err with its kind, so the client can rebuild an error that errors.Is knows.
func apiError(w http.ResponseWriter, err error) {
	kind := "other"
	switch {
	case errors.Is(err, store.ErrNotExist):
		kind = "notexist"
	case errors.Is(err, store.ErrExist):
		kind = "exist"
	case errors.Is(err, store.ErrPrecondition):
		kind = "precondition"
	case errors.Is(err, store.ErrInvalidKey):
		kind = "invalidkey"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusConflict)
	json.NewEncoder(w).Encode(map[string]string{"kind": kind, "message": err.Error()})
}
