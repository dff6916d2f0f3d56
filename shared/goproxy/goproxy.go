// Package goproxy is the GOPROXY protocol itself: it parses and validates the request paths the go
// command sends, maps them to object keys, and says how each kind of answer may be cached.
//
// A key is the request path without its leading slash, with module paths and versions left in
// their escaped form (module.EscapePath, module.EscapeVersion), so that objects stored under keys
// form a static GOPROXY.
package goproxy

import (
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// Kind is what a request asks for.
type Kind int

// The kinds of request.
const (
	List   Kind = iota + 1 // <module>/@v/list
	Info                   // <module>/@v/<canonical version>.info
	Query                  // <module>/@v/<query>.info: a branch, tag or commit, not canonical
	Mod                    // <module>/@v/<version>.mod
	Zip                    // <module>/@v/<version>.zip
	Latest                 // <module>/@latest
	SumDB                  // sumdb/<name>/<path>
)

var kindNames = [...]string{List: "list", Info: "info", Query: "query", Mod: "mod", Zip: "zip", Latest: "latest", SumDB: "sumdb"}

func (k Kind) String() string {
	if k <= 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("Kind(%d)", int(k))
	}
	return kindNames[k]
}

// Immutable reports whether an answer of this kind never changes once it exists.
func (k Kind) Immutable() bool { return k == Info || k == Mod || k == Zip }

// MaxPathLength bounds a request path. The longest module path the go command accepts is far
// shorter; anything longer is an attack or a mistake.
const MaxPathLength = 2048

// Request is a parsed, validated request.
type Request struct {
	Kind    Kind
	Key     string // the object key: the URL path without its leading slash
	Path    string // the module path, unescaped (empty for SumDB)
	Version string // the version or query, unescaped (Info, Query, Mod, Zip)

	SumDBName string // SumDB only: the database's name
	SumDBPath string // SumDB only: the path under sumdb/<name>/, e.g. "lookup/m@v1.0.0"
}

// ModuleVersion returns "path@version", or just the path when there is no version: the form every
// error message names.
func (r Request) ModuleVersion() string {
	if r.Version == "" {
		return r.Path
	}
	return r.Path + "@" + r.Version
}

// Error is a request that cannot be served, with the HTTP status to answer and a reason for the go
// command to show.
type Error struct {
	Status int
	Reason string
}

func (e *Error) Error() string { return e.Reason }

func notFound(format string, args ...any) *Error {
	return &Error{Status: http.StatusNotFound, Reason: fmt.Sprintf(format, args...)}
}

// Parse validates rawPath, the request's URL path exactly as sent (still percent-encoded, as from
// url.URL.EscapedPath). Invalid requests return an *Error whose status is 404 (so that the go
// command falls through to the next proxy) or 414 for an over-long path.
func Parse(rawPath string) (Request, error) {
	if len(rawPath) > MaxPathLength {
		return Request{}, &Error{Status: http.StatusRequestURITooLong,
			Reason: fmt.Sprintf("request path of %d bytes is over the limit of %d", len(rawPath), MaxPathLength)}
	}
	p, err := unescapeURLPath(rawPath)
	if err != nil {
		return Request{}, err
	}
	key := strings.TrimPrefix(p, "/")
	if key == "" || strings.HasPrefix(key, "/") {
		return Request{}, notFound("not a module path: %q", p)
	}
	if rest, ok := strings.CutPrefix(key, "sumdb/"); ok {
		name, sub, _ := strings.Cut(rest, "/")
		if name == "" || sub == "" {
			return Request{}, notFound("not a checksum database path: %q", p)
		}
		return Request{Kind: SumDB, Key: key, SumDBName: name, SumDBPath: sub}, nil
	}
	if escMod, ok := strings.CutSuffix(key, "/@latest"); ok {
		mod, err := unescapeModule(escMod)
		if err != nil {
			return Request{}, err
		}
		return Request{Kind: Latest, Key: key, Path: mod}, nil
	}
	escMod, file, ok := strings.Cut(key, "/@v/")
	if !ok {
		return Request{}, notFound("not a module proxy path (no /@v/ or /@latest): %q", p)
	}
	mod, err := unescapeModule(escMod)
	if err != nil {
		return Request{}, err
	}
	if file == "list" {
		return Request{Kind: List, Key: key, Path: mod}, nil
	}
	var kind Kind
	var escVer string
	switch {
	case strings.HasSuffix(file, ".info"):
		kind, escVer = Info, strings.TrimSuffix(file, ".info")
	case strings.HasSuffix(file, ".mod"):
		kind, escVer = Mod, strings.TrimSuffix(file, ".mod")
	case strings.HasSuffix(file, ".zip"):
		kind, escVer = Zip, strings.TrimSuffix(file, ".zip")
	default:
		return Request{}, notFound("%s: unknown file %q (want list, .info, .mod or .zip)", mod, file)
	}
	if escVer == "" || strings.Contains(escVer, "/") {
		return Request{}, notFound("%s: invalid version %q", mod, escVer)
	}
	ver, err := module.UnescapeVersion(escVer)
	if err != nil {
		return Request{}, notFound("%s: invalid version: %v", mod, err)
	}
	if module.CanonicalVersion(ver) != ver {
		if kind != Info || !isQuery(ver) {
			return Request{}, notFound("%s@%s: version is not canonical semver", mod, ver)
		}
		return Request{Kind: Query, Key: key, Path: mod, Version: ver}, nil
	}
	if err := checkModuleVersion(mod, ver); err != nil {
		return Request{}, notFound("%v", err)
	}
	return Request{Kind: kind, Key: key, Path: mod, Version: ver}, nil
}

