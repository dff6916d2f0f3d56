package testkit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// A Harness is the testing.TB that the kit needs in programs that use it outside `go test`, such
// as the benchmarks under bench/: temporary directories under one root directory, cleanups run
// by [Harness.Close], log lines on standard error, and failures reported through Fatal or Fatalf
// that unwind to [Harness.Catch] instead of ending a test.
//
//	h := testkit.NewHarness(ctx, root)
//	defer h.Close()
//	err := h.Catch(func() error {
//		up := testkit.NewUpstream(h, testkit.Options{Modules: testkit.Synthetic(10)})
//		...
//	})
//
// As in a test, Fatal, Fatalf and FailNow must be called on the goroutine running Catch.
//
// A Harness embeds a nil testing.TB only to satisfy the interface's unexported method: every
// method the kit calls is defined here, and calling any other one (Skip, Setenv, ...) panics.
// Its methods are safe for concurrent use.
type Harness struct {
	testing.TB

	ctx  context.Context
	root string

	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

// fatal is what Fatal and Fatalf panic with; Catch turns it back into an error.
type fatal struct{ msg string }

// NewHarness returns a Harness whose Context is ctx and whose TempDir makes directories under
// root, an existing directory that the caller removes (TempDir's directories are not removed by
// Close).
func NewHarness(ctx context.Context, root string) *Harness {
	return &Harness{ctx: ctx, root: root}
}

// Catch runs fn and returns the failure it reported through Fatal, Fatalf or FailNow, if any, or
// else what fn returned. Other panics go on unwinding.
func (h *Harness) Catch(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatal)
			if !ok {
				panic(r)
			}
			err = errors.New(f.msg)
		}
	}()
	return fn()
}

// Close runs the registered cleanups, last registered first, each once. A cleanup's failure
// reported through Fatal is logged; the other cleanups still run.
func (h *Harness) Close() {
	h.mu.Lock()
	fns := h.cleanups
	h.cleanups = nil
	h.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		if err := h.Catch(func() error { fns[i](); return nil }); err != nil {
			h.Log(err)
		}
	}
}

// Helper does nothing.
func (h *Harness) Helper() {}

// Name returns the program's name.
func (h *Harness) Name() string { return filepath.Base(os.Args[0]) }

// Context returns the context NewHarness was given.
func (h *Harness) Context() context.Context { return h.ctx }

// Cleanup registers fn to be run by Close.
func (h *Harness) Cleanup(fn func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cleanups = append(h.cleanups, fn)
}

// TempDir returns a new directory under the harness's root directory.
func (h *Harness) TempDir() string {
	dir, err := os.MkdirTemp(h.root, "tb-")
	if err != nil {
		h.Fatalf("testkit: %v", err)
	}
	return dir
}

// Log writes its arguments on standard error, as fmt.Println does.
func (h *Harness) Log(args ...any) { fmt.Fprintln(os.Stderr, args...) }

// Logf writes a line on standard error, as fmt.Printf does.
func (h *Harness) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// Error is Log followed by Fail.
func (h *Harness) Error(args ...any) {
	h.Fail()
	h.Log(args...)
}

// Errorf is Logf followed by Fail.
func (h *Harness) Errorf(format string, args ...any) {
	h.Fail()
	h.Logf(format, args...)
}

// Fail marks the harness as having failed and goes on.
func (h *Harness) Fail() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failed = true
}

// Failed reports whether Fail, Error, Errorf, Fatal, Fatalf or FailNow has been called.
func (h *Harness) Failed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.failed
}

// FailNow is Fatal("FailNow called").
func (h *Harness) FailNow() { h.Fatal("FailNow called") }

// Fatal marks the harness as having failed and unwinds to Catch, which returns its arguments,
// formatted as fmt.Sprint does, as an error.
func (h *Harness) Fatal(args ...any) {
	h.Fail()
	panic(fatal{msg: fmt.Sprint(args...)})
}

// Fatalf is Fatal with the message formatted as fmt.Sprintf does.
func (h *Harness) Fatalf(format string, args ...any) {
	h.Fail()
	panic(fatal{msg: fmt.Sprintf(format, args...)})
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on right now, for a service that
// must be told its port before it starts (wrangler, versitygw).
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
