package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"golang.org/x/mod/module"

	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/goproxy"
)

// WarmPath is where an authenticated client POSTs a go.sum to have the store filled with every
// module version it names, ahead of the builds that will need them.
const WarmPath = "/_mirror/warm"

// maxWarmBody bounds a warm request's go.sum.
const maxWarmBody = 8 << 20

// warmReport is the answer to a warm request.
type warmReport struct {
	Modules  int               `json:"modules"`          // module versions named
	Objects  int               `json:"objects"`          // .info, .mod and .zip objects to fill
	Filled   int               `json:"filled,omitempty"` // in-request warms: objects now stored
	Skipped  []string          `json:"skipped,omitempty"`
	Failures map[string]string `json:"failures,omitempty"`
	Async    bool              `json:"async"`
}

// serveWarm fills the store from a go.sum body, through the same fill path as any request: one
// fill per key, verified against the checksum database, bounded by MaxFills. Private modules are
// warmed only for a caller that may read them.
func (h *Handler) serveWarm(x *exchange) {
	if x.r.Method != http.MethodPost {
		x.w.Header().Set("Allow", "POST")
		h.fail(x, http.StatusMethodNotAllowed, goproxy.CacheNoStore, "POST a go.sum to "+WarmPath)
		return
	}
	caller, err := h.cfg.Auth.Identify(x.r)
	if err != nil {
		x.decision = decisionBadCredentials
		h.challenge(x, "invalid credentials: the token matches none this proxy knows")
		return
	}
	x.caller = caller
	if !h.cfg.Auth.MayWarm(caller) {
		h.deny(x, "warming needs a token with the warm scope")
		return
	}
	x.decision = decisionAllow
	body, err := io.ReadAll(http.MaxBytesReader(x.w, x.r.Body, maxWarmBody))
	if err != nil {
		status := http.StatusBadRequest
		if errors.As(err, new(*http.MaxBytesError)) {
			status = http.StatusRequestEntityTooLarge
		}
		h.fail(x, status, goproxy.CacheNoStore, fmt.Sprintf("read go.sum: %v", err))
		return
	}
	lines, err := checksum.ParseGoSum(body)
	if err != nil {
		h.fail(x, http.StatusBadRequest, goproxy.CacheNoStore, fmt.Sprintf("invalid go.sum: %v", err))
		return
	}
	if h.cfg.Upstream == nil && h.cfg.PrivateUpstream == nil {
		h.fail(x, http.StatusConflict, goproxy.CacheNoStore, "this mirror is offline: there is nothing to warm from")
		return
	}

	report := &warmReport{Failures: map[string]string{}}
	var jobs []*exchange
	seen := map[module.Version]bool{}
	for _, l := range lines {
		mv := module.Version{Path: l.Path, Version: l.Version}
		private := h.isPrivate(l.Path)
		if private && !h.cfg.Auth.MayRead(caller, l.Path, true) {
			report.Skipped = append(report.Skipped, mv.String()+": private, and the token may not read it")
			continue
		}
		kinds := []string{".info", ".mod"}
		if !l.GoMod {
			kinds = []string{".zip"}
		}
		if seen[mv] {
			if l.GoMod {
				continue
			}
		} else {
			seen[mv] = true
			report.Modules++
			if !l.GoMod {
				kinds = append([]string{".info", ".mod"}, kinds...)
			}
		}
		for _, ext := range kinds {
			job, err := h.fillJob(mv, ext, private)
			if err != nil {
				report.Skipped = append(report.Skipped, fmt.Sprintf("%s%s: %v", mv, ext, err))
				continue
			}
			jobs = append(jobs, job)
		}
	}
	report.Objects = len(jobs)
	h.log.Info("warm", "token", caller.ID, "modules", report.Modules, "objects", report.Objects, "skipped", len(report.Skipped))

	if !h.cfg.WarmInRequest {
		report.Async = true
		h.inFlight.Add(1)
		go func() {
			defer h.inFlight.Done()
			h.runWarm(context.WithoutCancel(x.r.Context()), jobs, &warmReport{Failures: map[string]string{}})
		}()
		h.writeJSON(x, http.StatusAccepted, report)
		return
	}
	h.runWarm(x.r.Context(), jobs, report)
	status := http.StatusOK
	if len(report.Failures) > 0 {
		status = http.StatusMultiStatus
	}
	h.writeJSON(x, status, report)
}

// fillJob makes the exchange one object's fill runs under, for fills no request asked for.
func (h *Handler) fillJob(mv module.Version, ext string, private bool) (*exchange, error) {
	esc, err := module.EscapePath(mv.Path)
	if err != nil {
		return nil, err
	}
	ev, err := module.EscapeVersion(mv.Version)
	if err != nil {
		return nil, err
	}
	req, err := goproxy.Parse("/" + esc + "/@v/" + ev + ext)
	if err != nil {
		return nil, err
	}
	up := h.cfg.Upstream
	if private {
		up = h.cfg.PrivateUpstream
	}
	if up == nil {
		return nil, errors.New("no upstream for it")
	}
	return &exchange{req: req, private: private, up: up}, nil
}

// runWarm fills every job's object the store lacks, MaxFills at a time, and records the outcome.
func (h *Handler) runWarm(ctx context.Context, jobs []*exchange, report *warmReport) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, h.cfg.MaxFills)
	for _, job := range jobs {
		if _, err := h.cfg.Store.Stat(ctx, job.req.Key); err == nil {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			err := h.fill(ctx, job)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				report.Failures[job.req.Key] = err.Error()
				h.log.Warn("warm fill failed", "key", job.req.Key, "err", err)
				return
			}
			report.Filled++
		})
	}
	wg.Wait()
	h.log.Info("warm done", "filled", report.Filled, "failed", len(report.Failures))
}

func (h *Handler) writeJSON(x *exchange, status int, v any) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		h.fail(x, http.StatusInternalServerError, goproxy.CacheNoStore, err.Error())
		return
	}
	x.w.Header().Set("Content-Type", "application/json")
	x.w.Header().Set("Cache-Control", goproxy.CacheNoStore)
	x.w.WriteHeader(status)
	x.w.Write(append(data, '\n'))
}
