package proxy

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// requestField is one field of a request's log line.
type requestField struct {
	key   string
	str   string  // for a string field
	num   float64 // for a number field
	isNum bool
}

// requestFields lists what the log line of a finished exchange says, in order.
func (x *exchange) requestFields(took time.Duration) []requestField {
	f := make([]requestField, 0, 10)
	str := func(k, v string) { f = append(f, requestField{key: k, str: v}) }
	num := func(k string, v float64) { f = append(f, requestField{key: k, num: v, isNum: true}) }
	str("method", x.r.Method)
	str("path", truncate(x.path, 256))
	num("status", float64(x.w.status))
	num("bytes", float64(x.w.bytes))
	num("duration_ms", float64(took.Microseconds())/1000)
	if x.cache != "" {
		str("cache", x.cache)
	}
	if x.upstream > 0 {
		num("upstream_ms", float64(x.upstream.Microseconds())/1000)
	}
	if x.decision != "" {
		str("decision", x.decision)
	}
	if x.caller.ID != "" {
		str("token", x.caller.ID)
	}
	if x.req.Path != "" {
		str("module", truncate(x.req.ModuleVersion(), 256))
	}
	return f
}

// logRequest writes the exchange's line: straight to Config.RequestLog when a host gave one (the
// same JSON shape slog's JSONHandler writes, without its cost per attribute, which is most of a
// memory hit's), else through the Logger.
func (h *Handler) logRequest(ctx context.Context, x *exchange, start time.Time) {
	fields := x.requestFields(time.Since(start))
	if h.cfg.RequestLog == nil {
		attrs := make([]slog.Attr, len(fields))
		for i, f := range fields {
			if f.isNum {
				attrs[i] = slog.Float64(f.key, f.num)
			} else {
				attrs[i] = slog.String(f.key, f.str)
			}
		}
		h.log.LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
		return
	}
	bp := h.lineBuffers.Get().(*[]byte)
	b := append((*bp)[:0], `{"time":"`...)
	b = time.Now().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"request"`...)
	for _, f := range fields {
		b = append(b, ',')
		b = appendJSONString(b, f.key)
		b = append(b, ':')
		if f.isNum {
			b = strconv.AppendFloat(b, f.num, 'f', -1, 64)
		} else {
			b = appendJSONString(b, f.str)
		}
	}
	b = append(b, "}\n"...)
	h.cfg.RequestLog.Write(b)
	*bp = b
	h.lineBuffers.Put(bp)
}

// appendJSONString appends s as a JSON string: quotes, backslashes and control characters
// escaped, invalid UTF-8 replaced.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

func newLineBuffers() *sync.Pool {
	return &sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}
}
