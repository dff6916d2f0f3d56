// Package auth decides who may read what: it parses the token file (hashes only, never a token
// itself), identifies the caller from the credentials the go command sends (HTTP Basic, from
// .netrc or GOAUTH, or a Bearer token), and checks a caller's scopes against a module path.
package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/mod/module"
)

// Scopes a token can carry.
const (
	ScopePublic = "public" // read modules that are not private
	ScopeWarm   = "warm"   // POST /_mirror/warm
	// ScopeReadPrefix + PATTERNS: read private modules matching PATTERNS (GOPRIVATE syntax,
	// several patterns separated by '|' since ',' separates scopes).
	ScopeReadPrefix = "read:"
)

// Token is one line of the token file: "ID SHA256-OF-TOKEN SCOPE[,SCOPE]".
type Token struct {
	ID     string
	Hash   [sha256.Size]byte
	Scopes []string
}

// ParseTokens reads a token file. Blank lines and lines starting with # are skipped; anything
// else malformed is an error naming its line.
func ParseTokens(data []byte) ([]Token, error) {
	var tokens []Token
	ids := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("token file line %d: want ID SHA256-OF-TOKEN SCOPE[,SCOPE], got %d fields", n, len(f))
		}
		var t Token
		t.ID = f[0]
		if ids[t.ID] {
			return nil, fmt.Errorf("token file line %d: duplicate id %q", n, t.ID)
		}
		ids[t.ID] = true
		h, err := hex.DecodeString(f[1])
		if err != nil || len(h) != sha256.Size {
			return nil, fmt.Errorf("token file line %d: %q is not a hex SHA-256 (the file holds hashes, never tokens)", n, t.ID)
		}
		copy(t.Hash[:], h)
		for _, s := range strings.Split(f[2], ",") {
			switch {
			case s == ScopePublic, s == ScopeWarm:
			case strings.HasPrefix(s, ScopeReadPrefix) && len(s) > len(ScopeReadPrefix):
			default:
				return nil, fmt.Errorf("token file line %d: unknown scope %q (want public, warm or read:PATTERNS)", n, s)
			}
			t.Scopes = append(t.Scopes, s)
		}
		tokens = append(tokens, t)
	}
	return tokens, sc.Err()
}

// HashToken returns the hex SHA-256 of a token, the form the token file holds.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Caller is who made a request.
type Caller struct {
	ID        string // the token's id; "" for an anonymous caller
	Anonymous bool
	scopes    []string
}

// ErrBadCredentials: credentials were sent but match no token.
var ErrBadCredentials = errors.New("invalid credentials")

// Authenticator identifies callers.
type Authenticator struct {
	tokens    []Token
	anonymous bool // whether callers without credentials may read public modules
}

// New returns an Authenticator over tokens; anonymous says whether callers without credentials
// may read public modules.
func New(tokens []Token, anonymous bool) *Authenticator {
	return &Authenticator{tokens: tokens, anonymous: anonymous}
}

// Identify returns the caller of r. Credentials come as the password of HTTP Basic (any user
// name) or as a Bearer token. Sent credentials that match no token are ErrBadCredentials, never
// silently anonymous. Every token is compared, in constant time, whatever matches.
func (a *Authenticator) Identify(r *http.Request) (Caller, error) {
	secret, ok := credentials(r)
	if !ok {
		return Caller{Anonymous: true}, nil
	}
	sum := sha256.Sum256([]byte(secret))
	match := -1
	for i := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], a.tokens[i].Hash[:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return Caller{}, ErrBadCredentials
	}
	t := a.tokens[match]
	return Caller{ID: t.ID, scopes: t.Scopes}, nil
}

// ForwardedAuthorizationHeader carries the client's Authorization header past a CDN that signs
// its own requests to the origin with Authorization (CloudFront's origin access control for a
// Lambda function URL): a viewer-request function copies it there. It is checked exactly like
// Authorization, and wins when both are present.
const ForwardedAuthorizationHeader = "X-Modmirror-Authorization"

func credentials(r *http.Request) (string, bool) {
	h := r.Header.Get(ForwardedAuthorizationHeader)
	if h == "" {
		h = r.Header.Get("Authorization")
	}
	if h == "" {
		return "", false
	}
	scheme, rest, _ := strings.Cut(h, " ")
	switch strings.ToLower(scheme) {
	case "bearer":
		return strings.TrimSpace(rest), true
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
		if err != nil {
			return "\x00invalid", true
		}
		_, pass, _ := strings.Cut(string(raw), ":")
		return pass, true
	}
	return "\x00invalid", true
}

// MayRead reports whether c may read modulePath, which is private if private says so.
func (a *Authenticator) MayRead(c Caller, modulePath string, private bool) bool {
	if !private {
		if c.Anonymous {
			return a.anonymous
		}
		return c.has(ScopePublic) || a.anonymous
	}
	for _, s := range c.scopes {
		if patterns, ok := strings.CutPrefix(s, ScopeReadPrefix); ok {
			if module.MatchPrefixPatterns(strings.ReplaceAll(patterns, "|", ","), modulePath) {
				return true
			}
		}
	}
	return false
}

// MayWarm reports whether c may warm the store.
func (a *Authenticator) MayWarm(c Caller) bool { return c.has(ScopeWarm) }

// Challenge is the WWW-Authenticate header of a 401: the go command answers it with .netrc or
// GOAUTH credentials.
const Challenge = `Basic realm="modmirror", charset="UTF-8"`

func (c Caller) has(scope string) bool {
	for _, s := range c.scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// AnonymousReads reports whether callers without credentials may read public modules.
func (a *Authenticator) AnonymousReads() bool { return a.anonymous }
