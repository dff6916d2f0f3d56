// Package config resolves modmirror's settings the same way on every host: command-line flags,
// then MODMIRROR_<FLAG> environment variables for flags left unset, then the go command's own
// environment (go env GOPROXY, GOSUMDB, GOPRIVATE) for the upstream and the checksum database.
package config

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// EnvPrefix starts every environment variable that sets a flag: -public-url is
// MODMIRROR_PUBLIC_URL.
const EnvPrefix = "MODMIRROR_"

// EnvName returns the environment variable for a flag name.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// ApplyEnv sets every flag of fs that was not given on the command line from its environment
// variable, if that is set. getenv is os.Getenv on most hosts.
func ApplyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || f.Name == VersionFlag {
			return
		}
		if v := getenv(EnvName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", EnvName(f.Name), v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// VersionFlag is the flag every command has to print its build and exit; it has no
// environment variable.
const VersionFlag = "version"

// PrintUsage writes a command's -h: its synopsis, then every flag with the argument it takes,
// its environment variable and its default.
func PrintUsage(w io.Writer, fs *flag.FlagSet, synopsis string) {
	fmt.Fprintln(w, strings.TrimRight(synopsis, "\n"))
	fmt.Fprintln(w, "\nflags (each also read from the environment variable named):")
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		line := "  -" + f.Name
		if arg != "" {
			line += " " + arg
		}
		var notes []string
		if f.Name != VersionFlag {
			notes = append(notes, EnvName(f.Name))
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			notes = append(notes, "default "+f.DefValue)
		}
		if len(notes) > 0 {
			line += "  (" + strings.Join(notes, ", ") + ")"
		}
		fmt.Fprintf(w, "%s\n    \t%s\n", line, usage)
	})
}

// GoEnv is what modmirror takes from the toolchain when it is not configured.
type GoEnv struct {
	GOPROXY, GOSUMDB, GOPRIVATE, GONOSUMDB string
}

// ReadGoEnv asks the go command for its settings; without a go command on PATH it falls back to
// the process environment and the go command's documented defaults for GOSUMDB.
func ReadGoEnv() (GoEnv, error) {
	out, err := exec.Command("go", "env", "-json", "GOPROXY", "GOSUMDB", "GOPRIVATE", "GONOSUMDB").Output()
	if err != nil {
		env := GoEnv{
			GOPROXY:   os.Getenv("GOPROXY"),
			GOSUMDB:   os.Getenv("GOSUMDB"),
			GOPRIVATE: os.Getenv("GOPRIVATE"),
			GONOSUMDB: os.Getenv("GONOSUMDB"),
		}
		if env.GOSUMDB == "" {
			env.GOSUMDB = DefaultSumDBName
		}
		if env.GOPROXY == "" {
			return env, fmt.Errorf("go env: %w (and GOPROXY is not set)", err)
		}
		return env, nil
	}
	var env GoEnv
	if err := json.Unmarshal(out, &env); err != nil {
		return GoEnv{}, fmt.Errorf("go env: %w", err)
	}
	return env, nil
}

// UpstreamList drops the entries modmirror cannot use ("direct", "off") from a GOPROXY list.
// An empty result means there is no proxy to fill from.
func UpstreamList(goproxy string) string {
	return mapList(goproxy, func(entry string) string {
		if entry == "direct" || entry == "off" {
			return ""
		}
		return entry
	})
}

// mapList rewrites each entry of a GOPROXY list with fn, keeping the separators; entries fn
// makes empty are dropped with theirs.
func mapList(list string, fn func(entry string) string) string {
	var b strings.Builder
	for list != "" {
		entry, sep := list, ""
		if i := strings.IndexAny(list, ",|"); i >= 0 {
			entry, sep, list = list[:i], list[i:i+1], list[i+1:]
		} else {
			list = ""
		}
		if entry = fn(strings.TrimSpace(entry)); entry != "" {
			b.WriteString(entry)
			b.WriteString(sep)
		}
	}
	return strings.TrimRight(b.String(), ",|")
}

// Parse parses a host's command line, which takes flags only, then sets the flags it did not
// give from the environment (ApplyEnv).
func Parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return ApplyEnv(fs, getenv)
}
