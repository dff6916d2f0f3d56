package mirror

import (
	"bytes"
	"io"
	"testing"

	"golang.org/x/sync/semaphore"

	"github.com/modmirror/modmirror/shared/spool"
)

// TestSpoolMemoryBudget checks that zips are held in memory while the run's budget lasts, in
// temporary files beyond it, and that closing one gives its memory back.
func TestSpoolMemoryBudget(t *testing.T) {
	g := &Generator{scratchDir: t.TempDir(), spoolMemory: semaphore.NewWeighted(100)}
	zip := bytes.Repeat([]byte("z"), 60)
	inMemory := func(s *spooled) bool { _, ok := s.File.(*spool.Memory); return ok }
	check := func(s *spooled) {
		t.Helper()
		got, err := io.ReadAll(io.NewSectionReader(s, 0, s.size))
		if err != nil || !bytes.Equal(got, zip) {
			t.Fatalf("spooled %q, %v; want the zip", got, err)
		}
	}

	var held []*spooled
	for _, tc := range []struct {
		name     string
		size     int64 // announced; -1 unknown
		inMemory bool
	}{
		{"fits", 60, true},
		{"over what is left", 60, false},
		{"size unknown", -1, false},
	} {
		s, err := g.spool(bytes.NewReader(zip), tc.size)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		held = append(held, s)
		check(s)
		if inMemory(s) != tc.inMemory {
			t.Errorf("%s: in memory %v, want %v", tc.name, inMemory(s), tc.inMemory)
		}
	}
	if g.spoolMemory.TryAcquire(41) {
		t.Fatal("the budget has more than 40 bytes left with 60 held")
	}

	// A body longer than announced fails, and gives back what it took.
	if _, err := g.spool(bytes.NewReader(append(zip, 'x')), 30); err == nil {
		t.Error("a body longer than announced was spooled")
	}
	if !g.spoolMemory.TryAcquire(40) {
		t.Fatal("a failed spool kept its memory")
	}
	g.spoolMemory.Release(40)

	for _, s := range held {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}
	if !g.spoolMemory.TryAcquire(100) {
		t.Error("closed spools kept their memory")
	}
}
