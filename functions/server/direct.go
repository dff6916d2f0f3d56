package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/modmirror/modmirror/shared/goproxy"
	"github.com/modmirror/modmirror/shared/upstream"
)

// directUpstream answers GOPROXY requests for private modules by running the go command against
// their version control systems (GOPROXY=direct), in a private GOPATH that no other user of the
// machine shares. At most `slots` go commands run at once.
type directUpstream struct {
	goBin   string
	gopath  string
	private string // GOPRIVATE patterns
	slots   chan struct{}
}

func newDirectUpstream(private, gopath string, concurrency int) (*directUpstream, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("-private-upstream direct needs the go command: %w", err)
	}
	if err := os.MkdirAll(gopath, 0o700); err != nil {
		return nil, fmt.Errorf("direct upstream: %w", err)
	}
	return &directUpstream{goBin: goBin, gopath: gopath, private: private, slots: make(chan struct{}, max(concurrency, 1))}, nil
}

// Get implements proxy.Upstream.
func (d *directUpstream) Get(ctx context.Context, path string) (*upstream.Response, error) {
	req, err := goproxy.Parse("/" + path)
	if err != nil {
		return nil, &upstream.Error{URL: "direct:" + path, Status: http.StatusNotFound, Reason: err.Error()}
	}
	switch req.Kind {
	case goproxy.List:
		var out struct{ Versions []string }
		if err := d.goJSON(ctx, &out, "list", "-m", "-versions", "-json", req.Path); err != nil {
			return nil, err
		}
		return bytesResponse(path, []byte(strings.Join(append(out.Versions, ""), "\n"))), nil
	case goproxy.Latest, goproxy.Query:
		query := "latest"
		if req.Kind == goproxy.Query {
			query = req.Version
		}
		var out struct {
			Version string
			Time    json.RawMessage
		}
		if err := d.goJSON(ctx, &out, "list", "-m", "-json", req.Path+"@"+query); err != nil {
			return nil, err
		}
		data, _ := json.Marshal(out)
		return bytesResponse(path, data), nil
	case goproxy.Info, goproxy.Mod, goproxy.Zip:
		var out struct{ Info, GoMod, Zip, Error string }
		if err := d.goJSON(ctx, &out, "mod", "download", "-json", req.Path+"@"+req.Version); err != nil {
			return nil, err
		}
		file := map[goproxy.Kind]string{goproxy.Info: out.Info, goproxy.Mod: out.GoMod, goproxy.Zip: out.Zip}[req.Kind]
		f, err := os.Open(file)
		if err != nil {
			return nil, &upstream.Error{URL: "direct:" + path, Reason: err.Error(), Err: err}
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		return &upstream.Response{Body: f, Size: fi.Size(), Header: http.Header{}, URL: "direct:" + path}, nil
	}
	return nil, &upstream.Error{URL: "direct:" + path, Status: http.StatusNotFound, Reason: "not served by the direct upstream"}
}

// goJSON runs the go command and decodes its JSON output. A module or version the VCS does not
// have is a 404, so the proxy answers as for any upstream.
func (d *directUpstream) goJSON(ctx context.Context, v any, args ...string) error {
	select {
	case d.slots <- struct{}{}:
		defer func() { <-d.slots }()
	case <-ctx.Done():
		return ctx.Err()
	}
	work, err := os.MkdirTemp(d.gopath, "work-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	cmd := exec.CommandContext(ctx, d.goBin, args...)
	cmd.Dir = work // outside any module
	cmd.Env = append(os.Environ(),
		"GOPATH="+d.gopath, "GOMODCACHE="+filepath.Join(d.gopath, "pkg", "mod"),
		"GOPROXY=direct", "GOPRIVATE="+d.private, "GONOSUMDB="+d.private, "GONOPROXY="+d.private,
		"GOFLAGS=-modcacherw", "GO111MODULE=on", "GOWORK=off", "GOTOOLCHAIN=local", "GIT_TERMINAL_PROMPT=0")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	// go mod download -json reports errors in its JSON, with exit status 1.
	if jerr := json.Unmarshal(stdout.Bytes(), v); jerr == nil {
		var e struct{ Error any }
		json.Unmarshal(stdout.Bytes(), &e)
		if msg := errorText(e.Error); msg != "" {
			return directError(args, msg)
		}
		if runErr == nil {
			return nil
		}
	}
	msg := strings.TrimSpace(stderr.String())
	if msg == "" && runErr != nil {
		msg = runErr.Error()
	}
	return directError(args, msg)
}

func errorText(e any) string {
	switch e := e.(type) {
	case string:
		return e
	case map[string]any:
		if s, ok := e["Err"].(string); ok {
			return s
		}
	}
	return ""
}

// directError maps what the go command said to an upstream error: unknown modules and versions
// are 404s, anything else is the upstream failing.
func directError(args []string, msg string) error {
	status := http.StatusBadGateway
	for _, notFound := range []string{"not found", "unknown revision", "no matching versions", "invalid version", "does not contain package", "repository does not exist"} {
		if strings.Contains(msg, notFound) {
			status = http.StatusNotFound
		}
	}
	if line, _, ok := strings.Cut(msg, "\n"); ok {
		msg = line
	}
	return &upstream.Error{URL: "direct: go " + strings.Join(args, " "), Status: status, Reason: msg}
}

func bytesResponse(path string, data []byte) *upstream.Response {
	return &upstream.Response{Body: io.NopCloser(bytes.NewReader(data)), Size: int64(len(data)), Header: http.Header{}, URL: "direct:" + path}
}
