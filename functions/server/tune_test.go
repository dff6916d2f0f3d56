package main

import (
	"runtime"
	"testing"
)

func TestTuneProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, tc := range []struct {
		name  string
		start int
		env   string
		want  int
	}{
		{"one CPU", 1, "", 2},
		{"two CPUs", 2, "", 3},
		{"eight CPUs", 8, "", 12},
		{"GOMAXPROCS set", 2, "2", 2},
	} {
		runtime.GOMAXPROCS(tc.start)
		tuneProcs(func(k string) string {
			if k == "GOMAXPROCS" {
				return tc.env
			}
			return ""
		})
		if got := runtime.GOMAXPROCS(0); got != tc.want {
			t.Errorf("%s: GOMAXPROCS %d after tuneProcs, want %d", tc.name, got, tc.want)
		}
	}
}
