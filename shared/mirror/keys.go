package mirror

import (
	"fmt"

	"golang.org/x/mod/module"
)

// GoSumKey is where a mirror records the go.sum hashes of every module version it holds, each
// checked when it was written.
const GoSumKey = "_mirror/go.sum"

// objectKey returns the key of a module version's .info, .mod or .zip (ext without the dot).
func objectKey(m module.Version, ext string) (string, error) {
	ep, err := module.EscapePath(m.Path)
	if err != nil {
		return "", fmt.Errorf("%s@%s: %w", m.Path, m.Version, err)
	}
	ev, err := module.EscapeVersion(m.Version)
	if err != nil {
		return "", fmt.Errorf("%s@%s: %w", m.Path, m.Version, err)
	}
	return ep + "/@v/" + ev + "." + ext, nil
}

// listKey returns the key of a module's version list.
func listKey(path string) (string, error) {
	ep, err := module.EscapePath(path)
	if err != nil {
		return "", err
	}
	return ep + "/@v/list", nil
}

// mv formats a module version for messages.
func mv(m module.Version) string { return m.Path + "@" + m.Version }
