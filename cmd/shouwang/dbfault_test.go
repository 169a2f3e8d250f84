package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shouwang/shouwang/sms/twiliofake"
	"github.com/shouwang/shouwang/storage/storagetest"
)

// pgDatabase creates a database of the test's own on the machine's
// PostgreSQL (other tests share the server, so the test may cut off this
// database but never restart the server). It returns its URL and an admin
// connection to another database, from which connections to it are cut.
func pgDatabase(t *testing.T) (dbURL string, name string, admin *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	adminURL := os.Getenv("SHOUWANG_TEST_DATABASE_URL")
	if adminURL == "" {
		adminURL = storagetest.DefaultAdminURL
	}
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatalf("connect %s: %v", adminURL, err)
	}
	name = fmt.Sprintf("shouwang_fault_%d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = admin.Exec(ctx, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS true")
		if _, err := admin.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
		admin.Close(ctx)
	})
	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String(), name, admin
}

// countingHandler counts log records by message, so a test can tell that
// handlers failed and were retried, and passes them on to next.
type countingHandler struct {
	next   slog.Handler
	mu     *sync.Mutex
	counts map[string]int
}

func newCountingHandler(next slog.Handler) countingHandler {
	return countingHandler{next: next, mu: &sync.Mutex{}, counts: map[string]int{}}
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return countingHandler{next: h.next.WithAttrs(as), mu: h.mu, counts: h.counts}
}
func (h countingHandler) WithGroup(g string) slog.Handler {
	return countingHandler{next: h.next.WithGroup(g), mu: h.mu, counts: h.counts}
}
func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	h.counts[r.Message]++
	h.mu.Unlock()
	return h.next.Handle(ctx, r)
}

func (h countingHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts[msg]
}

// PostgreSQL goes away mid-load: its connections are killed and new ones
// refused for a few seconds, as in a restart. Readiness goes red, then
// green; presses made meanwhile are retried by the phone; handlers that
// failed are redelivered; every accepted alarm becomes an incident and no
// offer is texted twice.
func TestDatabaseOutageMidLoad(t *testing.T) {
	n, perSecond, outage, settle := 150, 25.0, 4*time.Second, time.Minute
	if soak() {
		n, perSecond, outage, settle = 1500, 40.0, 20*time.Second, 5*time.Minute
	}
	dbURL, dbName, admin := pgDatabase(t)
	counts := newCountingHandler(testLogger(t).Handler())
	cfg := testConfig(t, "sqlite")
	cfg.DatabaseURL = dbURL
	cfg.WaveTimeout = 10 * time.Minute
	cfg.SMSPerRecipient = 0
	fake := twiliofake.New(t)
	cfg.TwilioHTTPClient = fake.Client()
	h := startWith(t, cfg, fake, slog.New(counts))
	h.community("c1")
	spot := medicsAlong(h, "c1", max(1, n/10))
	resident := h.token("resident", "c1", "r1")

	// The outage, and what /readyz said through it.
	ready := func() int {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(h.base + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var mu sync.Mutex
	during := map[int]int{} // /readyz status → times seen while the database was away
	var greenAfter time.Duration
	var cutAt, backAt time.Time
	cut := func() {
		ctx := context.Background()
		if _, err := admin.Exec(ctx, "ALTER DATABASE "+dbName+" ALLOW_CONNECTIONS false"); err != nil {
			t.Errorf("refuse connections: %v", err)
			return
		}
		var killed int
		if err := admin.QueryRow(ctx, `SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1`, dbName).Scan(&killed); err != nil {
			t.Errorf("terminate backends: %v", err)
		}
		t.Logf("database cut off: %d connections terminated", killed)
		cutAt = time.Now()
		end := time.Now().Add(outage)
		for time.Now().Before(end) {
			st := ready()
			mu.Lock()
			during[st]++
			mu.Unlock()
			time.Sleep(200 * time.Millisecond)
		}
		if _, err := admin.Exec(ctx, "ALTER DATABASE "+dbName+" ALLOW_CONNECTIONS true"); err != nil {
			t.Errorf("allow connections: %v", err)
		}
		back := time.Now()
		backAt = back
		for ready() != 200 && time.Since(back) < 20*time.Second {
			time.Sleep(50 * time.Millisecond)
		}
		greenAfter = time.Since(back)
	}

	load := newAlarmLoad(resident)
	began := time.Now()
	load.run(n, perSecond, "k", func(i, try int) string { return h.base }, spot, map[int]func(){n / 3: cut})
	loadTook := time.Since(began)
	accepted := load.acceptedIDs()
	lost := waitAllInIncidents(t, h, h.svc.DB, resident, accepted, settle)
	offers := tallyOffers(t, h.svc.DB, fake, settle)
	settled := time.Since(began)
	retried := counts.count("handler failed; retrying")
	// Presses need only JetStream and a token this replica has seen.
	duringOutage := load.acceptedBetween(cutAt, backAt)
	t.Logf("%d presses accepted while the database was away", duringOutage)
	t.Logf("load: %s in %s; all settled after %s; /readyz during the outage %v, 200 again %s after it; %d handler failures retried; offers %+v",
		load.summary(), loadTook.Round(time.Millisecond), settled.Round(time.Millisecond), during, greenAfter.Round(time.Millisecond), retried, offers)
	if during[503] == 0 {
		t.Errorf("/readyz never answered 503 while the database was away: %v", during)
	}
	if st := ready(); st != 200 {
		t.Errorf("/readyz answers %d after the database came back", st)
	}
	if len(accepted) != n {
		t.Errorf("%d of %d alarms accepted within %s of retrying", len(accepted), n, load.giveUp)
	}
	if duringOutage == 0 {
		t.Errorf("no press was accepted while the database was away")
	}
	if retried == 0 {
		t.Errorf("no handler failed and was retried: the outage hit nothing")
	}
	reportFault(t, faultRun{
		Fault: "PostgreSQL restarted mid-load",
		Injected: fmt.Sprintf("after %d of %d alarms at %.0f/s: ALTER DATABASE … ALLOW_CONNECTIONS false + pg_terminate_backend on every connection, held %s, then allowed again",
			n/3, n, perSecond, outage),
		Store: "postgres", Sent: n, Accepted: len(accepted), Lost: lost, DuplicateSMS: offers.Duplicates,
		Note: fmt.Sprintf("%d presses accepted while the database was away, %d retried presses; %d handler failures redelivered; /readyz 503 ×%d during, 200 again %s after; %d offers, %d never texted; settled %s after the first alarm",
			duringOutage, load.retries, retried, during[503], greenAfter.Round(100*time.Millisecond), offers.Offers, offers.Missing, settled.Round(time.Second)),
	})
}
