package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/storage/storagetest"
)

// buildBinary builds shouwang once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "shouwang")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

var servingAddr = regexp.MustCompile(`msg="shouwang serving" addr=(\S+)`)

// process is a shouwang serve child process.
type process struct {
	cmd  *exec.Cmd
	addr string
}

func startProcess(t *testing.T, bin, dataDir, databaseURL string) *process {
	t.Helper()
	return startServe(t, bin, dataDir, databaseURL, nil)
}

// startServe starts shouwang serve with the dev SMS sink, unless env names
// Twilio credentials; env and args come after the defaults, so they win.
func startServe(t *testing.T, bin, dataDir, databaseURL string, env []string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--http-addr", "127.0.0.1:0", "--data-dir", dataDir, "--wave-timeout", "1m"}, args...)...)
	cmd.Env = append(os.Environ(), "SHOUWANG_ADMIN_TOKEN="+testAdminToken, "SHOUWANG_DATABASE_URL="+databaseURL,
		"TWILIO_ACCOUNT_SID=", "TWILIO_AUTH_TOKEN=", "TWILIO_FROM=", "SHOUWANG_NATS_URL=", "SHOUWANG_TWILIO_API_URL=")
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd}
	t.Cleanup(func() { p.kill() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := servingAddr.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
			if os.Getenv("SHOUWANG_TEST_LOG") != "" {
				fmt.Fprintln(os.Stderr, "child:", sc.Text())
			}
		}
	}()
	select {
	case p.addr = <-found:
	case <-time.After(30 * time.Second):
		t.Fatal("shouwang serve did not start in 30s")
	}
	return p
}

// kill ends the process the hard way: no shutdown, no flush.
func (p *process) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		_ = p.cmd.Wait()
	}
}

// Kill the process (not graceful) right after a 202 and start it again:
// the alarm still becomes an incident and is dispatched once.
func TestScenarioKilledAfterAccept(t *testing.T) {
	bin := buildBinary(t)
	eachStore(t, func(t *testing.T, store string) {
		dataDir, dbURL := t.TempDir(), ""
		if store == "postgres" {
			dbURL = storagetest.PostgresURL(t)
		}
		p := startProcess(t, bin, dataDir, dbURL)
		// The binary runs with its shipped request limits; the test's
		// polling waits out a 429 as a client should.
		h := &harness{t: t, base: "http://" + p.addr, http: &http.Client{Timeout: 30 * time.Second, Transport: politeTransport{}}}
		h.community("c1")
		h.responder("c1", person{"medic", "+8613800000021", []string{"medic"}, 50, true, true})
		h.responder("c1", person{"ff", "+8613800000022", []string{"firefighting"}, 60, true, true})
		resident := h.token("resident", "c1", "r1")
		admin := testAdminToken

		// Two presses: both answered 202, then the process dies at once.
		medical := h.press(resident, "k-medical", "medical", centre)
		fire := h.press(resident, "k-fire", "fire", geo.Offset(centre, 500, 0))
		p.kill()

		p = startProcess(t, bin, dataDir, dbURL)
		h.base = "http://" + p.addr
		for _, a := range []string{medical, fire} {
			h.incidentOf(resident, a)
		}
		var texts []any
		offers := func() int {
			n := 0
			for _, m := range texts {
				if strings.Contains(m.(map[string]any)["body"].(string), "回复 1 接受") {
					n++
				}
			}
			return n
		}
		eventually(t, 20*time.Second, func() bool {
			texts = h.must(200, "GET", "/v1/dev/sms", admin, nil)["messages"].([]any)
			return offers() >= 2
		}, func() string { return fmt.Sprintf("offers after restart: %v", texts) })

		// A second restart must not send anything again.
		p.kill()
		p = startProcess(t, bin, dataDir, dbURL)
		h.base = "http://" + p.addr
		time.Sleep(1500 * time.Millisecond) // a sweep of the relay and redeliveries, if any were due
		texts = h.must(200, "GET", "/v1/dev/sms", admin, nil)["messages"].([]any)
		per := map[string]int{}
		for _, m := range texts {
			mm := m.(map[string]any)
			if strings.Contains(mm["body"].(string), "回复 1 接受") {
				per[mm["to"].(string)]++
			}
		}
		if per["+8613800000021"] != 1 || per["+8613800000022"] != 1 || len(per) != 2 {
			t.Fatalf("offer texts per phone %v: want exactly one each for the medic and the firefighter", per)
		}
		list := h.must(200, "GET", "/v1/incidents?status=active", h.token("dispatcher", "c1", ""), nil)["incidents"].([]any)
		if len(list) != 2 {
			t.Fatalf("%d incidents, want 2", len(list))
		}
	})
}
