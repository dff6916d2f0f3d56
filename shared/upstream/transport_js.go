//go:build js && wasm

package upstream

import (
	"net/http"
	"time"
)

// newDefaultTransport returns a transport that uses the host's Fetch API: on js/wasm, setting
// any Dial function would make net/http bypass Fetch, so none is set and connect is unused
// (the header and total timeouts still apply).
func newDefaultTransport(connect time.Duration) *http.Transport {
	_ = connect
	return &http.Transport{}
}
