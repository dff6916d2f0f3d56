package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/modfile"

	"github.com/modmirror/modmirror/shared/checksum"
)

// inputSet is what the command line asks for.
type inputSet struct {
	lines []checksum.Line // from go.sum files
	args  []string        // path@version or path@query, to resolve
}

// readInputs reads every input: files and directories by what they are, anything else with an @
// as a module@version.
func readInputs(inputs []string) (*inputSet, error) {
	in := &inputSet{}
	for _, arg := range inputs {
		fi, err := os.Stat(arg)
		switch {
		case err == nil && fi.IsDir():
			err = in.readDir(arg)
		case err == nil:
			err = in.readFile(arg)
		case errors.Is(err, fs.ErrNotExist) && strings.Contains(arg, "@"):
			in.args = append(in.args, arg)
			err = nil
		case errors.Is(err, fs.ErrNotExist):
			err = fmt.Errorf("%s: no such file, and not a module@version", arg)
		}
		if err != nil {
			return nil, err
		}
	}
	return in, nil
}

// readDir reads a module or workspace directory: go.work (with go.work.sum) if there is one,
// else go.mod's go.sum.
func (in *inputSet) readDir(dir string) error {
	for _, name := range []string{"go.work", "go.mod"} {
		file := filepath.Join(dir, name)
		if _, err := os.Stat(file); err == nil {
			return in.readFile(file)
		}
	}
	return fmt.Errorf("%s: a directory with neither go.work nor go.mod", dir)
}

// readFile reads one input file, by its name.
func (in *inputSet) readFile(file string) error {
	base := filepath.Base(file)
	switch {
	case strings.HasSuffix(base, ".sum"):
		return in.readSum(file, true)
	case base == "go.mod" || strings.HasSuffix(base, ".mod"):
		return in.readSum(filepath.Join(filepath.Dir(file), "go.sum"), true)
	case base == "go.work" || strings.HasSuffix(base, ".work"):
		return in.readWork(file)
	default:
		return in.readList(file)
	}
}

// readSum adds the lines of a go.sum file; a missing one is an error if required.
func (in *inputSet) readSum(file string, required bool) error {
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) && !required {
		return nil
	}
	if err != nil {
		return err
	}
	lines, err := checksum.ParseGoSum(data)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	in.lines = append(in.lines, lines...)
	return nil
}

// readWork adds go.work.sum and the go.sum of every module the workspace uses.
func (in *inputSet) readWork(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	wf, err := modfile.ParseWork(file, data, nil)
	if err != nil {
		return err
	}
	dir := filepath.Dir(file)
	if err := in.readSum(filepath.Join(dir, "go.work.sum"), false); err != nil {
		return err
	}
	for _, u := range wf.Use {
		p := u.Path
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if err := in.readSum(filepath.Join(p, "go.sum"), false); err != nil {
			return err
		}
	}
	return nil
}

// readList adds a file of module@version lines ("module version" lines too, as `go list -m all`
// prints them after its first line); blank lines and # comments are skipped.
func (in *inputSet) readList(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return fmt.Errorf("%s: a binary file is not an input", file)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case len(f) == 1 && strings.Contains(f[0], "@"):
			in.args = append(in.args, f[0])
		case len(f) == 2 && !strings.Contains(f[0], "@"):
			in.args = append(in.args, f[0]+"@"+f[1])
		default:
			return fmt.Errorf("%s:%d: want module@version, have %q", file, n, strings.TrimSpace(line))
		}
	}
	return sc.Err()
}
