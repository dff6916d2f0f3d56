package main

import (
	"bufio"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReadResponse(t *testing.T) {
	for _, tc := range []struct {
		name, in  string
		size      int64
		keepAlive bool
		wantErr   bool
	}{
		{name: "ok", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello", size: 5, keepAlive: true},
		{name: "close", in: "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nConnection: close\r\n\r\n", size: 0},
		{name: "status", in: "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", wantErr: true},
		{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", wantErr: true},
		{name: "no length", in: "HTTP/1.1 200 OK\r\n\r\n", wantErr: true},
		{name: "short body", in: "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhello", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			size, keepAlive, err := readResponse(bufio.NewReader(strings.NewReader(tc.in)))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && (size != tc.size || keepAlive != tc.keepAlive) {
				t.Errorf("got size %d, keep-alive %v; want %d, %v", size, keepAlive, tc.size, tc.keepAlive)
			}
		})
	}
}

func TestFormatting(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 65432.4: "65,432", 1234567: "1,234,567"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q, want %q", in, got, want)
		}
	}
	if got := medianOf([]time.Duration{3, 1, 2}); got != 2 {
		t.Errorf("medianOf = %v, want 2", got)
	}
	if got := medianOf([]float64{4, 1, 3, 2}); got != 2 {
		t.Errorf("medianOf of an even count = %v, want the lower middle 2", got)
	}
}

func TestReportByRun(t *testing.T) {
	for _, tc := range []struct {
		name string
		rows []row
		want string
	}{
		{name: "none measured twice", rows: []row{{metric: "a", byRun: []float64{1.2}}, {metric: "b"}}, want: ""},
		{name: "one of two", rows: []row{{metric: "a", byRun: []float64{1.2}}, {metric: "b", byRun: []float64{1.234, 0.9}}},
			want: "\nRun by run, each ratio from the same run (for requests/s, the same pair of rounds):\n\n- b: 1.23x, 0.90x\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			reportByRun(&out, tc.rows)
			if out.String() != tc.want {
				t.Errorf("got %q, want %q", out.String(), tc.want)
			}
		})
	}
}

func TestPeakRSS(t *testing.T) {
	n, err := peakRSS(os.Getpid())
	if err != nil {
		t.Skip(err) // no /proc
	}
	if n <= 0 {
		t.Errorf("peakRSS = %d", n)
	}
}

// TestCPUTime checks cpuTime against getrusage(2): the same user and system time, read from
// /proc in ticks of 10 ms, once the process has spent some.
func TestCPUTime(t *testing.T) {
	self := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := self()
	for deadline := time.Now().Add(5 * time.Second); self()-start < 300*time.Millisecond && time.Now().Before(deadline); {
	}
	got, err := cpuTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if want := self(); got < want-50*time.Millisecond || got > want+50*time.Millisecond {
		t.Errorf("cpuTime = %v, getrusage says %v", got, want)
	}
	if _, err := cpuTime(-1); err == nil {
		t.Error("cpuTime of no process succeeded")
	}
}
