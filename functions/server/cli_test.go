package main

import (
	"errors"
	"flag"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/modmirror/modmirror/shared/config"
)

// TestCommandLine runs the binary as a user would: -h lists every flag with its environment
// variable and exits 0, -version prints the build and exits 0, a bad flag exits 2.
func TestCommandLine(t *testing.T) {
	bin := serverBinary(t)
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := parseOptions([]string{"-h"}, func(string) string { return "" }, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("parseOptions(-h) = %v; want flag.ErrHelp", err)
	}
	for _, tt := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"-h"}, 0, []string{"usage: server", "-listen string  (MODMIRROR_LISTEN, default 127.0.0.1:8080)", "-shutdown-timeout", "MODMIRROR_UPSTREAM_IDLE_TIMEOUT"}},
		{[]string{"-version"}, 0, []string{"modmirror "}},
		{[]string{"-nope"}, 2, []string{"flag provided but not defined"}},
		{[]string{"-tls-cert", "x"}, 2, []string{"-tls-key"}},
	} {
		out, err := exec.Command(bin, tt.args...).CombinedOutput()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tt.code {
			t.Errorf("server %q exited %d; want %d\n%s", tt.args, code, tt.code, out)
		}
		for _, w := range tt.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("server %q says:\n%s\nwant it to say %q", tt.args, out, w)
			}
		}
	}
	// Every flag the server has is in -h, with its environment variable.
	out, _ := exec.Command(bin, "-h").CombinedOutput()
	o := &options{}
	o.Register(fs)
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(string(out), "-"+f.Name) || !strings.Contains(string(out), config.EnvName(f.Name)) {
			t.Errorf("-h lacks -%s or %s", f.Name, config.EnvName(f.Name))
		}
	})
}
