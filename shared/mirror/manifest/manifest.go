// Package manifest lists every object of a mirror with its size and SHA-256, in a text format
// that is the same bytes for the same objects (sorted by key, no times), so that it can be signed
// and two generations of one mirror compared:
//
//	modmirror-manifest-v1
//	<sha256 hex> <size> <key>
//	...
//
// The manifest itself (Key) and its signature (SigKey) are not listed.
package manifest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/modmirror/modmirror/shared/store"
)

// Keys of the manifest and of its signature in a mirror.
const (
	Key    = "_mirror/manifest"
	SigKey = "_mirror/manifest.sig"
)

// header is the manifest's first line.
const header = "modmirror-manifest-v1"

// SignatureContext is the context string a manifest's signature is made for.
const SignatureContext = "modmirror manifest v1"

// Entry is one object.
type Entry struct {
	Key    string
	Size   int64
	SHA256 [sha256.Size]byte
}

// Manifest lists objects, sorted by key (byte-wise).
type Manifest struct {
	Entries []Entry
}

// Listed reports whether a key belongs in a manifest: every key but the manifest's own.
func Listed(key string) bool { return key != Key && key != SigKey }

// Marshal encodes m.
func (m *Manifest) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(header + "\n")
	for _, e := range m.Entries {
		b.WriteString(hex.EncodeToString(e.SHA256[:]))
		b.WriteByte(' ')
		b.WriteString(strconv.FormatInt(e.Size, 10))
		b.WriteByte(' ')
		b.WriteString(e.Key)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Parse decodes what Marshal wrote. It refuses unsorted or duplicate keys, so a parsed manifest
// is in the one order Marshal writes.
func Parse(data []byte) (*Manifest, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	if !sc.Scan() || sc.Text() != header {
		return nil, fmt.Errorf("parse manifest: first line is not %q", header)
	}
	m := &Manifest{}
	for n := 2; sc.Scan(); n++ {
		f := strings.SplitN(sc.Text(), " ", 3)
		if len(f) != 3 {
			return nil, fmt.Errorf("parse manifest: line %d: want \"SHA256 SIZE KEY\"", n)
		}
		var e Entry
		sum, err := hex.DecodeString(f[0])
		if err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("parse manifest: line %d: malformed SHA-256 %q", n, f[0])
		}
		copy(e.SHA256[:], sum)
		if e.Size, err = strconv.ParseInt(f[1], 10, 64); err != nil || e.Size < 0 {
			return nil, fmt.Errorf("parse manifest: line %d: malformed size %q", n, f[1])
		}
		e.Key = f[2]
		if err := store.CheckKey(e.Key); err != nil {
			return nil, fmt.Errorf("parse manifest: line %d: %w", n, err)
		}
		if k := len(m.Entries); k > 0 && m.Entries[k-1].Key >= e.Key {
			return nil, fmt.Errorf("parse manifest: line %d: key %q is out of order or repeated", n, e.Key)
		}
		m.Entries = append(m.Entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	return m, nil
}

// Lookup returns the entry for key.
func (m *Manifest) Lookup(key string) (Entry, bool) {
	i, ok := slices.BinarySearchFunc(m.Entries, key, func(e Entry, k string) int { return strings.Compare(e.Key, k) })
	if !ok {
		return Entry{}, false
	}
	return m.Entries[i], true
}

// Hash returns the size and SHA-256 of the object under key.
func Hash(ctx context.Context, st store.Store, key string) (int64, [sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	obj, err := st.Open(ctx, key)
	if err != nil {
		return 0, sum, err
	}
	defer obj.Close()
	h := sha256.New()
	n, err := io.Copy(h, obj)
	if err != nil {
		return 0, sum, fmt.Errorf("hash %s: %w", key, err)
	}
	h.Sum(sum[:0])
	return n, sum, nil
}

// Build lists every object of st (a Walker) but the manifest's own. For each object it asks
// known (which may be nil) for its entry: one known entry of the size the store reports is taken
// as it is, without reading the object; every other object is read and hashed.
func Build(ctx context.Context, st store.Store, known func(key string) (Entry, bool)) (*Manifest, error) {
	w, ok := st.(store.Walker)
	if !ok {
		return nil, errors.New("build manifest: the store cannot list its objects")
	}
	m := &Manifest{}
	err := w.Walk(ctx, "", func(info store.Info) error {
		if !Listed(info.Key) {
			return nil
		}
		if known != nil {
			if e, ok := known(info.Key); ok && e.Key == info.Key && e.Size == info.Size {
				m.Entries = append(m.Entries, e)
				return nil
			}
		}
		size, sum, err := Hash(ctx, st, info.Key)
		if err != nil {
			return err
		}
		m.Entries = append(m.Entries, Entry{Key: info.Key, Size: size, SHA256: sum})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("build manifest: %w", err)
	}
	return m, nil
}

// Problem is one way a store differs from its manifest.
type Problem struct {
	Key    string
	Reason string
}

func (p Problem) String() string { return p.Key + ": " + p.Reason }

// Check reads and hashes every object of st and compares it with m: every listed object must be
// there with its size and SHA-256, and every object must be listed. It returns the problems in
// key order, and an error only when the store could not be read.
func Check(ctx context.Context, st store.Store, m *Manifest) ([]Problem, int, error) {
	w, ok := st.(store.Walker)
	if !ok {
		return nil, 0, errors.New("check manifest: the store cannot list its objects")
	}
	var problems []Problem
	seen := make(map[string]bool, len(m.Entries))
	checked := 0
	err := w.Walk(ctx, "", func(info store.Info) error {
		if !Listed(info.Key) {
			return nil
		}
		seen[info.Key] = true
		e, ok := m.Lookup(info.Key)
		if !ok {
			problems = append(problems, Problem{info.Key, "not in the manifest"})
			return nil
		}
		size, sum, err := Hash(ctx, st, info.Key)
		if err != nil {
			return err
		}
		checked++
		switch {
		case size != e.Size:
			problems = append(problems, Problem{info.Key, fmt.Sprintf("%d bytes, the manifest says %d", size, e.Size)})
		case sum != e.SHA256:
			problems = append(problems, Problem{info.Key, fmt.Sprintf("SHA-256 %x, the manifest says %x", sum, e.SHA256)})
		}
		return nil
	})
	if err != nil {
		return nil, checked, fmt.Errorf("check manifest: %w", err)
	}
	for _, e := range m.Entries {
		if !seen[e.Key] {
			problems = append(problems, Problem{e.Key, "missing (listed in the manifest)"})
		}
	}
	slices.SortStableFunc(problems, func(a, b Problem) int { return strings.Compare(a.Key, b.Key) })
	return problems, checked, nil
}
