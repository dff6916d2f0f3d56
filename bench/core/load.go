package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// target is one URL path the load generator requests and the body size it must get back.
type target struct {
	path string
	size int64
}

// loadResult is what one load run measured.
type loadResult struct {
	requests int
	elapsed  time.Duration
}

// perSecond returns the requests per second.
func (r loadResult) perSecond() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// load sends total GET requests for targets, round robin, to the HTTP/1.1 server at addr
// (host:port on 127.0.0.1) over conns keep-alive connections, each with one request in flight,
// and returns how long they took. Every answer must be 200 with the target's size, or load fails.
//
// It speaks just enough HTTP/1.1 by hand (a Content-Length body, keep-alive, reconnecting when
// the server says Connection: close) to cost the client little CPU: on a small machine the client
// shares the cores with the server it measures, and the same client measures every server.
func load(ctx context.Context, addr string, targets []target, conns, total int) (loadResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	reqs := make([][]byte, len(targets))
	for i, t := range targets {
		reqs[i] = fmt.Appendf(nil, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: modmirror-bench\r\n\r\n", t.path, addr)
	}
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	start := time.Now()
	for range conns {
		wg.Go(func() {
			if err := loadConn(ctx, addr, targets, reqs, &next, int64(total)); err != nil {
				errOnce.Do(func() { firstErr = err; cancel() })
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return loadResult{}, firstErr
	}
	return loadResult{requests: total, elapsed: elapsed}, nil
}

// loadConn is one client of load: it takes request numbers from next until total.
func loadConn(ctx context.Context, addr string, targets []target, reqs [][]byte, next *atomic.Int64, total int64) error {
	var (
		conn net.Conn
		br   *bufio.Reader
	)
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	deadline, _ := ctx.Deadline()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		i := next.Add(1) - 1
		if i >= total {
			return nil
		}
		if conn == nil {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return fmt.Errorf("load: %w", err)
			}
			if err := c.SetDeadline(deadline); err != nil {
				c.Close()
				return fmt.Errorf("load: %w", err)
			}
			conn, br = c, bufio.NewReaderSize(c, 16<<10)
		}
		k := int(i % int64(len(targets)))
		if _, err := conn.Write(reqs[k]); err != nil {
			return fmt.Errorf("load: GET %s: %w", targets[k].path, err)
		}
		size, keepAlive, err := readResponse(br)
		if err != nil {
			return fmt.Errorf("load: GET %s: %w", targets[k].path, err)
		}
		if size != targets[k].size {
			return fmt.Errorf("load: GET %s: got %d bytes, want %d", targets[k].path, size, targets[k].size)
		}
		if !keepAlive {
			conn.Close()
			conn = nil
		}
	}
}

// readResponse reads one response whose status must be 200 and whose body has a
// Content-Length, discarding the body. It returns the body's size and whether the connection
// stays open.
func readResponse(br *bufio.Reader) (size int64, keepAlive bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return 0, false, fmt.Errorf("status line %q, want HTTP/1.1 200", bytes.TrimSpace(line))
	}
	size, keepAlive = -1, true
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, false, fmt.Errorf("malformed header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if size, err = strconv.ParseInt(string(value), 10, 64); err != nil || size < 0 {
				return 0, false, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Connection")):
			keepAlive = !bytes.EqualFold(value, []byte("close"))
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, false, errors.New("chunked answer: this client reads Content-Length bodies only")
		}
	}
	if size < 0 {
		return 0, false, errors.New("answer without Content-Length")
	}
	if _, err := br.Discard(int(size)); err != nil {
		return 0, false, fmt.Errorf("reading body: %w", err)
	}
	return size, keepAlive, nil
}
