//go:build !(js && wasm)

package main

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestMemSpool(t *testing.T) {
	sp, err := memSpooler{limit: 3 * spoolChunk}.Spool()
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	data := make([]byte, 2*spoolChunk+12345)
	rand.NewChaCha8([32]byte{7}).Read(data)
	// Written in odd pieces, across chunk boundaries.
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 70001)
		if w, err := sp.Write(rest[:n]); w != n || err != nil {
			t.Fatalf("Write = %d, %v", w, err)
		}
		rest = rest[n:]
	}
	if pos, err := sp.Seek(0, io.SeekStart); pos != 0 || err != nil {
		t.Fatalf("Seek = %d, %v", pos, err)
	}
	got, err := io.ReadAll(sp)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadAll: %d bytes, %v; want the %d written", len(got), err, len(data))
	}
	buf := make([]byte, 100)
	off := int64(spoolChunk - 50)
	if n, err := sp.ReadAt(buf, off); n != 100 || err != nil || !bytes.Equal(buf, data[off:off+100]) {
		t.Errorf("ReadAt across a chunk boundary = %d, %v", n, err)
	}
	if n, err := sp.ReadAt(buf, int64(len(data))-10); n != 10 || err != io.EOF {
		t.Errorf("ReadAt at the end = %d, %v; want 10, EOF", n, err)
	}
	if pos, err := sp.Seek(-10, io.SeekEnd); pos != int64(len(data))-10 || err != nil {
		t.Errorf("Seek from the end = %d, %v", pos, err)
	}
	// Past the limit: refused, nothing written.
	sp.Seek(0, io.SeekEnd)
	if n, err := sp.Write(make([]byte, spoolChunk)); n != 0 || !errors.Is(err, ErrSpoolFull) {
		t.Errorf("Write past the limit = %d, %v; want 0, ErrSpoolFull", n, err)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Write([]byte("x")); err == nil {
		t.Errorf("Write after Close succeeded")
	}
}

func TestParseRange(t *testing.T) {
	const size = 100
	tests := []struct {
		h                 string
		want              byteRange
		ok, unsatisfiable bool
	}{
		{"bytes=0-9", byteRange{0, 10}, true, false},
		{"bytes=10-19", byteRange{10, 10}, true, false},
		{"bytes=90-", byteRange{90, 10}, true, false},
		{"bytes=90-1000", byteRange{90, 10}, true, false},
		{"bytes=-5", byteRange{95, 5}, true, false},
		{"bytes=-500", byteRange{0, 100}, true, false},
		{"bytes=100-", byteRange{}, true, true},
		{"bytes=-0", byteRange{}, true, true},
		{"bytes=0-1,5-6", byteRange{}, false, false},
		{"bytes=5-1", byteRange{}, false, false},
		{"items=0-1", byteRange{}, false, false},
		{"bytes=x-1", byteRange{}, false, false},
		{"bytes=1", byteRange{}, false, false},
	}
	for _, tt := range tests {
		r, ok, unsat := parseRange(tt.h, size)
		if r != tt.want || ok != tt.ok || unsat != tt.unsatisfiable {
			t.Errorf("parseRange(%q, %d) = %+v, %v, %v; want %+v, %v, %v", tt.h, size, r, ok, unsat, tt.want, tt.ok, tt.unsatisfiable)
		}
	}
}

func TestParseOptions(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	o, err := parseOptions(env("MODMIRROR_UPSTREAM", "http://a.example,direct", "MODMIRROR_SUMDB", "off"))
	if err != nil || o.Upstream != "http://a.example" || o.SumDB != "off" || o.spoolLimit != DefaultSpoolLimit {
		t.Errorf("parseOptions = %+v, %v; want upstream without direct, sumdb off, default spool limit", o, err)
	}
	if _, err := parseOptions(env()); err == nil || !strings.Contains(err.Error(), "MODMIRROR_UPSTREAM is not set") {
		t.Errorf("no upstream: %v; want an error naming MODMIRROR_UPSTREAM", err)
	}
	if o, err := parseOptions(env("MODMIRROR_OFFLINE", "true")); err != nil || !o.Offline {
		t.Errorf("offline without upstream: %+v, %v", o, err)
	}
	for _, bad := range [][]string{
		{"MODMIRROR_UPSTREAM", "http://a.example", "MODMIRROR_SPOOL_LIMIT", "0"},
		{"MODMIRROR_UPSTREAM", "http://a.example", "MODMIRROR_SPOOL_LIMIT", "lots"},
		{"MODMIRROR_UPSTREAM", "http://a.example", "MODMIRROR_OFFLINE", "maybe"},
	} {
		if _, err := parseOptions(env(bad...)); err == nil {
			t.Errorf("parseOptions(%q) succeeded", bad)
		}
	}
}
