package proxy

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/modmirror/modmirror/shared/goproxy"
	"github.com/modmirror/modmirror/shared/store"
)

// maxCachedObject is the largest object kept in memory: .info and .mod files are far smaller,
// and so are the zips of many small modules; larger zips stream from the store.
const maxCachedObject = 64 << 10

// memCache keeps small immutable objects (.info, .mod, small .zip) in memory, so that the hits that make up
// most of a build's requests cost no file system or network round trip. Immutable objects never
// go stale; the cache only has to stay within its byte budget, which it does by dropping
// arbitrary entries (Go's map order) when full.
type memCache struct {
	mu    sync.RWMutex
	max   int64
	size  int64
	items map[string]cachedObject
}

type cachedObject struct {
	data []byte
	info store.Info
	req  goproxy.Request // the request that names it, already parsed and validated
	// Header values, made once: a hit then costs no formatting. Never modified after.
	contentType, cacheControl, etag, contentLength, lastModified []string
}

func newCachedObject(req goproxy.Request, data []byte, info store.Info, cacheControl string) cachedObject {
	o := cachedObject{data: data, info: info, req: req,
		contentType:   []string{req.ContentType()},
		cacheControl:  []string{cacheControl},
		contentLength: []string{strconv.Itoa(len(data))},
	}
	if info.ETag != "" {
		o.etag = []string{info.ETag}
	}
	if !info.ModTime.IsZero() {
		o.lastModified = []string{info.ModTime.UTC().Format(http.TimeFormat)}
	}
	return o
}

func newMemCache(max int64) *memCache {
	if max <= 0 {
		return nil
	}
	return &memCache{max: max, items: make(map[string]cachedObject)}
}

func (c *memCache) get(key string) (cachedObject, bool) {
	if c == nil {
		return cachedObject{}, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	o, ok := c.items[key]
	return o, ok
}

func (c *memCache) put(key string, o cachedObject) {
	if c == nil || int64(len(o.data)) > maxCachedObject {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[key]; ok {
		return
	}
	for k, old := range c.items {
		if c.size+int64(len(o.data)) <= c.max {
			break
		}
		delete(c.items, k)
		c.size -= int64(len(old.data))
	}
	c.items[key] = o
	c.size += int64(len(o.data))
}