// checkModuleVersion reports whether version can exist for the module path at all, as the go
// command decides: module.Check (a major version that matches the path's suffix), and
// "+incompatible" only on a major version of 2 or more of a path without a major suffix. Such a
// version is refused here rather than passed to the upstream.
func checkModuleVersion(path, version string) error {
	if err := module.Check(path, version); err != nil {
		return err
	}
	if semver.Build(version) != "+incompatible" {
		return nil
	}
	if _, pathMajor, _ := module.SplitPathVersion(path); pathMajor != "" {
		return &module.InvalidVersionError{Version: version,
			Err: fmt.Errorf("+incompatible suffix not allowed: module path includes a major version suffix %q", pathMajor)}
	}
	if major := semver.Major(version); major == "v0" || major == "v1" {
		return &module.InvalidVersionError{Version: version,
			Err: fmt.Errorf("+incompatible suffix not allowed: major version %s is compatible", major)}
	}
	return nil
}

// unescapeURLPath percent-decodes the path, refusing encoded slashes, NUL and other control
// characters: a module path never needs them, and they are how traversal attacks hide.
func unescapeURLPath(raw string) (string, error) {
	if strings.Contains(raw, "%") {
		lower := strings.ToLower(raw)
		if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") {
			return "", notFound("encoded slash in request path")
		}
	}
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '%' {
			if i+2 >= len(raw) || unhex(raw[i+1]) < 0 || unhex(raw[i+2]) < 0 {
				return "", notFound("malformed percent-encoding in request path")
			}
			c = byte(unhex(raw[i+1])<<4 | unhex(raw[i+2]))
			i += 2
		}
		if c < 0x20 || c >= 0x7f || c == '\\' {
			return "", notFound("request path has a control, non-ASCII or backslash character (0x%02x)", c)
		}
		b.WriteByte(c)
	}
	p := b.String()
	if !strings.HasPrefix(p, "/") {
		return "", notFound("request path does not start with a slash")
	}
	for _, elem := range strings.Split(p, "/")[1:] {
		switch elem {
		case ".", "..":
			return "", notFound("request path has a %q element", elem)
		case "":
			return "", notFound("request path has an empty element")
		}
	}
	return p, nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func unescapeModule(esc string) (string, error) {
	mod, err := module.UnescapePath(esc)
	if err != nil {
		return "", notFound("invalid module path: %v", err)
	}
	return mod, nil
}

// isQuery accepts what a non-canonical .info request may name: a branch, a tag, a commit hash or a
// version prefix. Such queries go to the upstream and are never stored as immutable.
func isQuery(v string) bool {
	if v == "" || len(v) > 128 || v[0] == '-' || v[0] == '.' {
		return false
	}
	for _, c := range v {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == '_', c == '+', c == '~':
		default:
			return false
		}
	}
	return true
}

// IsRelease reports whether a canonical version belongs in a list file: the go command lists
// releases and pre-releases, never pseudo-versions.
func IsRelease(v string) bool {
	return semver.IsValid(v) && module.CanonicalVersion(v) == v && !module.IsPseudoVersion(v)
}
