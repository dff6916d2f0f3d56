// Package overlay stacks a writable store over a read-only one: reads see the top store's object
// if it has one, else the base's; writes go to the top only, so the base is never changed. The
// generator verifies with a checksum database whose state starts from the mirror's and ends in a
// scratch store; verify reads a mirror without writing to it.
package overlay

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/modmirror/modmirror/shared/store"
)

// Store is a store.Store reading Top then Base, writing Top.
type Store struct {
	top, base store.Store
	// hide reports base keys that reads must not see.
	hide func(key string) bool
}

var _ store.Store = (*Store)(nil)

// New returns an overlay of top over base. hide, if not nil, hides base keys from reads (they
// read as missing unless top has them). Nothing may write to base while the overlay is in use.
func New(top, base store.Store, hide func(key string) bool) *Store {
	return &Store{top: top, base: base, hide: hide}
}

// Stat implements store.Store.
func (s *Store) Stat(ctx context.Context, key string) (store.Info, error) {
	info, err := s.top.Stat(ctx, key)
	if err == nil || !errors.Is(err, store.ErrNotExist) {
		return info, err
	}
	if s.hide != nil && s.hide(key) {
		return store.Info{}, fmt.Errorf("stat %q: %w", key, store.ErrNotExist)
	}
	return s.base.Stat(ctx, key)
}

// Open implements store.Store.
func (s *Store) Open(ctx context.Context, key string) (store.Object, error) {
	obj, err := s.top.Open(ctx, key)
	if err == nil || !errors.Is(err, store.ErrNotExist) {
		return obj, err
	}
	if s.hide != nil && s.hide(key) {
		return nil, fmt.Errorf("open %q: %w", key, store.ErrNotExist)
	}
	return s.base.Open(ctx, key)
}

// Put implements store.Store: the conditions hold against the object a read would see, and the
// object is written to the top store. The base never changes under an overlay, so each case is one
// atomic Put on the top store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, o store.PutOptions) (store.Info, error) {
	if !o.IfAbsent && o.IfMatch == "" {
		return s.top.Put(ctx, key, r, size, o)
	}
	inTop := true
	if _, err := s.top.Stat(ctx, key); errors.Is(err, store.ErrNotExist) {
		inTop = false
	} else if err != nil {
		return store.Info{}, err
	}
	if inTop {
		return s.top.Put(ctx, key, r, size, o)
	}
	// Only the base can hold it: check it there, then create it on top.
	var base store.Info
	exists := false
	if s.hide == nil || !s.hide(key) {
		info, err := s.base.Stat(ctx, key)
		switch {
		case err == nil:
			base, exists = info, true
		case !errors.Is(err, store.ErrNotExist):
			return store.Info{}, err
		}
	}
	switch {
	case o.IfAbsent && exists:
		return store.Info{}, fmt.Errorf("put %q: %w", key, store.ErrExist)
	case o.IfMatch != "" && (!exists || base.ETag != o.IfMatch):
		return store.Info{}, fmt.Errorf("put %q: %w", key, store.ErrPrecondition)
	}
	info, err := s.top.Put(ctx, key, r, size, store.PutOptions{IfAbsent: true, ContentType: o.ContentType, CacheControl: o.CacheControl})
	if o.IfMatch != "" && errors.Is(err, store.ErrExist) {
		// Created on top since the check: the object matched is gone.
		return store.Info{}, fmt.Errorf("put %q: %w", key, store.ErrPrecondition)
	}
	return info, err
}
