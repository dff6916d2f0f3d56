package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/mod/module"

	"github.com/modmirror/modmirror/shared/auth"
	"github.com/modmirror/modmirror/shared/goproxy"
)

// Access decisions, as the audit line names them.
const (
	decisionAllow           = "allow"
	decisionNoCredentials   = "deny-unauthenticated"
	decisionBadCredentials  = "deny-bad-credentials"
	decisionThrottled       = "deny-throttled"
	decisionRateLimited     = "deny-rate-limited"
	decisionNoScope         = "deny-scope"
	decisionPrivateToSumDB  = "deny-private-sumdb"
	decisionPrivateNoSource = "allow-no-private-upstream"
)

// authorize identifies the caller, decides whether it may have what it asks for, and routes the
// request to its upstream. It answers 401 or 403 itself and reports whether to go on.
func (h *Handler) authorize(x *exchange) bool {
	client := clientOf(x.r)
	if wait := h.throttle.retryAfter(client); wait > 0 {
		x.decision = decisionThrottled
		h.refuse(x, wait, fmt.Sprintf("too many failed authentications from %s: try again in %s", client, wait.Round(time.Second)))
		return false
	}
	caller, err := h.cfg.Auth.Identify(x.r)
	if err != nil {
		h.throttle.failed(client)
		x.decision = decisionBadCredentials
		h.challenge(x, "invalid credentials: the token matches none this proxy knows")
		return false
	}
	x.caller = caller

	if x.req.Kind == goproxy.SumDB {
		// The database is public, but a lookup would tell it a private module's name.
		if lookupPath, ok := sumdbLookupModule(x.req.SumDBPath); ok && h.isPrivate(lookupPath) {
			x.decision = decisionPrivateToSumDB
			h.fail(x, http.StatusNotFound, goproxy.CacheNoStore,
				fmt.Sprintf("%s is private: it is never looked up in a public checksum database (set GONOSUMDB or GOPRIVATE)", lookupPath))
			return false
		}
		return h.allowPublic(x)
	}

	x.private = h.isPrivate(x.req.Path)
	if !x.private {
		x.up = h.cfg.Upstream
		return h.allowPublic(x)
	}
	if !h.cfg.Auth.MayRead(caller, x.req.Path, true) {
		h.deny(x, fmt.Sprintf("%s is private: your token has no read scope for it", x.req.Path))
		return false
	}
	x.decision = decisionAllow
	x.up = h.cfg.PrivateUpstream
	if x.up == nil {
		x.decision = decisionPrivateNoSource
	}
	return true
}

func (h *Handler) allowPublic(x *exchange) bool {
	if !h.cfg.Auth.MayRead(x.caller, x.req.Path, false) {
		h.deny(x, "this proxy needs a token with the public scope")
		return false
	}
	x.decision = decisionAllow
	return true
}

// deny answers 401 to a caller without credentials (so the go command sends its .netrc or GOAUTH
// credentials) and 403 to a caller whose valid token lacks the scope.
func (h *Handler) deny(x *exchange, reason string) {
	if x.caller.Anonymous {
		x.decision = decisionNoCredentials
		h.challenge(x, "authentication required: "+reason)
		return
	}
	x.decision = decisionNoScope
	h.fail(x, http.StatusForbidden, goproxy.CacheNoStore, fmt.Sprintf("forbidden for token %s: %s", x.caller.ID, reason))
}

func (h *Handler) challenge(x *exchange, reason string) {
	x.w.Header().Set("WWW-Authenticate", auth.Challenge)
	h.fail(x, http.StatusUnauthorized, goproxy.CacheNoStore, reason)
}

func (h *Handler) isPrivate(path string) bool {
	return h.cfg.Private != "" && path != "" && module.MatchPrefixPatterns(h.cfg.Private, path)
}

// sumdbLookupModule returns the module path a checksum-database lookup names.
func sumdbLookupModule(sumdbPath string) (string, bool) {
	rest, ok := strings.CutPrefix(sumdbPath, "lookup/")
	if !ok {
		return "", false
	}
	esc, _, ok := strings.Cut(rest, "@")
	if !ok {
		return "", false
	}
	path, err := module.UnescapePath(esc)
	if err != nil {
		return esc, true // unparseable: treat the raw text as the name, so a pattern still matches
	}
	return path, true
}

// errNoPrivateUpstream: a private module and nowhere to get it from.
var errNoPrivateUpstream = errors.New("private module, and this proxy has no private upstream")
