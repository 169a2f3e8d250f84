package main

import (
	"encoding/json"
	"os"
	"sync"
	"testing"
)

// faultRun is one row of docs/reliability.md: a fault, how the test
// injected it, and what came of the alarms sent through it.
type faultRun struct {
	Fault        string `json:"fault"`
	Injected     string `json:"injected"`
	Store        string `json:"store,omitempty"`
	Sent         int    `json:"sent"`     // alarms the client tried to send (distinct keys)
	Accepted     int    `json:"accepted"` // keys answered 2xx at least once
	Lost         int    `json:"lost"`     // accepted keys that never became part of an incident
	DuplicateSMS int    `json:"duplicate_sms"`
	Note         string `json:"note,omitempty"`
}

var faultReportMu sync.Mutex

// reportFault logs the run and, when SHOUWANG_RELIABILITY_OUT names a file,
// appends it there as one JSON line: scripts/reliability.sh turns those
// lines into the table in docs/reliability.md.
func reportFault(t testing.TB, r faultRun) {
	t.Helper()
	line, err := json.Marshal(r)
	if err != nil {
		t.Fatalf("encode fault run: %v", err)
	}
	t.Logf("fault run: %s", line)
	path := os.Getenv("SHOUWANG_RELIABILITY_OUT")
	if path == "" {
		return
	}
	faultReportMu.Lock()
	defer faultReportMu.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

// soak reports whether the long variants of the fault tests should run
// (SHOUWANG_SOAK=1): a minute-long Twilio outage, more alarms, more kills.
// CI runs the short variants.
func soak() bool { return os.Getenv("SHOUWANG_SOAK") != "" }
