package testkit_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/modmirror/modmirror/shared/testkit"
)

func TestHarness(t *testing.T) {
	for _, tc := range []struct {
		name string
		// run uses h, whose root is root, inside Catch; it returns what Catch's function returns,
		// and the cleanups it registers append to order.
		run        func(h *testkit.Harness, root string, order *[]int) error
		wantErr    string // "" for none
		wantFailed bool
		wantOrder  []int // the cleanups' order at Close
	}{
		{
			name:       "Fatal",
			run:        func(h *testkit.Harness, _ string, _ *[]int) error { h.Fatal("broken ", 1); return nil },
			wantErr:    "broken 1",
			wantFailed: true,
		},
		{
			name:       "Fatalf",
			run:        func(h *testkit.Harness, _ string, _ *[]int) error { h.Fatalf("broken %d", 2); return nil },
			wantErr:    "broken 2",
			wantFailed: true,
		},
		{
			name:       "FailNow",
			run:        func(h *testkit.Harness, _ string, _ *[]int) error { h.FailNow(); return nil },
			wantErr:    "FailNow called",
			wantFailed: true,
		},
		{
			name:    "returned error",
			run:     func(h *testkit.Harness, _ string, _ *[]int) error { return errors.New("returned") },
			wantErr: "returned",
		},
		{
			name:       "Errorf goes on",
			run:        func(h *testkit.Harness, _ string, _ *[]int) error { h.Errorf("error %d", 3); return nil },
			wantFailed: true,
		},
		{
			name: "cleanups in reverse",
			run: func(h *testkit.Harness, _ string, order *[]int) error {
				for i := range 3 {
					h.Cleanup(func() { *order = append(*order, i) })
				}
				h.Cleanup(func() { h.Fatal("a failing cleanup does not stop the others") })
				return nil
			},
			wantOrder:  []int{2, 1, 0},
			wantFailed: true, // by the failing cleanup, at Close
		},
		{
			name: "TempDir under root",
			run: func(h *testkit.Harness, root string, _ *[]int) error {
				a, b := h.TempDir(), h.TempDir()
				if a == b {
					return errors.New("TempDir returned " + a + " twice")
				}
				for _, dir := range []string{a, b} {
					if filepath.Dir(dir) != root {
						return fmt.Errorf("TempDir returned %s, not a directory in %s", dir, root)
					}
					if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
						return fmt.Errorf("TempDir returned %s, not a directory: %v", dir, err)
					}
				}
				return nil
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			h := testkit.NewHarness(t.Context(), root)
			if h.Context() != t.Context() {
				t.Error("Context is not the one given to NewHarness")
			}
			var order []int
			err := h.Catch(func() error { return tc.run(h, root, &order) })
			if got := errString(err); got != tc.wantErr {
				t.Errorf("Catch = %q, want %q", got, tc.wantErr)
			}
			h.Close()
			if !slices.Equal(order, tc.wantOrder) {
				t.Errorf("cleanups ran in order %v, want %v", order, tc.wantOrder)
			}
			if h.Failed() != tc.wantFailed {
				t.Errorf("Failed = %v, want %v", h.Failed(), tc.wantFailed)
			}
			h.Close() // a second Close runs nothing again
			if len(order) != len(tc.wantOrder) {
				t.Errorf("a second Close ran cleanups again: %v", order)
			}
		})
	}
}

// TestHarnessOtherPanic checks that Catch lets panics other than Fatal's go on.
func TestHarnessOtherPanic(t *testing.T) {
	h := testkit.NewHarness(t.Context(), t.TempDir())
	defer func() {
		if r := recover(); r != "other" {
			t.Errorf("recovered %v, want the panic \"other\"", r)
		}
	}()
	h.Catch(func() error { panic("other") })
	t.Error("Catch returned")
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
