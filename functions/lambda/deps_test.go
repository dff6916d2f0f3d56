package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDependencies checks the linking rules of docs/ARCHITECTURE.md with go list -deps: the
// Lambda binary links no syumai/workers, and neither the Workers host nor the core (shared/,
// minus the cloud stores and their openers) links the AWS SDK or aws-lambda-go.
func TestDependencies(t *testing.T) {
	tests := []struct {
		name, pkg     string
		env           []string
		flags         []string
		mustNot, must []string
	}{
		{
			name: "lambda", pkg: ".",
			env:     []string{"GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0"},
			flags:   []string{"-tags", "lambda.norpc"},
			mustNot: []string{"github.com/syumai/workers"},
			must:    []string{"github.com/aws/aws-lambda-go/lambdaurl", "github.com/aws/aws-sdk-go-v2/service/s3", "github.com/modmirror/modmirror/shared/proxy"},
		},
		{
			name: "core on wasm", pkg: "../../shared/proxy",
			env:     []string{"GOOS=js", "GOARCH=wasm"},
			mustNot: []string{"github.com/aws/", "github.com/modmirror/modmirror/shared/store/s3store", "github.com/modmirror/modmirror/shared/store/storeurl"},
			must:    []string{"github.com/modmirror/modmirror/shared/store"},
		},
		{
			name: "workers", pkg: "../workers",
			env:     []string{"GOOS=js", "GOARCH=wasm"},
			mustNot: []string{"github.com/aws/", "github.com/modmirror/modmirror/shared/store/s3store"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "workers" && !hasGoFiles(t, tt.pkg) {
				// The Workers host is another engineer's; until it exists there is nothing to
				// list, and the rule holds trivially.
				t.Logf("%s has no Go files yet", tt.pkg)
				return
			}
			args := append(append([]string{"list", "-deps"}, tt.flags...), tt.pkg)
			cmd := exec.CommandContext(t.Context(), "go", args...)
			cmd.Env = append(os.Environ(), tt.env...)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go %s: %v", strings.Join(args, " "), err)
			}
			deps := strings.Fields(string(out))
			for _, bad := range tt.mustNot {
				for _, d := range deps {
					if strings.HasPrefix(d, bad) {
						t.Errorf("%s links %s", tt.pkg, d)
					}
				}
			}
			for _, want := range tt.must {
				found := false
				for _, d := range deps {
					found = found || d == want
				}
				if !found {
					t.Errorf("%s does not link %s (is the list right?)", tt.pkg, want)
				}
			}
		})
	}
}

func hasGoFiles(t *testing.T, dir string) bool {
	matches, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	return len(matches) > 0
}
