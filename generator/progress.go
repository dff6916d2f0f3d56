package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/module"

	"github.com/modmirror/modmirror/shared/mirror"
)

// progress shows a generation going: a bar redrawn in place on a terminal (modules and bytes
// done, rate, time left), else one line per module version.
type progress struct {
	w     io.Writer
	mode  string // "bar", "lines" or "off"
	start time.Time
	bytes atomic.Int64

	mu     sync.Mutex
	total  int
	done   int
	failed int
	drawn  bool // a bar is on the screen
	stop   chan struct{}
	wg     sync.WaitGroup
}

var _ mirror.Progress = (*progress)(nil)

// newProgress returns a progress display on w: mode is auto, bar, lines or off.
func newProgress(w io.Writer, mode string) (*progress, error) {
	switch mode {
	case "auto":
		mode = "lines"
		if isTerminal(w) {
			mode = "bar"
		}
	case "bar", "lines", "off":
	default:
		return nil, fmt.Errorf("-progress %q: want auto, bar, lines or off", mode)
	}
	return &progress{w: w, mode: mode, start: time.Now()}, nil
}

// isTerminal reports whether w is a terminal (a character device that is not /dev/null).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}

// note prints a line between bars.
func (p *progress) note(msg string) {
	if p.mode == "off" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	fmt.Fprintln(p.w, msg)
}

func (p *progress) Planned(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total = n
	p.start = time.Now()
	if p.mode == "bar" && p.stop == nil {
		p.stop = make(chan struct{})
		p.wg.Add(1)
		go p.tick()
	}
}

func (p *progress) Fetched(n int64) { p.bytes.Add(n) }

func (p *progress) Finished(m module.Version, o mirror.Outcome, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	if o == mirror.Failed {
		p.failed++
	}
	switch p.mode {
	case "lines":
		what := map[mirror.Outcome]string{mirror.Written: "fetched", mirror.Held: "held   ", mirror.Failed: "FAILED "}[o]
		width := len(fmt.Sprint(p.total))
		line := fmt.Sprintf("[%*d/%d] %s %s@%s", width, p.done, p.total, what, m.Path, m.Version)
		if err != nil {
			line += ": " + err.Error()
		}
		fmt.Fprintln(p.w, line)
	case "bar":
		if err != nil {
			p.clear()
			fmt.Fprintf(p.w, "FAILED %s@%s: %v\n", m.Path, m.Version, err)
			p.draw()
		}
	}
}

// tick redraws the bar a few times a second until Close.
func (p *progress) tick() {
	defer p.wg.Done()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.draw()
			p.mu.Unlock()
		}
	}
}

// draw writes the bar over the current line. p.mu is held.
func (p *progress) draw() {
	const width = 30
	elapsed := time.Since(p.start)
	filled := 0
	if p.total > 0 {
		filled = width * p.done / p.total
	}
	bytes := p.bytes.Load()
	rate := float64(bytes) / max(elapsed.Seconds(), 0.001)
	eta := "--"
	if p.done > 0 && p.done < p.total {
		left := time.Duration(float64(elapsed) / float64(p.done) * float64(p.total-p.done))
		eta = left.Round(time.Second).String()
	} else if p.done == p.total {
		eta = "0s"
	}
	failed := ""
	if p.failed > 0 {
		failed = fmt.Sprintf("  %d failed", p.failed)
	}
	fmt.Fprintf(p.w, "\r\x1b[K[%s%s] %d/%d modules  %s  %s/s  ETA %s%s",
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
		p.done, p.total, size(bytes), size(int64(rate)), eta, failed)
	p.drawn = true
}

// clear erases the bar, if drawn. p.mu is held.
func (p *progress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

// Close stops redrawing and leaves the final bar on its own line.
func (p *progress) Close() {
	p.mu.Lock()
	stop := p.stop
	p.stop = nil
	p.mu.Unlock()
	if stop == nil {
		return
	}
	close(stop)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw()
	fmt.Fprintln(p.w)
	p.drawn = false
}
