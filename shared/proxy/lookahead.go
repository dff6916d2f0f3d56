package proxy

import (
	"context"

	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/goproxy"
)

// checksumLookuper is a Checksums that can look a module version up ahead of verifying it, the
// answer being shared with the Verify calls that follow (checksum.DB: its Lookup is single-flight
// per module version, and its sumdb client keeps the records it has read).
type checksumLookuper interface {
	Lookup(ctx context.Context, path, version string) ([]checksum.Line, error)
}

// lookUpAhead starts looking req's module version up in the checksum database while the fill
// fetches the object from the upstream, so that a cold .mod or .zip waits for the slower of the
// two round trips instead of for both in turn. The result is dropped: the VerifyMod or
// VerifyZipHash that follows joins or reuses the lookup and reports its errors. A lookup not yet
// started when ctx ends (the fill failed early) is not started; one under way runs to its end
// (the database's own timeouts bound it) and counts as work in flight for Wait, since it writes
// what it read to the store: cancelling it would only stop its waiting, not its writing.
func (h *Handler) lookUpAhead(ctx context.Context, req goproxy.Request) {
	if req.Kind != goproxy.Mod && req.Kind != goproxy.Zip {
		return
	}
	db, ok := h.cfg.Checksums.(checksumLookuper)
	if !ok {
		return
	}
	h.inFlight.Go(func() {
		if ctx.Err() == nil {
			db.Lookup(context.WithoutCancel(ctx), req.Path, req.Version)
		}
	})
}
