package testkit

import "sync/atomic"

// Gauge counts what is under way at once and remembers the most there were, for the tests of a
// bound. It is safe for concurrent use; its zero value is ready.
type Gauge struct{ now, most atomic.Int32 }

// Enter counts one more under way and returns the function that counts it done.
func (g *Gauge) Enter() (leave func()) {
	n := g.now.Add(1)
	for m := g.most.Load(); n > m && !g.most.CompareAndSwap(m, n); m = g.most.Load() {
	}
	return func() { g.now.Add(-1) }
}

// Most returns the most that were under way at once since the Gauge was made or Reset.
func (g *Gauge) Most() int { return int(g.most.Load()) }

// Reset forgets the most, keeping the count of what is under way now.
func (g *Gauge) Reset() { g.most.Store(g.now.Load()) }
