package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
)

// benchTB is the small testing.TB that shared/testkit needs outside a test: temporary
// directories under one root, cleanups run by close, and failures that unwind to the caller of
// catch instead of ending a test.
//
// It embeds a nil testing.TB only to satisfy the interface's unexported method; every method
// testkit calls is defined here, and calling any other one panics.
type benchTB struct {
	testing.TB

	ctx  context.Context
	root string

	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

// fatalError is what Fatal and Fatalf panic with; catch turns it back into an error.
type fatalError struct{ msg string }

func newBenchTB(ctx context.Context, root string) *benchTB {
	return &benchTB{ctx: ctx, root: root}
}

// catch runs fn and returns the failure it reported through Fatal or Fatalf, if any. Other
// panics go on unwinding.
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

// close runs the registered cleanups, last registered first.
func (t *benchTB) close() {
	t.mu.Lock()
	fns := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

func (t *benchTB) Helper()                  {}
func (t *benchTB) Name() string             { return "bench/core" }
func (t *benchTB) Context() context.Context { return t.ctx }

func (t *benchTB) Cleanup(fn func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, fn)
}

// TempDir returns a new directory under the benchmark's root directory, which is removed as a
// whole at the end.
func (t *benchTB) TempDir() string {
	dir, err := os.MkdirTemp(t.root, "tb-")
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	return dir
}

func (t *benchTB) Log(args ...any)                 { fmt.Fprintln(os.Stderr, args...) }
func (t *benchTB) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

func (t *benchTB) Error(args ...any) {
	t.Fail()
	t.Log(args...)
}

func (t *benchTB) Errorf(format string, args ...any) {
	t.Fail()
	t.Logf(format, args...)
}

func (t *benchTB) Fail() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failed = true
}

func (t *benchTB) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

func (t *benchTB) FailNow() { t.Fatal("FailNow called") }

func (t *benchTB) Fatal(args ...any) {
	t.Fail()
	panic(fatalError{msg: fmt.Sprint(args...)})
}

func (t *benchTB) Fatalf(format string, args ...any) {
	t.Fail()
	panic(fatalError{msg: fmt.Sprintf(format, args...)})
}
