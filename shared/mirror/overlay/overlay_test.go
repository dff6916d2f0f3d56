package overlay_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/modmirror/modmirror/shared/mirror/overlay"
	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/store/memstore"
	"github.com/modmirror/modmirror/shared/store/storetest"
)

// An overlay over an empty base is a store like any other.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return overlay.New(memstore.New(), memstore.New(), nil)
	})
}

func TestOverlay(t *testing.T) {
	ctx := t.Context()
	base, top := memstore.New(), memstore.New()
	put := func(s store.Store, key, data string, o store.PutOptions) error {
		_, err := s.Put(ctx, key, strings.NewReader(data), int64(len(data)), o)
		return err
	}
	if err := put(base, "a", "base", store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	put(base, "_mirror/x", "hidden", store.PutOptions{})
	o := overlay.New(top, base, func(key string) bool { return strings.HasPrefix(key, "_mirror/") })

	read := func(key string) string {
		data, _, err := store.ReadAll(ctx, o, key, 100)
		if err != nil {
			return "error: " + err.Error()
		}
		return string(data)
	}
	if got := read("a"); got != "base" {
		t.Errorf("read a = %q", got)
	}
	if got := read("_mirror/x"); !strings.HasPrefix(got, "error") {
		t.Errorf("a hidden key reads %q", got)
	}
	if err := put(o, "a", "top", store.PutOptions{IfAbsent: true}); !errors.Is(err, store.ErrExist) {
		t.Errorf("IfAbsent over a base object: %v", err)
	}
	info, _ := o.Stat(ctx, "a")
	if err := put(o, "a", "top", store.PutOptions{IfMatch: `"nope"`}); !errors.Is(err, store.ErrPrecondition) {
		t.Errorf("IfMatch with a wrong ETag: %v", err)
	}
	if err := put(o, "a", "top", store.PutOptions{IfMatch: info.ETag}); err != nil {
		t.Errorf("IfMatch with the base's ETag: %v", err)
	}
	if got := read("a"); got != "top" {
		t.Errorf("after a write, a reads %q", got)
	}
	if data, _, _ := store.ReadAll(ctx, base, "a", 100); string(data) != "base" {
		t.Errorf("the base was written: %q", data)
	}
	if err := put(o, "_mirror/x", "new", store.PutOptions{IfAbsent: true}); err != nil {
		t.Errorf("a hidden key is absent for IfAbsent: %v", err)
	}
	if got := read("_mirror/x"); got != "new" {
		t.Errorf("a hidden key written to the top reads %q", got)
	}
}
