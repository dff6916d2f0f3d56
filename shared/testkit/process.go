//go:build unix

package testkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stopGrace is how long [Process.Stop] waits after SIGTERM before it kills the process, and how
// long Wait waits for the output pipes once the process has exited (exec.Cmd.WaitDelay).
const stopGrace = 5 * time.Second

// readyPoll is how often [Process.WaitReady] asks whether the process is ready.
const readyPoll = 20 * time.Millisecond

// A Process is a child process a test runs in the background, such as a server: started by
// [StartProcess], waited for with [Process.WaitReady], stopped by [Process.Stop] or, at the
// latest, when the test ends.
//
//	cmd := exec.Command(bin, "-listen", addr)
//	p := testkit.StartProcess(t, cmd)
//	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
//	defer cancel()
//	if err := p.WaitReady(ctx, testkit.HTTPReady("http://"+addr+"/healthz", http.StatusOK)); err != nil {
//		t.Fatal(err)
//	}
//
// Its methods are safe for concurrent use.
type Process struct {
	cmd     *exec.Cmd
	name    string  // the program's base name, for errors
	output  *Buffer // its standard output and error; nil when they go to logFile
	logFile string
	group   bool // signals go to its process group
	grace   time.Duration

	exited  chan struct{} // closed when the process has exited and its output is collected
	exitErr error         // cmd.Wait's result, once exited is closed
	stop    sync.Once
}

// StartProcess starts cmd and stops it (see [Process.Stop]) when tb ends. It fails tb if cmd
// cannot be started.
//
// StartProcess collects cmd's standard output and error, interleaved, for [Process.Output] and
// for WaitReady's errors; cmd.Stdout and cmd.Stderr must be nil. It sets cmd.WaitDelay, if zero,
// so that a grandchild holding the output open cannot keep the process from counting as exited.
// If cmd.SysProcAttr puts the process in a process group of its own (Setpgid with Pgid 0),
// signals go to the whole group: use that for a process that starts others.
func StartProcess(tb testing.TB, cmd *exec.Cmd) *Process {
	tb.Helper()
	p := newProcess(tb, cmd)
	p.output = &Buffer{}
	cmd.Stdout, cmd.Stderr = p.output, p.output
	p.start(tb)
	return p
}

// StartProcessLogging is [StartProcess] with the output appended to the file logFile instead of
// held in memory: for a busy server that logs a line per request. [Process.Output] reads the file.
func StartProcessLogging(tb testing.TB, cmd *exec.Cmd, logFile string) *Process {
	tb.Helper()
	p := newProcess(tb, cmd)
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		tb.Fatalf("testkit: start %s: %v", p.name, err)
	}
	defer f.Close() // the child has its own descriptor
	p.logFile = logFile
	cmd.Stdout, cmd.Stderr = f, f
	p.start(tb)
	return p
}

func newProcess(tb testing.TB, cmd *exec.Cmd) *Process {
	tb.Helper()
	p := &Process{
		cmd:    cmd,
		name:   filepath.Base(cmd.Path),
		group:  cmd.SysProcAttr != nil && cmd.SysProcAttr.Setpgid && cmd.SysProcAttr.Pgid == 0,
		grace:  stopGrace,
		exited: make(chan struct{}),
	}
	if cmd.Stdout != nil || cmd.Stderr != nil {
		tb.Fatalf("testkit: start %s: the output is StartProcess's to direct; cmd.Stdout and cmd.Stderr must be nil", p.name)
	}
	return p
}

func (p *Process) start(tb testing.TB) {
	tb.Helper()
	if p.cmd.WaitDelay == 0 {
		p.cmd.WaitDelay = stopGrace
	}
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("testkit: start %s: %v", p.name, err)
	}
	go func() {
		p.exitErr = p.cmd.Wait()
		close(p.exited)
	}()
	tb.Cleanup(p.Stop)
}

// WaitReady calls ready every 20ms until it returns nil, and then returns nil. It returns an
// error, with what the process has written, if the process exits first or ctx is done first;
// ready is given ctx.
func (p *Process) WaitReady(ctx context.Context, ready func(context.Context) error) error {
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	for {
		err := ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before it was ready (%s); its output:\n%s", p.name, exitStatus(p.exitErr), p.Output())
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last check: %v); its output:\n%s", p.name, ctx.Err(), err, p.Output())
		case <-tick.C:
		}
	}
}

// exitStatus describes the error Wait returned.
func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// HTTPReady returns a readiness check for [Process.WaitReady]: it passes once a GET of url is
// answered with status want, or with any status if want is 0.
func HTTPReady(url string, want int) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("GET %s: %w", url, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err // already says GET url
		}
		resp.Body.Close()
		if want != 0 && resp.StatusCode != want {
			return fmt.Errorf("GET %s: %s, want %d", url, resp.Status, want)
		}
		return nil
	}
}

// Signal sends sig to the process, or to its process group (see [StartProcess]).
func (p *Process) Signal(sig syscall.Signal) error {
	if p.group {
		if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil {
			return fmt.Errorf("signal %s's process group: %w", p.name, err)
		}
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %s: %w", p.name, err)
	}
	return nil
}

// Stop sends SIGTERM, kills the process (SIGKILL) if it has not exited 5 seconds later, and
// returns once it has exited. A process group (see [StartProcess]) is killed once its leader
// has exited, so that nothing in it outlives the test. Stop is idempotent; [Process.ExitErr]
// then says how the process ended.
func (p *Process) Stop() {
	p.stop.Do(func() {
		p.Signal(syscall.SIGTERM) // fails only if it has exited already
		select {
		case <-p.exited:
		case <-time.After(p.grace):
			p.Signal(syscall.SIGKILL)
			<-p.exited
		}
		if p.group {
			p.Signal(syscall.SIGKILL) // what is left of the group, if anything
		}
	})
}

// Exited is closed when the process has exited and its output is collected; [Process.ExitErr]
// then says how it ended.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// ExitErr returns what exec.Cmd.Wait returned (nil for exit status 0) once [Process.Exited] is
// closed, and nil before.
func (p *Process) ExitErr() error {
	select {
	case <-p.exited:
		return p.exitErr
	default:
		return nil
	}
}

// Pid returns the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Output returns what the process has written so far on its standard output and error.
func (p *Process) Output() string {
	if p.logFile != "" {
		data, err := os.ReadFile(p.logFile)
		if err != nil {
			return fmt.Sprintf("(%v)", err)
		}
		return string(data)
	}
	return p.output.String()
}

// WaitServing waits, as [Process.WaitReady] does, for the "serving" line that modmirror's
// servers log as JSON once they listen, and returns its URL.
func (p *Process) WaitServing(ctx context.Context) (string, error) {
	var url string
	err := p.WaitReady(ctx, func(context.Context) error {
		if url = ServingURL(p.Output()); url == "" {
			return errors.New(`no "serving" line in its log yet`)
		}
		return nil
	})
	return url, err
}

// ServingURL returns the URL of the "serving" line in a modmirror server's JSON log, or "" if
// log has none.
func ServingURL(log string) string {
	for line := range strings.Lines(log) {
		var rec struct{ Msg, URL string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "serving" && rec.URL != "" {
			return rec.URL
		}
	}
	return ""
}
