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
	key  string
	kind fieldKind
	str  string // a fieldString's value
	num  int64  // a fieldInt's value, or a fieldMillis's in microseconds
}

// fieldKind says how a requestField's value is written.
type fieldKind uint8

const (
	fieldString fieldKind = iota
	fieldInt
	fieldMillis // a duration, written in milliseconds with up to three decimals
)

// maxRequestFields bounds the fields of one line: requestFields never gives more.
const maxRequestFields = 10

// requestFields appends to f what the log line of a finished exchange says, in order.
func (x *exchange) requestFields(took time.Duration, f []requestField) []requestField {
	str := func(k, v string) { f = append(f, requestField{key: k, kind: fieldString, str: v}) }
	num := func(k string, kind fieldKind, v int64) { f = append(f, requestField{key: k, kind: kind, num: v}) }
	str("method", x.r.Method)
	str("path", truncate(x.path, 256))
	num("status", fieldInt, int64(x.w.status))
	num("bytes", fieldInt, x.w.bytes)
	num("duration_ms", fieldMillis, took.Microseconds())
	if x.cache != "" {
		str("cache", x.cache)
	} else {
		str("cache", cacheNone)
	}
	if x.upstream > 0 {
		num("upstream_ms", fieldMillis, x.upstream.Microseconds())
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
	end := time.Now()
	var buf [maxRequestFields]requestField // on the stack: a hit's line allocates nothing
	fields := x.requestFields(end.Sub(start), buf[:0])
	if h.cfg.RequestLog == nil {
		attrs := make([]slog.Attr, len(fields))
		for i, f := range fields {
			switch f.kind {
			case fieldString:
				attrs[i] = slog.String(f.key, f.str)
			case fieldInt:
				attrs[i] = slog.Int64(f.key, f.num)
			case fieldMillis:
				attrs[i] = slog.Float64(f.key, float64(f.num)/1000)
			}
		}
		h.log.LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
		return
	}
	bp := h.lineBuffers.Get().(*[]byte)
	b := append((*bp)[:0], `{"time":"`...)
	b = end.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"request"`...)
	for _, f := range fields {
		b = append(b, ',')
		b = appendJSONString(b, f.key)
		b = append(b, ':')
		switch f.kind {
		case fieldString:
			b = appendJSONString(b, f.str)
		case fieldInt:
			b = strconv.AppendInt(b, f.num, 10)
		case fieldMillis:
			b = appendMillis(b, f.num)
		}
	}
	b = append(b, "}\n"...)
	h.cfg.RequestLog.Write(b)
	*bp = b
	h.lineBuffers.Put(bp)
}

// appendMillis appends a count of microseconds as milliseconds, as slog writes the float64
// micros/1000: "12", "0.5", "1.234".
func appendMillis(b []byte, micros int64) []byte {
	if micros < 0 {
		b = append(b, '-')
		micros = -micros
	}
	b = strconv.AppendInt(b, micros/1000, 10)
	frac := micros % 1000
	if frac == 0 {
		return b
	}
	digits := [3]byte{byte('0' + frac/100), byte('0' + frac/10%10), byte('0' + frac%10)}
	n := 3
	for digits[n-1] == '0' {
		n--
	}
	b = append(b, '.')
	return append(b, digits[:n]...)
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
