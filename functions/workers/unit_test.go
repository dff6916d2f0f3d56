//go:build !(js && wasm)

package main

import (
	"strings"
	"testing"
)

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
