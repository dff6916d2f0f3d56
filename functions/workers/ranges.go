package main

import (
	"strconv"
	"strings"
)

// byteRange is one satisfiable range of a Range header, resolved against an object's size.
type byteRange struct{ off, length int64 }

// parseRange resolves a Range header of a single byte range ("bytes=a-b", "bytes=a-",
// "bytes=-n") against size. ok is false for anything else (several ranges, another unit, bad
// syntax): the caller then serves the whole object, as HTTP allows. unsatisfiable is true for
// a well-formed range that starts at or after the end.
func parseRange(h string, size int64) (r byteRange, ok, unsatisfiable bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return byteRange{}, false, false
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return byteRange{}, false, false
	}
	if first == "" {
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			return byteRange{}, false, false
		}
		if n == 0 || size == 0 {
			return byteRange{}, true, true
		}
		n = min(n, size)
		return byteRange{off: size - n, length: n}, true, false
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil || start < 0 {
		return byteRange{}, false, false
	}
	end := size - 1
	if last != "" {
		if end, err = strconv.ParseInt(last, 10, 64); err != nil || end < start {
			return byteRange{}, false, false
		}
		end = min(end, size-1)
	}
	if start >= size {
		return byteRange{}, true, true
	}
	return byteRange{off: start, length: end - start + 1}, true, false
}
