package testkit

import (
	"bytes"
	"fmt"
	"strings"
	"time"
)

// txtarFile is one "-- name --" section of a txtar archive.
type txtarFile struct {
	name string
	data []byte
}

// parseTxtar splits a txtar archive into its leading comment and its files.
// A marker line is "-- NAME --"; a file's data is everything up to the next
// marker line or the end of the archive.
func parseTxtar(data []byte) (comment []byte, files []txtarFile) {
	comment, name, rest := findMarker(data)
	for name != "" {
		body, next, after := findMarker(rest)
		files = append(files, txtarFile{name: name, data: body})
		name, rest = next, after
	}
	return comment, files
}

// findMarker returns the text before the first marker line in data, the name
// in that marker and the text after it. With no marker it returns data, "",
// nil.
func findMarker(data []byte) (before []byte, name string, after []byte) {
	for i := 0; i < len(data); {
		line := data[i:]
		end := bytes.IndexByte(line, '\n')
		if end >= 0 {
			line = line[:end]
		}
		if n, ok := markerName(line); ok {
			if end < 0 {
				return data[:i], n, nil
			}
			return data[:i], n, data[i+end+1:]
		}
		if end < 0 {
			break
		}
		i += end + 1
	}
	return data, "", nil
}

// markerName reports whether line is a marker line "-- NAME --" and returns
// NAME.
func markerName(line []byte) (string, bool) {
	s := strings.TrimSuffix(string(line), "\r")
	if !strings.HasPrefix(s, "-- ") || !strings.HasSuffix(s, " --") || len(s) < 7 {
		return "", false
	}
	name := strings.TrimSpace(s[3 : len(s)-3])
	return name, name != ""
}

// parseFixture turns a txtar fixture into a Module. The comment holds
// "module: PATH", "version: VERSION" and "time: RFC3339" lines; blank lines
// and lines starting with # are ignored.
func parseFixture(name string, data []byte) (*Module, error) {
	comment, files := parseTxtar(data)
	m := &Module{Files: make(map[string][]byte, len(files))}
	var haveTime bool
	for i, line := range strings.Split(string(comment), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want \"key: value\", have %q", name, i+1, line)
		}
		value = strings.TrimSpace(value)
		switch strings.TrimSpace(key) {
		case "module":
			m.Path = value
		case "version":
			m.Version = value
		case "time":
			t, err := time.Parse(time.RFC3339, value)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", name, i+1, err)
			}
			m.Time, haveTime = t.UTC(), true
		default:
			return nil, fmt.Errorf("%s:%d: unknown key %q", name, i+1, key)
		}
	}
	if m.Path == "" || m.Version == "" || !haveTime {
		return nil, fmt.Errorf("%s: header needs module:, version: and time: lines", name)
	}
	for _, f := range files {
		if _, dup := m.Files[f.name]; dup {
			return nil, fmt.Errorf("%s: file %s appears twice", name, f.name)
		}
		m.Files[f.name] = f.data
	}
	return m, nil
}
