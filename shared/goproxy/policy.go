package goproxy

import (
	"strings"
	"time"
)

// Cache-Control values, as DESIGN.md sets them.
//
// CacheShort, for what changes (lists, @latest, queries, the checksum database's latest,
// supported and partial tiles), is fresh for ShortTTL; a cache may then answer with its copy
// for another minute while it asks again (stale-while-revalidate), and for a day when asking
// fails (stale-if-error, RFC 5861): an edge in front of the mirror keeps answering lists and
// @latest while the function is down. The stored copies carry the same value, so a static
// front over the store (a bucket behind a CDN) serves them with it too.
const (
	CacheImmutable = "public, max-age=31536000, immutable"
	CacheShort     = "public, max-age=60, stale-while-revalidate=60, stale-if-error=86400"
	CacheNotFound  = "public, max-age=60"
	CacheNoStore   = "no-store"
)

// ShortTTL is how long mutable answers (list, @latest, queries, partial tiles) may be reused.
const ShortTTL = 60 * time.Second

// CacheControl returns the Cache-Control header for a successful answer to r.
func (r Request) CacheControl() string {
	switch r.Kind {
	case Info, Mod, Zip:
		return CacheImmutable
	case SumDB:
		if r.SumDBImmutable() {
			return CacheImmutable
		}
		return CacheShort
	}
	return CacheShort
}

// SumDBImmutable reports whether a checksum-database path names content that never changes:
// lookups and full tiles. Partial tiles, latest and supported may change.
func (r Request) SumDBImmutable() bool {
	if r.Kind != SumDB {
		return false
	}
	switch {
	case strings.HasPrefix(r.SumDBPath, "lookup/"):
		return true
	case strings.HasPrefix(r.SumDBPath, "tile/"):
		return !strings.Contains(r.SumDBPath, ".p/")
	}
	return false
}

// ContentType returns the Content-Type of a successful answer to r.
func (r Request) ContentType() string {
	switch r.Kind {
	case Info, Query, Latest:
		return "application/json"
	case Zip:
		return "application/zip"
	case SumDB:
		if strings.HasPrefix(r.SumDBPath, "tile/") {
			return "application/octet-stream"
		}
	}
	return "text/plain; charset=utf-8"
}
