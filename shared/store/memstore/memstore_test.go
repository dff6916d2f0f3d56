package memstore_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strings"
	"testing"

	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/store/memstore"
	"github.com/modmirror/modmirror/shared/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store { return memstore.New() })
}

func TestKeepsHeaders(t *testing.T) {
	s := memstore.New()
	const key = "example.com/m/@v/v1.0.0.info"
	o := store.PutOptions{ContentType: "application/json", CacheControl: "public, max-age=60"}
	if _, err := s.Put(t.Context(), key, strings.NewReader("{}"), 2, o); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stat(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Open(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	for _, info := range []store.Info{st, obj.Info()} {
		if info.ContentType != o.ContentType || info.CacheControl != o.CacheControl {
			t.Errorf("Info %+v, want ContentType %q and CacheControl %q", info, o.ContentType, o.CacheControl)
		}
	}
}

func TestObjectSeeks(t *testing.T) {
	s := memstore.New()
	if _, err := s.Put(t.Context(), "k", strings.NewReader("abc"), 3, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	obj, err := s.Open(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	if _, ok := obj.(io.ReadSeeker); !ok {
		t.Errorf("%T is not an io.ReadSeeker", obj)
	}
	if _, ok := obj.(io.ReaderAt); !ok {
		t.Errorf("%T is not an io.ReaderAt", obj)
	}
}

func TestETagIsContentHash(t *testing.T) {
	s := memstore.New()
	sum := sha256.Sum256([]byte("hello"))
	want := `"` + hex.EncodeToString(sum[:16]) + `"`
	for _, key := range []string{"a", "b", "a"} {
		info, err := s.Put(t.Context(), key, strings.NewReader("hello"), -1, store.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if info.ETag != want {
			t.Errorf("Put(%q) ETag %s, want %s", key, info.ETag, want)
		}
	}
}
