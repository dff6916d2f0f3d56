//go:build !(js && wasm)

package upstream

import (
	"net"
	"net/http"
	"time"
)

// newDefaultTransport returns a keep-alive transport whose dial and TLS handshake are bounded by
// connect, taking a forward proxy from the environment (HTTPS_PROXY, NO_PROXY).
func newDefaultTransport(connect time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   connect,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}
