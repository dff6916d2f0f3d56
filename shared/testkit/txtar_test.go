package testkit

import (
	"strings"
	"testing"
)

func TestParseFixture(t *testing.T) {
	m, err := parseFixture("x.txtar", []byte(`# comment
module: example.com/x
version: v1.2.3
time: 2024-01-02T03:04:05Z

-- go.mod --
module example.com/x
-- a/b.go --
package b
-- empty --
-- last --
no newline`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Path != "example.com/x" || m.Version != "v1.2.3" || m.Time.Format("2006-01-02T15:04:05Z07:00") != "2024-01-02T03:04:05Z" {
		t.Errorf("header: %+v", m)
	}
	want := map[string]string{
		"go.mod": "module example.com/x\n",
		"a/b.go": "package b\n",
		"empty":  "",
		"last":   "no newline",
	}
	if len(m.Files) != len(want) {
		t.Errorf("files: %q", m.Files)
	}
	for name, data := range want {
		if got, ok := m.Files[name]; !ok || string(got) != data {
			t.Errorf("%s = %q, want %q", name, got, data)
		}
	}

	for _, bad := range []string{
		"module: example.com/x\nversion: v1.0.0\n-- go.mod --\n",                                 // no time
		"module: example.com/x\nversion: v1.0.0\ntime: yesterday\n",                              // bad time
		"module: example.com/x\nversion: v1.0.0\ntime: 2024-01-01T00:00:00Z\nsize: 3\n",          // unknown key
		"module: example.com/x\nversion: v1.0.0\ntime: 2024-01-01T00:00:00Z\n-- a --\n-- a --\n", // duplicate
		"module example.com/x\n", // no colon
	} {
		if _, err := parseFixture("bad.txtar", []byte(bad)); err == nil {
			t.Errorf("parseFixture(%q) succeeded", bad)
		} else if !strings.HasPrefix(err.Error(), "bad.txtar") {
			t.Errorf("error %q does not name the file", err)
		}
	}
}
