package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is a server the benchmark started in its own process group, stopped by stop.
type process struct {
	cmd  *exec.Cmd
	done chan error
}

// startProcess starts cmd in a new process group, with its standard output and error appended
// to logFile (a file, so that a busy server never blocks on a pipe).
func startProcess(cmd *exec.Cmd, logFile string) (*process, error) {
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	p := &process{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// pid returns the process's id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended, and how.
func (p *process) exited() (bool, error) {
	select {
	case err := <-p.done:
		p.done <- err
		return true, fmt.Errorf("%s exited: %v", filepath.Base(p.cmd.Path), err)
	default:
		return false, nil
	}
}

// stop sends SIGTERM to the process group it started and waits up to 10 seconds for the process
// to end, then kills the group. It is idempotent.
func (p *process) stop() {
	if done, _ := p.exited(); done {
		return
	}
	pgid := p.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(10 * time.Second):
		syscall.Kill(-pgid, syscall.SIGKILL)
		p.done <- <-p.done
	}
}

// waitReady polls ready every 20ms until it says yes, fails, the process exits or the time
// runs out.
func (p *process) waitReady(ctx context.Context, timeout time.Duration, ready func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ok, err := ready()
		if err != nil || ok {
			return err
		}
		if done, err := p.exited(); done {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", filepath.Base(p.cmd.Path), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// peakRSS returns the process's peak resident set size (VmHWM) in bytes.
func peakRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("peak RSS: parsing %q: %w", sc.Text(), err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("peak RSS: no VmHWM in /proc/%d/status", pid)
}

// server is one running modmirror server (functions/server).
type server struct {
	*process
	url   string // http://127.0.0.1:PORT
	store string
	log   string
}

// startServer starts the server binary bin on 127.0.0.1:0 with a directory store, and waits for
// its "serving" log line. args are the flags after -listen and -store.
func startServer(ctx context.Context, bin, dir, storeDir string, args ...string) (*server, error) {
	logFile := filepath.Join(dir, "server.log")
	full := append([]string{"-listen", "127.0.0.1:0", "-store", storeDir}, args...)
	cmd := exec.Command(bin, full...)
	cmd.Env = append(os.Environ(), "TMPDIR="+dir)
	p, err := startProcess(cmd, logFile)
	if err != nil {
		return nil, err
	}
	s := &server{process: p, store: storeDir, log: logFile}
	err = p.waitReady(ctx, 30*time.Second, func() (bool, error) {
		var err error
		s.url, err = servingURL(logFile)
		return s.url != "", err
	})
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("server did not start (log in %s): %w", logFile, err)
	}
	return s, nil
}

// servingURL returns the url of the server's "serving" log line, or "" if it has not logged one
// yet.
func servingURL(logFile string) (string, error) {
	data, err := os.ReadFile(logFile)
	if err != nil {
		return "", fmt.Errorf("read server log: %w", err)
	}
	for line := range bytes.Lines(data) {
		var rec struct {
			Msg string `json:"msg"`
			URL string `json:"url"`
		}
		if json.Unmarshal(line, &rec) == nil && rec.Msg == "serving" && rec.URL != "" {
			return rec.URL, nil
		}
	}
	return "", nil
}

// hostPort returns the host:port of a URL.
func hostPort(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", rawURL, err)
	}
	return u.Host, nil
}

// nginxConf is the configuration of the reference static server: the same directory, served as
// files, with an access log line per request like the proxy's own log.
const nginxConf = `daemon off;
master_process on;
worker_processes %[4]d;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
    access_log %[1]s/access.log;
    types { text/plain mod; application/json info; application/zip zip; }
    default_type text/plain;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    server {
        listen %[2]s;
        root %[3]s;
    }
}
`

// startNginx runs nginx (master and workers, in the foreground) serving root on a free port of
// 127.0.0.1, with its configuration, pid file and logs in dir, and returns its address.
func startNginx(ctx context.Context, bin, dir, root string, workers int) (*process, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, dir, addr, root, workers), 0o644); err != nil {
		return nil, "", fmt.Errorf("nginx: %w", err)
	}
	cmd := exec.Command(bin, "-c", conf, "-p", dir, "-e", filepath.Join(dir, "error.log"))
	p, err := startProcess(cmd, filepath.Join(dir, "nginx.out"))
	if err != nil {
		return nil, "", err
	}
	err = p.waitReady(ctx, 15*time.Second, func() (bool, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return false, nil
		}
		c.Close()
		return true, nil
	})
	if err != nil {
		p.stop()
		return nil, "", fmt.Errorf("nginx did not start (log in %s/error.log): %w", dir, err)
	}
	return p, addr, nil
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// findNginx returns the nginx binary's path: on PATH, else Debian's /usr/sbin/nginx.
func findNginx() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx", nil
	}
	return "", errors.New("nginx not found (bench/run.sh installs the Debian package)")
}
