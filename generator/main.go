// Command generator pre-renders static mirrors of pinned dependency sets for offline and
// air-gapped networks: the .info, .mod and .zip of every module version, the list files, and the
// checksum-database objects the go command needs to verify everything with no network at all,
// with a manifest of every file and, optionally, a hybrid Ed25519 + ML-DSA-65 signature.
//
//	generator [-o DIR] [-upstream LIST] [-sumdb NAME[+KEY [URL]]|off] [-private PATTERNS] [-j N] [-sign KEY] INPUT...
//	generator keygen [-o NAME]
//	generator verify [-pub KEY] [-sumdb ...] [-upstream LIST] DIR
//
// An INPUT is a go.sum or go.work.sum file (any *.sum), a go.mod file (its go.sum beside it is
// read), a go.work file (the go.sum of every module it uses, and go.work.sum), a directory
// holding any of those, a module@version (its whole build list: everything
// `go install module/cmd/x@version` needs; the path may be a package path and the version a query
// such as latest, resolved once and printed), or a file of module@version lines.
//
// The upstream and the checksum database default to `go env GOPROXY` and `go env GOSUMDB`; every
// flag can also be set as MODMIRROR_<FLAG> in the environment. The result serves from any static
// web server, from `server -offline`, or as GOPROXY=file:///path. See docs/AIRGAP.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/mod/module"

	"github.com/modmirror/modmirror/shared/buildinfo"
	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/config"
	"github.com/modmirror/modmirror/shared/mirror"
	"github.com/modmirror/modmirror/shared/mirror/hybridsig"
	"github.com/modmirror/modmirror/shared/store/dirstore"
	"github.com/modmirror/modmirror/shared/upstream"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // some module versions (or checks) failed; the rest is done
	exitUsage  = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the command with args and returns its exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	var err error
	code := exitOK
	switch {
	case len(args) > 0 && args[0] == "keygen":
		err = keygen(args[1:], getenv, stdout, stderr)
	case len(args) > 0 && args[0] == "verify":
		code, err = verify(ctx, args[1:], getenv, stdout, stderr)
	default:
		code, err = generate(ctx, args, getenv, stdout, stderr)
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK // -h: the usage is printed
	}
	if err != nil {
		fmt.Fprintln(stderr, "generator:", err)
		var u usageError
		if errors.As(err, &u) {
			return exitUsage
		}
		return exitFailed
	}
	return code
}

// usageError is a mistake on the command line.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// parse parses flags and positional arguments in any order ("verify DIR -pub KEY" too), then
// sets the flags not given from MODMIRROR_ environment variables.
func parse(fs *flag.FlagSet, args []string, getenv func(string) string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError{err}
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if err := config.ApplyEnv(fs, getenv); err != nil {
		return nil, usageError{err}
	}
	return pos, nil
}

// settings are the upstream, checksum database and private patterns, from flags or go env.
type settings struct {
	upstreamList, sumdb, private string
}

func (s *settings) flags(fs *flag.FlagSet) {
	fs.StringVar(&s.upstreamList, "upstream", "", "upstream proxies in GOPROXY syntax, or off (default: go env GOPROXY)")
	fs.StringVar(&s.sumdb, "sumdb", "", "checksum database NAME[+KEY [URL]], or off (default: go env GOSUMDB)")
	fs.StringVar(&s.private, "private", "", "module path patterns that skip the checksum database (default: go env GONOSUMDB, else GOPRIVATE)")
}

// resolve fills what flags left unset from go env, and opens the upstream and the database.
func (s *settings) resolve(logger *slog.Logger) (*upstream.Client, *config.SumDB, checksum.Remote, error) {
	if s.upstreamList == "" || s.sumdb == "" || s.private == "" {
		env, err := config.ReadGoEnv()
		if err != nil && s.upstreamList == "" {
			return nil, nil, nil, fmt.Errorf("no -upstream given and %w", err)
		}
		if s.upstreamList == "" {
			s.upstreamList = config.UpstreamList(env.GOPROXY)
		}
		if s.sumdb == "" {
			s.sumdb = env.GOSUMDB
		}
		if s.private == "" {
			s.private = env.GONOSUMDB
			if s.private == "" {
				s.private = env.GOPRIVATE
			}
		}
	}
	opts := upstream.Options{Logger: logger}
	var up *upstream.Client
	if s.upstreamList != "" && s.upstreamList != "off" {
		var err error
		if up, err = upstream.New(s.upstreamList, opts); err != nil {
			return nil, nil, nil, usageError{err}
		}
	}
	db, err := config.ParseSumDB(s.sumdb)
	if err != nil {
		return nil, nil, nil, usageError{err}
	}
	var remote checksum.Remote
	if db != nil && (up != nil || db.ExplicitURL) {
		remote = config.SumDBRemote(up, db, opts)
	}
	return up, db, remote, nil
}

func newLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

func generate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("generator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: generator [flags] INPUT...
       generator keygen [-o NAME]
       generator verify [-pub KEY] [-sumdb ...] [-upstream ...] DIR

INPUT: a go.sum, go.work.sum, go.mod (with its go.sum), go.work, a directory holding them,
module@version (its whole build list; the version may be a query such as latest), or a file
of module@version lines.

flags:
`)
		fs.PrintDefaults()
	}
	var (
		s        settings
		out      string
		jobs     int
		signKey  string
		verbose  bool
		progress string
		version  bool
	)
	fs.BoolVar(&version, config.VersionFlag, false, "print the version and exit")
	fs.StringVar(&out, "o", "mirror", "directory to write the mirror into")
	fs.StringVar(&out, "store", "mirror", "same as -o")
	s.flags(fs)
	fs.IntVar(&jobs, "j", mirror.DefaultJobs, "module versions to fetch at a time")
	fs.StringVar(&signKey, "sign", "", "private key file (from generator keygen) to sign the manifest with")
	fs.BoolVar(&verbose, "v", false, "log debugging detail")
	fs.StringVar(&progress, "progress", "auto", "progress display: auto (a bar on a terminal, else lines), bar, lines or off")
	inputs, err := parse(fs, args, getenv)
	if err != nil {
		return exitUsage, err
	}
	if version {
		_, err := fmt.Fprintln(stdout, buildinfo.Read())
		return exitOK, err
	}
	if len(inputs) == 0 {
		fs.Usage()
		return exitUsage, usageError{errors.New("no input: name a go.sum, go.mod, go.work, directory or module@version to mirror")}
	}
	logger := newLogger(stderr, verbose)

	var signer *hybridsig.PrivateKey
	if signKey != "" {
		data, err := os.ReadFile(signKey)
		if err != nil {
			return exitUsage, usageError{fmt.Errorf("read the signing key: %w", err)}
		}
		if signer, err = hybridsig.ParsePrivateKey(data); err != nil {
			return exitUsage, usageError{fmt.Errorf("%s: %w", signKey, err)}
		}
	}
	in, err := readInputs(inputs)
	if err != nil {
		return exitUsage, usageError{err}
	}
	up, db, remote, err := s.resolve(logger)
	if err != nil {
		return exitUsage, err
	}
	if db == nil {
		fmt.Fprintln(stderr, "generator: checksum database off: modules are checked against go.sum hashes only, and the mirror holds no checksum-database records")
	}

	st, err := dirstore.New(out)
	if err != nil {
		return exitFailed, err
	}
	defer st.Close()
	pr, err := newProgress(stderr, progress)
	if err != nil {
		return exitUsage, usageError{err}
	}
	cfg := mirror.Config{
		Store:       st,
		SumDB:       db,
		SumDBRemote: remote,
		NoSumDB:     s.private,
		Jobs:        jobs,
		Signer:      signer,
		Logger:      logger,
		Progress:    pr,
	}
	if up != nil {
		cfg.Upstream = up
	}
	gen, err := mirror.New(ctx, cfg)
	if err != nil {
		return exitFailed, err
	}
	defer gen.Close()

	var failures []mirror.Failure
	var roots []module.Version
	for _, a := range in.args {
		m, err := gen.Resolve(ctx, a)
		if err != nil {
			if ctx.Err() != nil {
				return exitFailed, ctx.Err()
			}
			failures = append(failures, mirror.Failure{Module: a, Err: err})
			continue
		}
		if a != m.Path+"@"+m.Version {
			fmt.Fprintf(stdout, "resolved %s: %s@%s\n", a, m.Path, m.Version)
		}
		roots = append(roots, m)
	}
	if len(roots) > 0 {
		pr.note(fmt.Sprintf("walking the build lists of %d module(s)", len(roots)))
	}
	res, err := gen.Generate(ctx, mirror.Input{GoSum: in.lines, Modules: roots})
	pr.Close()
	if err != nil {
		return exitFailed, err
	}
	res.Failures = append(failures, res.Failures...)
	printSummary(stdout, out, db, res)
	if len(res.Failures) > 0 {
		return exitFailed, nil
	}
	return exitOK, nil
}

func printSummary(w io.Writer, dir string, db *config.SumDB, res *mirror.Result) {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	fmt.Fprintf(w, "mirror %s\n", dir)
	fmt.Fprintf(w, "  modules   %d: %d fetched, %d skipped (already held), %d failed\n",
		res.Modules, res.Written, res.Held, res.Modules-res.Written-res.Held)
	fmt.Fprintf(w, "  files     %d written, %s; %s downloaded\n", res.Files, size(res.Bytes), size(res.Fetched))
	switch {
	case db == nil:
		fmt.Fprintf(w, "  checksums go.sum only (checksum database off)\n")
	case res.Lookups > 0:
		fmt.Fprintf(w, "  checksums %s: %d lookups under one signed tree head of size %d\n", db.Name, res.Lookups, res.TreeSize)
	}
	if res.Signed != "" {
		fmt.Fprintf(w, "  signed    key %s (%s)\n", res.Signed, hybridsig.Scheme)
	}
	fmt.Fprintf(w, "  time      %s\n", res.Duration.Round(time.Millisecond))
	if len(res.Unverified) > 0 {
		fmt.Fprintf(w, "NOT VERIFIED (%d: no go.sum hash, and no checksum database for them):\n", len(res.Unverified))
		for _, m := range res.Unverified {
			fmt.Fprintf(w, "  %s@%s\n", m.Path, m.Version)
		}
	}
	if len(res.Failures) > 0 {
		fmt.Fprintf(w, "FAILED (%d; everything else is kept, and a re-run resumes):\n", len(res.Failures))
		for _, f := range res.Failures {
			fmt.Fprintf(w, "  %s: %v\n", f.Module, f.Err)
		}
	}
}

// size formats a byte count.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func keygen(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("generator keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("o", "modmirror", "write the keys to NAME.key (private) and NAME.pub (public)")
	pos, err := parse(fs, args, func(string) string { return "" })
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Errorf("keygen: unexpected arguments %q", pos)}
	}
	k, err := hybridsig.GenerateKey(nil)
	if err != nil {
		return err
	}
	priv, _ := k.MarshalText()
	pub, _ := k.Public().MarshalText()
	f, err := os.OpenFile(*name+".key", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("keygen: %w (not overwriting a key)", err)
	}
	if _, err := f.Write(priv); err != nil {
		f.Close()
		return fmt.Errorf("keygen: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if err := os.WriteFile(*name+".pub", pub, 0o644); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s.key (private: keep it secret) and %s.pub (public), key %s (%s)\n",
		*name, *name, k.Public().ID(), hybridsig.Scheme)
	return nil
}

func verify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("generator verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		s       settings
		pubFile string
		verbose bool
	)
	fs.StringVar(&pubFile, "pub", "", "public key file (from generator keygen) that must have signed the mirror")
	s.flags(fs)
	fs.BoolVar(&verbose, "v", false, "log debugging detail")
	pos, err := parse(fs, args, getenv)
	if err != nil {
		return exitUsage, err
	}
	if len(pos) != 1 {
		return exitUsage, usageError{errors.New("verify: want one mirror directory")}
	}
	dir := pos[0]
	logger := newLogger(stderr, verbose)
	var pub *hybridsig.PublicKey
	if pubFile != "" {
		data, err := os.ReadFile(pubFile)
		if err != nil {
			return exitUsage, usageError{fmt.Errorf("read the public key: %w", err)}
		}
		if pub, err = hybridsig.ParsePublicKey(data); err != nil {
			return exitUsage, usageError{fmt.Errorf("%s: %w", pubFile, err)}
		}
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return exitUsage, usageError{fmt.Errorf("verify: %s is not a directory", dir)}
	}
	_, db, remote, err := s.resolve(logger)
	if err != nil {
		return exitUsage, err
	}
	st, err := dirstore.New(dir)
	if err != nil {
		return exitFailed, err
	}
	defer st.Close()
	rep, err := mirror.Verify(ctx, mirror.VerifyConfig{
		Store: st, PublicKey: pub, SumDB: db, SumDBRemote: remote, NoSumDB: s.private, Logger: logger,
	})
	if err != nil {
		return exitFailed, err
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(stdout, "note: %s\n", n)
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(stdout, "FAIL %s\n", p)
	}
	var what []string
	if rep.Manifest {
		what = append(what, fmt.Sprintf("%d files against the manifest", rep.Files))
	}
	what = append(what, fmt.Sprintf("%d .mod and .zip files", rep.Modules))
	if rep.Lookups > 0 {
		what = append(what, fmt.Sprintf("%d checksum-database records", rep.Lookups))
	}
	if rep.SignedBy != "" {
		what = append(what, fmt.Sprintf("the signature of key %s (%s)", rep.SignedBy, hybridsig.Scheme))
	}
	fmt.Fprintf(stdout, "checked %s\n", strings.Join(what, ", "))
	if len(rep.Problems) > 0 {
		fmt.Fprintf(stdout, "%s does NOT verify: %d problem(s)\n", dir, len(rep.Problems))
		return exitFailed, nil
	}
	fmt.Fprintf(stdout, "%s verifies\n", dir)
	return exitOK, nil
}
