package lambdaemu

import (
	"context"
	"fmt"
	"os"
	"os/exec"
)

// BuildFlags returns the go build flags of a Lambda bootstrap, as `make lambda` uses them: no
// RPC mode (the provided.al2023 runtime speaks only the Runtime API), no paths of the build
// machine, no symbol tables.
func BuildFlags() []string {
	return []string{"-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w"}
}

// Build builds the package pkg (as go build names it, relative to dir) into the bootstrap
// binary out, for Linux on the host's architecture so that it runs here, with BuildFlags and
// CGO_ENABLED=0 as for deployment.
func Build(ctx context.Context, dir, pkg, out string) error {
	args := append([]string{"build"}, BuildFlags()...)
	args = append(args, "-o", out, pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=linux", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("lambdaemu: go %v: %w\n%s", args, err, out)
	}
	return nil
}
