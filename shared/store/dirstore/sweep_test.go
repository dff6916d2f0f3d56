package dirstore_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/store/dirstore"
)

// TestHelperStageAndWait is not a test: run by TestSweep as a child process, it stages an object
// in DIRSTORE_HELPER_DIR, writes 1 MiB to it, says so, and waits to be killed.
func TestHelperStageAndWait(t *testing.T) {
	dir := os.Getenv("DIRSTORE_HELPER_DIR")
	if dir == "" {
		return
	}
	s, err := dirstore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	staged, err := s.Stage(t.Context(), "m/@v/v1.0.0.zip")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := staged.Write(bytes.Repeat([]byte("x"), 1<<20)); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("staged\n")
	time.Sleep(time.Minute)
}

func TestSweep(t *testing.T) {
	root := t.TempDir()
	// A process killed in the middle of a fill.
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperStageAndWait$")
	cmd.Env = append(os.Environ(), "DIRSTORE_HELPER_DIR="+root)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "staged\n" {
		cmd.Process.Kill()
		t.Fatalf("helper process: %q, %v", line, err)
	}
	// While it lives, its file is its own.
	live, err := dirstore.New(root)
	if err != nil {
		t.Fatal(err)
	}
	if swept, err := live.Sweep(t.Context(), time.Now()); err != nil || swept.Files != 0 {
		t.Errorf("Sweep with the owner alive = %+v, %v; want nothing removed", swept, err)
	}
	cmd.Process.Kill()
	cmd.Wait()

	// A Put in flight in this process, and files with no owner to ask: one old, one new.
	s, err := dirstore.New(root)
	if err != nil {
		t.Fatal(err)
	}
	inFlight, err := s.Stage(t.Context(), "m/@v/v2.0.0.zip")
	if err != nil {
		t.Fatal(err)
	}
	defer inFlight.Close()
	inFlight.Write([]byte("in flight"))
	for name, age := range map[string]time.Duration{".tmp-old": 2 * dirstore.StaleAfter, ".tmp-new": time.Minute} {
		p := filepath.Join(root, name)
		if err := os.WriteFile(p, []byte("left"), 0o644); err != nil {
			t.Fatal(err)
		}
		mtime := time.Now().Add(-age)
		os.Chtimes(p, mtime, mtime)
	}

	swept, err := s.Sweep(t.Context(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if want := (dirstore.Swept{Files: 2, Bytes: 1<<20 + 4}); swept != want {
		t.Errorf("Sweep = %+v; want %+v: the killed process's file and the old one", swept, want)
	}
	var left []string
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") && !strings.HasSuffix(e.Name(), ".owner") {
			left = append(left, e.Name())
		}
	}
	if len(left) != 2 || !strings.Contains(strings.Join(left, " "), ".tmp-new") {
		t.Errorf("temporary files left: %q; want the one in flight and .tmp-new", left)
	}
	if _, err := inFlight.Commit(t.Context(), store.PutOptions{IfAbsent: true}); err != nil {
		t.Errorf("the Put in flight fails after a Sweep: %v", err)
	}
	live.Close()
	s.Close()
	entries, _ = os.ReadDir(root)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".owner") {
			t.Errorf("owner file %s left after every Store closed", e.Name())
		}
	}
}
