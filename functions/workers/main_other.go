//go:build !(js && wasm)

package main

import (
	"fmt"
	"os"
)

// main, outside WebAssembly, only says how to build the Worker: the package compiles natively
// so that its tests (which build the wasm and run it under workerd) and its portable parts
// (configuration, spool, ranges) can be tested with go test.
func main() {
	fmt.Fprintln(os.Stderr, "the Worker runs in Cloudflare Workers: build it with `make worker` (GOOS=js GOARCH=wasm); see docs/DEPLOY-CLOUDFLARE.md")
	os.Exit(2)
}
