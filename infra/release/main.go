// Command release builds modmirror's release, reproducibly: for each platform an archive holding
// the server as `modmirror` and the generator as `modmirror-generator`, built with -trimpath,
// with LICENSE and README.md (a .tar.gz, or a .zip for Windows); a SHA256SUMS file of the
// archives; and an SBOM (CycloneDX JSON) of the modules the binaries link, read from their
// build information. Archive entries carry the commit's time and no owner, so two runs on one
// commit give the same bytes.
//
//	go run ./infra/release [-o dist] [-version NAME] [-platforms linux/amd64,...]
//
// `make release` runs it.
package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"
)

// defaultPlatforms are those a release is built for.
const defaultPlatforms = "linux/amd64,linux/arm64,darwin/amd64,darwin/arm64,windows/amd64"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

// options are the command line's.
type options struct {
	out, version string
	platforms    []string
	root         string // the repository
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("release", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var platforms string
	fs.StringVar(&o.out, "o", "dist", "directory to write the release into")
	fs.StringVar(&o.version, "version", "", "the release's name in archive names (default: git describe)")
	fs.StringVar(&platforms, "platforms", defaultPlatforms, "GOOS/GOARCH pairs, comma-separated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.platforms = strings.Split(platforms, ",")
	root, err := gitOutput(ctx, "", "rev-parse", "--show-toplevel")
	if err != nil {
		return err
	}
	o.root = root
	if o.version == "" {
		if o.version, err = gitOutput(ctx, root, "describe", "--tags", "--always", "--dirty"); err != nil {
			return err
		}
	}
	commitTime, err := gitOutput(ctx, root, "log", "-1", "--format=%ct")
	if err != nil {
		return err
	}
	secs, err := strconv.ParseInt(commitTime, 10, 64)
	if err != nil {
		return fmt.Errorf("commit time %q: %w", commitTime, err)
	}
	return release(ctx, o, time.Unix(secs, 0).UTC(), stdout)
}

// release builds every platform's archive, then SHA256SUMS and the SBOM.
func release(ctx context.Context, o options, mtime time.Time, stdout io.Writer) error {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "modmirror-release-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// What an archive holds: the binaries (named for the project, built from these packages) and
	// the files beside them.
	commands := []struct{ name, pkg string }{
		{"modmirror", "./functions/server"},
		{"modmirror-generator", "./generator"},
	}
	docs := []string{"LICENSE", "README.md"}
	var archives []string
	var linked *debug.BuildInfo
	for _, platform := range o.platforms {
		goos, goarch, ok := strings.Cut(strings.TrimSpace(platform), "/")
		if !ok {
			return fmt.Errorf("platform %q: want GOOS/GOARCH", platform)
		}
		bins := filepath.Join(tmp, goos+"_"+goarch)
		var files []archiveFile
		for _, c := range commands {
			name := c.name
			if goos == "windows" {
				name += ".exe"
			}
			bin := filepath.Join(bins, name)
			if err := build(ctx, o.root, goos, goarch, c.pkg, bin); err != nil {
				return err
			}
			files = append(files, archiveFile{name: name, path: bin, mode: 0o755})
			if linked == nil {
				if linked, err = buildinfo.ReadFile(bin); err != nil {
					return fmt.Errorf("read the build information of %s: %w", bin, err)
				}
			}
		}
		for _, d := range docs {
			files = append(files, archiveFile{name: d, path: filepath.Join(o.root, d), mode: 0o644})
		}
		base := "modmirror_" + o.version + "_" + goos + "_" + goarch
		name := base + ".tar.gz"
		write := writeTarGz
		if goos == "windows" {
			name, write = base+".zip", writeZip
		}
		if err := write(filepath.Join(o.out, name), base, files, mtime); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		archives = append(archives, name)
		fmt.Fprintln(stdout, filepath.Join(o.out, name))
	}
	sbomName := "modmirror_" + o.version + ".cdx.json"
	if err := writeSBOM(filepath.Join(o.out, sbomName), o.version, linked, mtime); err != nil {
		return err
	}
	fmt.Fprintln(stdout, filepath.Join(o.out, sbomName))
	if err := writeSums(o.out, append(archives, sbomName)); err != nil {
		return err
	}
	fmt.Fprintln(stdout, filepath.Join(o.out, "SHA256SUMS"))
	return nil
}

// build compiles pkg for goos/goarch into out: static, -trimpath, the VCS revision recorded.
func build(ctx context.Context, root, goos, goarch, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=true", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0", "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s for %s/%s: %w\n%s", pkg, goos, goarch, err, b)
	}
	return nil
}

// archiveFile is one file of an archive.
type archiveFile struct {
	name, path string
	mode       int64
}

// writeTarGz writes files under dir/ in a gzipped tar, every entry with mtime and no owner, the
// gzip header with no name or time.
func writeTarGz(out, dir string, files []archiveFile, mtime time.Time) error {
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	for _, f := range files {
		data, err := os.ReadFile(f.path)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: dir + "/" + f.name, Mode: f.mode, Size: int64(len(data)), ModTime: mtime,
			Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

// writeZip writes files under dir/ in a zip, every entry with mtime.
func writeZip(out, dir string, files []archiveFile, mtime time.Time) error {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		data, err := os.ReadFile(f.path)
		if err != nil {
			return err
		}
		hdr := &zip.FileHeader{Name: dir + "/" + f.name, Method: zip.Deflate, Modified: mtime}
		hdr.SetMode(os.FileMode(f.mode))
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

// writeSums writes SHA256SUMS for the named files of dir, as sha256sum -c reads it.
func writeSums(dir string, names []string) error {
	slices.Sort(names)
	var b strings.Builder
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(sum[:]), name)
	}
	return os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(b.String()), 0o644)
}

// writeSBOM writes a CycloneDX 1.5 JSON SBOM of the modules a binary links, from its build
// information: the main module and every dependency with its version, purl and go.sum hash.
func writeSBOM(out, version string, bi *debug.BuildInfo, mtime time.Time) error {
	type property struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
	type component struct {
		Type       string     `json:"type"`
		BOMRef     string     `json:"bom-ref"`
		Name       string     `json:"name"`
		Version    string     `json:"version"`
		PURL       string     `json:"purl"`
		Properties []property `json:"properties,omitempty"`
	}
	purl := func(path, version string) string { return "pkg:golang/" + path + "@" + version }
	main := component{Type: "application", BOMRef: purl(bi.Main.Path, version), Name: bi.Main.Path, Version: version,
		PURL: purl(bi.Main.Path, version), Properties: []property{{"go", bi.GoVersion}}}
	var deps []component
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		c := component{Type: "library", BOMRef: purl(d.Path, d.Version), Name: d.Path, Version: d.Version, PURL: purl(d.Path, d.Version)}
		if d.Sum != "" {
			c.Properties = []property{{"go.sum", d.Sum}}
		}
		deps = append(deps, c)
	}
	slices.SortFunc(deps, func(a, b component) int { return strings.Compare(a.BOMRef, b.BOMRef) })
	var refs []string
	for _, d := range deps {
		refs = append(refs, d.BOMRef)
	}
	doc := map[string]any{
		"bomFormat":   "CycloneDX",
		"specVersion": "1.5",
		"version":     1,
		"metadata": map[string]any{
			"timestamp": mtime.Format(time.RFC3339),
			"component": main,
		},
		"components":   deps,
		"dependencies": []map[string]any{{"ref": main.BOMRef, "dependsOn": refs}},
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(out, append(data, '\n'), 0o644)
}

// gitOutput runs git in dir and returns its output, trimmed.
func gitOutput(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}
