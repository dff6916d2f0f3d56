//go:build unix

package testkit

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// outputHas is a readiness check: the process has written s.
func outputHas(p *Process, s string) func(context.Context) error {
	return func(context.Context) error {
		if !strings.Contains(p.Output(), s) {
			return errors.New("no " + strconv.Quote(s) + " yet")
		}
		return nil
	}
}

// never is a readiness check that never passes.
func never(*Process, string) func(context.Context) error {
	return func(context.Context) error { return errors.New("not yet") }
}

func TestProcess(t *testing.T) {
	tests := []struct {
		name      string
		script    string // run by sh -c
		ready     func(p *Process, s string) func(context.Context) error
		wantReady []string      // in WaitReady's error; nil: WaitReady succeeds
		wantExit  string        // ExitErr after Stop
		timeout   time.Duration // WaitReady's; 0 for 10s
	}{
		{
			name:     "ready, stopped by SIGTERM",
			script:   "echo started; exec sleep 60",
			ready:    outputHas,
			wantExit: "signal: terminated",
		},
		{
			name:      "exits before it is ready",
			script:    "echo boom >&2; exit 3",
			ready:     never,
			wantReady: []string{"sh exited before it was ready (exit status 3)", "boom"},
			wantExit:  "exit status 3",
		},
		{
			name:      "never ready",
			script:    "echo waiting; exec sleep 60",
			ready:     never,
			wantReady: []string{"sh not ready", "deadline exceeded", "last check: not yet", "waiting"},
			wantExit:  "signal: terminated",
			timeout:   500 * time.Millisecond,
		},
		{
			name:     "ignores SIGTERM, killed",
			script:   `trap "" TERM; echo started; exec sleep 60`,
			ready:    outputHas,
			wantExit: "signal: killed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := StartProcess(t, exec.Command("sh", "-c", tt.script))
			p.grace = 200 * time.Millisecond
			timeout := cmp.Or(tt.timeout, 10*time.Second)
			ctx, cancel := context.WithTimeout(t.Context(), timeout)
			defer cancel()
			err := p.WaitReady(ctx, tt.ready(p, "started"))
			switch {
			case tt.wantReady == nil && err != nil:
				t.Fatalf("WaitReady: %v", err)
			case tt.wantReady != nil && err == nil:
				t.Fatalf("WaitReady succeeded; want an error with %q", tt.wantReady)
			}
			for _, want := range tt.wantReady {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("WaitReady: %v\nwant it to contain %q", err, want)
				}
			}
			p.Stop()
			select {
			case <-p.Exited():
			default:
				t.Fatal("Exited not closed after Stop")
			}
			if err := p.ExitErr(); err == nil || err.Error() != tt.wantExit {
				t.Errorf("ExitErr after Stop = %v; want %s", err, tt.wantExit)
			}
		})
	}
}

func TestProcessStoppedAtCleanup(t *testing.T) {
	var p *Process
	t.Run("test", func(t *testing.T) {
		p = StartProcess(t, exec.Command("sleep", "60"))
	})
	if err := p.ExitErr(); err == nil || err.Error() != "signal: terminated" {
		t.Errorf("after the test that started it: ExitErr = %v; want signal: terminated", err)
	}

	h := NewHarness(t.Context(), t.TempDir())
	if err := h.Catch(func() error {
		p = StartProcess(h, exec.Command("sleep", "60"))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	h.Close()
	if err := p.ExitErr(); err == nil || err.Error() != "signal: terminated" {
		t.Errorf("after Harness.Close: ExitErr = %v; want signal: terminated", err)
	}
}

func TestProcessStartFails(t *testing.T) {
	h := NewHarness(t.Context(), t.TempDir())
	defer h.Close()
	err := h.Catch(func() error {
		StartProcess(h, exec.Command("/nonexistent/program"))
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "start program") {
		t.Fatalf("StartProcess of a missing program: %v; want it to fail the test", err)
	}
}

func TestProcessGroup(t *testing.T) {
	// sh starts sleep in the background: a group signal must reach both.
	cmd := exec.Command("sh", "-c", "sleep 60 & echo child $!; wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := StartProcess(t, cmd)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := p.WaitReady(ctx, outputHas(p, "\n")); err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(p.Output(), "child ")))
	if err != nil {
		t.Fatalf("child pid in %q: %v", p.Output(), err)
	}
	p.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for running(child) {
		if time.Now().After(deadline) {
			t.Fatalf("the background child %d of the stopped process group is still running", child)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// running reports whether pid is a process that has not exited (a zombie has).
func running(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// "pid (comm) state ...": comm may hold spaces and parentheses; the state follows the last ')'.
	stat := string(data)
	rest := strings.TrimSpace(stat[strings.LastIndexByte(stat, ')')+1:])
	return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}

func TestHTTPReady(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		w.WriteHeader(status)
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name    string
		url     string
		want    int
		wantErr string // "" for ready
	}{
		{"wanted status", srv.URL + "/200", http.StatusOK, ""},
		{"other status", srv.URL + "/503", http.StatusOK, "503 Service Unavailable, want 200"},
		{"any status", srv.URL + "/403", 0, ""},
		{"nothing listening", closed.URL + "/", 0, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := HTTPReady(tt.url, tt.want)(t.Context())
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("HTTPReady(%s, %d) = %v; want %q", tt.url, tt.want, err, tt.wantErr)
			}
		})
	}
}

func TestProcessLoggingWaitServing(t *testing.T) {
	logFile := t.TempDir() + "/server.log"
	cmd := exec.Command("sh", "-c", `echo '{"msg":"starting"}'; sleep 0.1; echo '{"level":"INFO","msg":"serving","url":"http://127.0.0.1:1"}'; exec sleep 60`)
	p := StartProcessLogging(t, cmd, logFile)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	url, err := p.WaitServing(ctx)
	if err != nil || url != "http://127.0.0.1:1" {
		t.Fatalf("WaitServing = %q, %v; want the URL of the serving line", url, err)
	}
	data, err := os.ReadFile(logFile)
	if err != nil || p.Output() != string(data) || !strings.Contains(string(data), "starting") {
		t.Errorf("Output = %q; the log file holds %q (%v)", p.Output(), data, err)
	}
	p.Stop()

	// A server that exits before serving: the error says so, with its log.
	p = StartProcessLogging(t, exec.Command("sh", "-c", "echo cannot listen; exit 1"), t.TempDir()+"/log")
	if _, err := p.WaitServing(ctx); err == nil || !strings.Contains(err.Error(), "cannot listen") {
		t.Errorf("WaitServing of a server that exited: %v; want an error with its log", err)
	}
}

func TestServingURL(t *testing.T) {
	for log, want := range map[string]string{
		"":                         "",
		`{"msg":"serving"}` + "\n": "",
		"not json\n" + `{"msg":"serving","url":"http://x"}`: "http://x",
		`{"msg":"request","url":"http://y"}` + "\n":         "",
	} {
		if got := ServingURL(log); got != want {
			t.Errorf("ServingURL(%q) = %q, want %q", log, got, want)
		}
	}
}
