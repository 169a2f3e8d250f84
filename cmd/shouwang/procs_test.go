package main

import "testing"

func TestSetProcsWidensOnlyWhenAsked(t *testing.T) {
	for _, tc := range []struct {
		name        string
		widen       bool
		start, want int
	}{
		{"embedded store, 2 cores", true, 2, 4},
		{"embedded store, 1 core", true, 1, 2},
		{"external stores or the operator's GOMAXPROCS", false, 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			procs := tc.start
			got := setProcs(tc.widen, func(n int) int {
				prev := procs
				if n > 0 {
					procs = n
				}
				return prev
			})
			if got != tc.want || procs != tc.want {
				t.Errorf("setProcs = %d, GOMAXPROCS now %d; want %d", got, procs, tc.want)
			}
		})
	}
}
