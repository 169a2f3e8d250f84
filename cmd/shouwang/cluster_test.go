package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/sms/twiliofake"
	"github.com/shouwang/shouwang/storage/storagetest"
)

// natsCluster is a JetStream cluster of in-process servers on loopback.
type natsCluster struct {
	servers []*server.Server
	urls    []string // client URLs, in server order
}

// startNATSCluster starts n JetStream servers routed to each other, as
// production runs them (file store, every write synced), and waits until
// they have elected a meta leader.
func startNATSCluster(t *testing.T, n int) *natsCluster {
	t.Helper()
	// Routes name every peer up front, so the cluster ports are picked
	// before any server starts.
	ports := make([]int, n)
	var routes []*url.URL
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", ports[i])})
	}
	// The stores are made first so they are removed after the servers stop
	// (cleanups run last first).
	stores := make([]string, n)
	for i := range stores {
		stores[i] = t.TempDir()
	}
	c := &natsCluster{}
	t.Cleanup(c.shutdown)
	for i := range n {
		ns, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   stores[i],
			SyncAlways: true,
			NoSigs:     true,
			Cluster:    server.ClusterOpts{Name: "shouwang-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:     routes,
		})
		if err != nil {
			t.Fatalf("nats server %d: %v", i+1, err)
		}
		ns.Start()
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatalf("nats server %d not ready", i+1)
		}
		c.servers = append(c.servers, ns)
		c.urls = append(c.urls, ns.ClientURL())
	}
	eventually(t, 20*time.Second, func() bool {
		for _, ns := range c.servers {
			if ns.JetStreamIsLeader() {
				return true
			}
		}
		return false
	}, says("the JetStream cluster elected no meta leader"))
	return c
}

func (c *natsCluster) shutdown() {
	for _, ns := range c.servers {
		ns.Shutdown()
	}
	for _, ns := range c.servers {
		ns.WaitForShutdown()
	}
}

// leaderOf names the server leading a stream, through a connection of the
// test's own.
func (c *natsCluster) leaderOf(t *testing.T, js jetstream.JetStream, stream string) *server.Server {
	t.Helper()
	var leader string
	eventually(t, 10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		if err != nil || info.Cluster == nil {
			return false
		}
		leader = info.Cluster.Leader
		return leader != ""
	}, says("stream %s has no leader", stream))
	for _, ns := range c.servers {
		if ns.Name() == leader {
			return ns
		}
	}
	t.Fatalf("stream %s is led by %q, not one of ours", stream, leader)
	return nil
}

