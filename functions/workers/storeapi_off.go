//go:build js && wasm && !modmirror_storeapi

package main

import (
	"net/http"
	"syscall/js"
)

// withStoreAPI is the production build's: no raw store endpoint (see storeapi.go).
func withStoreAPI(next http.Handler, _ js.Value) http.Handler { return next }
