package main

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
)

// benchTB is the small testing.TB that shared/testkit needs outside a test: temporary
// directories under one root, cleanups run by close, and failures that unwind to catch.
// It embeds a nil testing.TB only for the interface's unexported method; calling a method not
// defined here panics.
type benchTB struct {
	testing.TB
	root     string
	mu       sync.Mutex
	cleanups []func()
	n        int
}

func newTB(root string) *benchTB { return &benchTB{root: root} }

// fatalError is what Fatal panics with; catch turns it back into an error.
type fatalError struct{ msg string }

// catch runs fn and returns the failure reported through Fatal, if any.
func catch(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			fe, ok := r.(fatalError)
			if !ok {
				panic(r)
			}
			err = errors.New(fe.msg)
		}
	}()
	return fn()
}

func (t *benchTB) close() {
	t.mu.Lock()
	fns := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

func (t *benchTB) Cleanup(fn func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, fn)
}

func (t *benchTB) TempDir() string {
	t.mu.Lock()
	t.n++
	n := t.n
	t.mu.Unlock()
	dir := fmt.Sprintf("%s/tmp%d", t.root, n)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func (t *benchTB) Helper()                           {}
func (t *benchTB) Logf(format string, args ...any)   {}
func (t *benchTB) Log(args ...any)                   {}
func (t *benchTB) Error(args ...any)                 { t.Fatal(args...) }
func (t *benchTB) Errorf(format string, args ...any) { t.Fatalf(format, args...) }
func (t *benchTB) Fatal(args ...any)                 { panic(fatalError{fmt.Sprint(args...)}) }
func (t *benchTB) Fatalf(format string, args ...any) { panic(fatalError{fmt.Sprintf(format, args...)}) }
func (t *benchTB) Failed() bool                      { return false }
func (t *benchTB) Name() string                      { return "bench/workers" }