// A 3-node JetStream cluster (streams R3) and two replicas of the service
// on one PostgreSQL. Alarms stream in over both replicas; the server
// leading the ALARMS stream is stopped part-way. Every alarm a replica
// accepted becomes an incident, no offer is texted twice, and both
// replicas share the work. Then one replica stops, with work in hand, and
// the other carries on with it and with new alarms.
func TestClusterLeaderAndReplicaStopped(t *testing.T) {
	// settle bounds the wait for the pipeline to catch up after the load:
	// every alarm of one community and type is correlated one at a time.
	n, perSecond, settle := 200, 25.0, time.Minute
	if soak() {
		n, perSecond, settle = 2000, 40.0, 5*time.Minute
	}
	cluster := startNATSCluster(t, 3)
	dbURL := storagetest.PostgresURL(t)
	fake := twiliofake.New(t)
	config := func() Config {
		cfg := testConfig(t, "sqlite")
		cfg.DatabaseURL = dbURL
		cfg.NATSURL = strings.Join(cluster.urls, ",")
		cfg.NATSReplicas = 3
		cfg.TwilioHTTPClient = fake.Client()
		// Waves must not time out, and a medic gets many offers at once
		// (bundled): neither is what this test is about.
		cfg.WaveTimeout = 10 * time.Minute
		cfg.SMSPerRecipient = 0
		return cfg
	}
	// Replica a is stopped by the test, so it gets no checks at cleanup
	// (its database is closed by then); b checks every text at the end.
	cfgA := config()
	a, err := Start(context.Background(), cfgA, testLogger(t))
	if err != nil {
		t.Fatalf("start replica a: %v", err)
	}
	t.Cleanup(func() { a.Close(context.Background()) })
	b := startWith(t, config(), fake, testLogger(t))
	ha := &harness{t: t, svc: a, base: "http://" + a.Addr, twilio: fake, cfg: cfgA, http: b.http}

	b.community("c1")
	spot := medicsAlong(b, "c1", max(1, n/10))
	resident := b.token("resident", "c1", "r1")

	nc, err := nats.Connect(strings.Join(cluster.urls, ","), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	// Phase 1: the ALARMS leader stops when 40% of the alarms are in.
	var stoppedName string
	var also []string
	var stoppedAt time.Time
	fault := func() {
		leader := cluster.leaderOf(t, js, events.StreamAlarms)
		stoppedName = leader.Name()
		for _, s := range []string{events.StreamIncidents, events.StreamSMS, events.StreamTimers} {
			if cluster.leaderOf(t, js, s) == leader {
				also = append(also, s)
			}
		}
		if leader.JetStreamIsLeader() {
			also = append(also, "meta")
		}
		stoppedAt = time.Now()
		leader.Shutdown()
	}
	bases := []string{ha.base, b.base}
	load := newAlarmLoad(resident)
	began := time.Now()
	load.run(n, perSecond, "k", func(i, try int) string { return bases[(i+try)%2] }, spot, map[int]func(){n * 2 / 5: fault})
	loadTook := time.Since(began)
	accepted := load.acceptedIDs()
	lost := waitAllInIncidents(t, b, b.svc.DB, resident, accepted, settle)
	offers := tallyOffers(t, b.svc.DB, fake, settle)
	settled := time.Since(began)
	workA := counter(t, a.Metrics.Registry, "shouwang_alarms_processed_total", nil)
	workB := counter(t, b.svc.Metrics.Registry, "shouwang_alarms_processed_total", nil)
	sentA := counter(t, a.Metrics.Registry, "shouwang_sms_total", map[string]string{"status": "sent"})
	sentB := counter(t, b.svc.Metrics.Registry, "shouwang_sms_total", map[string]string{"status": "sent"})
	t.Logf("load: %s in %s; stopped %s (leader of ALARMS %v) %s after the start; all settled after %s",
		load.summary(), loadTook.Round(time.Millisecond), stoppedName, also, stoppedAt.Sub(began).Round(time.Millisecond), settled.Round(time.Millisecond))
	t.Logf("work: replica a committed %.0f alarms and sent %.0f texts, replica b %.0f and %.0f; offers %+v", workA, sentA, workB, sentB, offers)
	if len(accepted) != n {
		t.Errorf("%d of %d alarms accepted within %s of retrying", len(accepted), n, load.giveUp)
	}
	if int(workA+workB) != n {
		t.Errorf("replicas committed %.0f + %.0f alarms, want %d in all (each once)", workA, workB, n)
	}
	if workA == 0 || workB == 0 || sentA == 0 || sentB == 0 {
		t.Errorf("work not shared: a committed %.0f alarms and sent %.0f texts, b %.0f and %.0f", workA, sentA, workB, sentB)
	}
	reportFault(t, faultRun{
		Fault: "NATS stream leader stopped mid-load",
		Injected: fmt.Sprintf("3-node JetStream cluster, streams R3, 2 service replicas on one PostgreSQL; server %s (leader of ALARMS%s) shut down after %d of %d alarms at %.0f/s",
			stoppedName, strings.Join(append([]string{""}, also...), ", "), n*2/5, n, perSecond),
		Store: "postgres", Sent: n, Accepted: len(accepted), Lost: lost, DuplicateSMS: offers.Duplicates,
		Note: fmt.Sprintf("%d retried attempts; replica a committed %.0f alarms, b %.0f; %d offers, %d offer texts, %d never texted; settled %s after the first alarm",
			load.retries, workA, workB, offers.Offers, offers.Texts, offers.Missing, settled.Round(time.Second)),
	})
	if t.Failed() {
		return
	}

	// Phase 2: a burst goes to replica a, which stops at once with some of
	// it in hand; b takes that over and new alarms too.
	m := max(20, n/5)
	burst := newAlarmLoad(resident)
	burst.run(m, 200, "burst", func(i, try int) string { return ha.base }, func(i int) geo.Point { return spot(n + i) }, nil)
	var pendingAtStop int
	_ = b.svc.DB.QueryRow(context.Background(), `SELECT COUNT(*) FROM alarms WHERE incident_id = ''`).Scan(&pendingAtStop)
	var stored int
	_ = b.svc.DB.QueryRow(context.Background(), `SELECT COUNT(*) FROM alarms`).Scan(&stored)
	notYet := n + len(burst.acceptedIDs()) - stored + pendingAtStop
	stopA := time.Now()
	if err := a.Close(context.Background()); errors.Is(err, context.DeadlineExceeded) {
		// HTTP shutdown waits up to 10 s for open connections, then
		// closes them; slow, but nothing is lost: what matters here is
		// that b carries on with a's work.
		t.Logf("stop replica a: HTTP shutdown hit its deadline: %v", err)
	} else if err != nil {
		t.Errorf("stop replica a: %v", err)
	}
	stopTook := time.Since(stopA)
	after := newAlarmLoad(resident)
	after.run(m, 50, "after", func(i, try int) string { return b.base }, func(i int) geo.Point { return spot(n + m + i) }, nil)
	all := burst.acceptedIDs()
	for k, v := range after.acceptedIDs() {
		all[k] = v
	}
	for k, v := range accepted {
		all[k] = v
	}
	lost2 := waitAllInIncidents(t, b, b.svc.DB, resident, all, settle)
	offers2 := tallyOffers(t, b.svc.DB, fake, settle)
	t.Logf("burst: %s", burst.summary())
	t.Logf("replica a stopped in %s with %d of its %d burst alarms not yet in an incident; after: %s; offers %+v",
		stopTook.Round(time.Millisecond), notYet, m, after.summary(), offers2)
	reportFault(t, faultRun{
		Fault: "one replica stopped",
		Injected: fmt.Sprintf("replica a of 2 stopped (graceful Close) right after a burst of %d alarms to it; %d more alarms posted to replica b",
			m, m),
		Store: "postgres", Sent: 2 * m, Accepted: len(all) - len(accepted), Lost: lost2, DuplicateSMS: offers2.Duplicates - offers.Duplicates,
		Note: fmt.Sprintf("%d burst alarms were not yet in an incident when a stopped; b finished them; %d offers in all, %d never texted",
			notYet, offers2.Offers, offers2.Missing),
	})
	if len(all) != n+2*m {
		t.Errorf("%d of %d alarms accepted", len(all), n+2*m)
	}
}
