package main

import (
	"os"
	"runtime"
)

// The embedded stores spend much of their time in blocking file syscalls:
// every SQLite commit and every JetStream message is written with fsync. A
// goroutine in such a syscall keeps its P until the runtime's monitor takes
// it back, and with one P a core the other goroutines wait meanwhile,
// behind a run queue the Go scheduler serves in turn; the SQLite writer,
// which every write transaction waits for, waited most. On two cores at
// 300 alarms/s, 4 Ps instead of 2 took the offer hand-over p50 from
// 323–788 ms to 32–34 ms and the 202's p99 from 34–40 ms to 11 ms; on
// PostgreSQL (NATS still embedded) at 200/s the hand-over went from 696 to
// 41 ms (issue 8, docs/performance.md).
//
// procsFactor is how many Ps a core gets.
const procsFactor = 2

// widenProcs raises GOMAXPROCS to procsFactor Ps a core when this process
// runs an embedded store (SQLite, or NATS with its file store), unless the
// operator set GOMAXPROCS. With PostgreSQL and an external NATS the
// service's waits are network reads, which do not hold a P, and under a
// container's CPU quota more running threads would only use it up sooner:
// Go's default, which follows the quota, stays.
func widenProcs(embedded bool) {
	setProcs(embedded && os.Getenv("GOMAXPROCS") == "", runtime.GOMAXPROCS)
}

// setProcs is widenProcs with the decision and the runtime passed in; it
// returns the value in force.
func setProcs(widen bool, gomaxprocs func(int) int) int {
	current := gomaxprocs(0)
	if !widen {
		return current
	}
	want := procsFactor * current
	gomaxprocs(want)
	return want
}
