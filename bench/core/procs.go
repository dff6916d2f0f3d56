package main

import (
	"bufio"
	"bytes"
	"context"
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

	"github.com/modmirror/modmirror/shared/testkit"
)

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

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat: 100 on every Linux
// architecture Go builds for.
const clockTicks = 100

// cpuTime returns the user and system CPU time the process has used so far, from
// /proc/PID/stat.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("CPU time: %w", err)
	}
	// The command name, field 2, is in parentheses and may hold anything: count from after the
	// last parenthesis.
	i := bytes.LastIndexByte(data, ')')
	f := strings.Fields(string(data[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("CPU time: unexpected /proc/%d/stat %q", pid, data)
	}
	var ticks int64
	for _, field := range f[11:13] { // utime and stime, fields 14 and 15
		n, err := strconv.ParseInt(field, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("CPU time: /proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// childrenCPU returns the user and system CPU time of this process's children that have ended
// and been waited for.
func childrenCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// server is one running modmirror server (functions/server).
type server struct {
	*testkit.Process
	url   string // http://127.0.0.1:PORT
	store string
	log   string
}

// startServer starts the server binary bin on 127.0.0.1:0 with a directory store, its log
// written to dir/server.log, and waits for its "serving" log line. args are the flags after
// -listen and -store. The harness stops it at the end, if Stop did not.
func startServer(ctx context.Context, tb *testkit.Harness, bin, dir, storeDir string, args ...string) (*server, error) {
	logFile := filepath.Join(dir, "server.log")
	cmd := exec.Command(bin, append([]string{"-listen", "127.0.0.1:0", "-store", storeDir}, args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+dir)
	s := &server{Process: testkit.StartProcessLogging(tb, cmd, logFile), store: storeDir, log: logFile}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var err error
	if s.url, err = s.WaitServing(ctx); err != nil {
		s.Stop()
		return nil, fmt.Errorf("server did not start (log in %s): %w", logFile, err)
	}
	return s, nil
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
func startNginx(ctx context.Context, tb *testkit.Harness, bin, dir, root string, workers int) (*testkit.Process, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, dir, addr, root, workers), 0o644); err != nil {
		return nil, "", fmt.Errorf("nginx: %w", err)
	}
	cmd := exec.Command(bin, "-c", conf, "-p", dir, "-e", filepath.Join(dir, "error.log"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the master and its workers stop together
	p := testkit.StartProcessLogging(tb, cmd, filepath.Join(dir, "nginx.out"))
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	err = p.WaitReady(ctx, func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	})
	if err != nil {
		p.Stop()
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
