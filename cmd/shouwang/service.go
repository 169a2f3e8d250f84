package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/time/rate"

	"github.com/shouwang/shouwang/accounts"
	"github.com/shouwang/shouwang/api"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/incidents"
	"github.com/shouwang/shouwang/metrics"
	"github.com/shouwang/shouwang/plans"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/schedule"
	"github.com/shouwang/shouwang/sms"
	"github.com/shouwang/shouwang/storage"
)

// Service is one running replica: stores, bus, handlers and HTTP.
type Service struct {
	Addr       string
	DB         storage.DB
	Bus        *events.Bus
	Registry   *responders.Registry
	Dispatcher *responders.Dispatcher
	Tokens     *api.Tokens
	Accounts   *accounts.Accounts
	DevSink    *sms.DevSink
	Plans      *plans.Store
	Runner     *plans.Runner
	Drills     *plans.Drills
	// Metrics is this replica's own registry, served at /metrics.
	Metrics *metrics.Set

	// requestDB is the HTTP request path's own PostgreSQL pool
	// (storage.ForRequests); nil on SQLite.
	requestDB storage.DB

	log     *slog.Logger
	app     *fiber.App
	subs    []*events.Subscription
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closeMu sync.Once

	// stopStreams ends the live streams (GET /v1/stream) before HTTP
	// shuts down, which would otherwise wait for them.
	stopStreams context.CancelFunc
}

// Start wires and starts everything; Close stops it gracefully.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (svc *Service, err error) {
	now := time.Now
	// Scheduled jobs run on their own clock so tests can move it; the
	// rest of the service keeps the wall clock (JetStream timers do).
	clock := cfg.Clock
	if clock == nil {
		clock = schedule.WallClock{}
	}
	tax := events.DefaultTaxonomy()
	s := &Service{log: log, Metrics: metrics.New()}
	defer func() {
		if err != nil {
			s.Close(context.Background())
		}
	}()

	if s.DB, err = storage.Open(ctx, cfg.DatabaseURL, cfg.DataDir); err != nil {
		return nil, err
	}
	if err = storage.Migrate(ctx, s.DB); err != nil {
		return nil, err
	}
	requestDB, own, err := storage.ForRequests(ctx, s.DB, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if own {
		s.requestDB = requestDB
	}
	if s.Bus, err = events.Connect(ctx, events.BusConfig{
		URL: cfg.NATSURL, StoreDir: filepath.Join(cfg.DataDir, "jetstream"), Replicas: cfg.NATSReplicas, Logger: log,
		DeadLetters: s.Metrics,
	}); err != nil {
		return nil, err
	}
	s.Metrics.WatchBus(s.Bus)
	relay := events.NewRelay(s.DB, s.Bus, log)
	relay.Settle = s.Bus.Settle()
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	defer func() {
		if err != nil {
			ln.Close()
		}
	}()
	s.Addr = ln.Addr().String()
	// Links in texts and call menus point at the public URL; without one
	// (a laptop), at this server.
	publicURL := strings.TrimRight(cfg.PublicURL, "/")
	if publicURL == "" {
		publicURL = "http://" + s.Addr
	}

	var provider sms.Provider
	if cfg.twilioConfigured() {
		var opts []sms.TwilioOption
		if cfg.TwilioHTTPClient != nil {
			opts = append(opts, sms.WithHTTPClient(cfg.TwilioHTTPClient))
		}
		if cfg.TwilioAPIURL != "" {
			u, err := cfg.twilioAPIURL()
			if err != nil {
				return nil, err
			}
			opts = append(opts, sms.WithAPIURL(u))
		}
		provider = sms.NewTwilio(cfg.TwilioAccountSID, cfg.TwilioAuthToken, cfg.TwilioFrom, opts...)
	} else {
		s.DevSink = &sms.DevSink{DB: s.DB, Now: now}
		provider = s.DevSink
	}
	statusCallback := ""
	if cfg.PublicURL != "" {
		statusCallback = strings.TrimRight(cfg.PublicURL, "/") + "/v1/webhooks/twilio/status"
	}

	// The match index is this replica's cache of the registry; the keeper
	// loads it, follows other replicas' changes and reconciles it.
	var index *responders.Index
	if index, err = responders.NewIndex(tax); err != nil {
		return nil, err
	}
	keeper := &responders.IndexKeeper{Index: index, DB: s.DB, Conn: s.Bus.Conn(), Log: log, Now: now,
		Origin: events.NewID("replica", now())}
	s.Registry = &responders.Registry{DB: s.DB, Tax: tax, Now: now, Keeper: keeper}
	s.Dispatcher = &responders.Dispatcher{DB: s.DB, Tax: tax, Relay: relay, Log: log, Now: now, WaveTimeout: cfg.WaveTimeout,
		VoiceAfter: cfg.VoiceAfter, LinkBase: publicURL, LinkTTL: cfg.LinkTTL, Metrics: s.Metrics, Index: index}
	s.Plans = &plans.Store{DB: s.DB, Tax: tax, Now: now, Parsed: plans.NewParseCache()}
	if err = s.Plans.Seed(ctx); err != nil {
		return nil, err
	}
	s.Runner = &plans.Runner{DB: s.DB, Tax: tax, Store: s.Plans, Relay: relay, Log: log, Now: now, LinkBase: publicURL, LinkTTL: cfg.LinkTTL, Index: index}
	s.Dispatcher.Duties = s.Runner
	s.Drills = &plans.Drills{DB: s.DB, Tax: tax, Relay: relay, Dispatcher: s.Dispatcher, Log: log, Now: now, LinkBase: publicURL}
	s.Tokens = &api.Tokens{DB: requestDB, AdminHash: api.AdminHash(cfg.AdminToken), Now: now, Known: &api.KnownTokens{}}
	s.Accounts = &accounts.Accounts{DB: s.DB, Relay: relay, Log: log, Now: now, LinkBase: publicURL}
	intake := &incidents.Intake{DB: s.DB, Tax: tax, Relay: relay, Log: log, Now: now, Metrics: s.Metrics}
	// Burst 1: the texts are spaced evenly at the provider's rate. A burst
	// equal to the rate let the first second send twice what the provider
	// takes, and the excess came back as 429s (issue 8, masscall).
	sender := &sms.Sender{DB: s.DB, Provider: provider, Relay: relay, Log: log, Now: now,
		Limiter: rate.NewLimiter(rate.Limit(cfg.SMSRate), 1), StatusCallback: statusCallback,
		PublicURL: publicURL, Carrier: sms.Carrier{PerRecipientPerMinute: cfg.SMSPerRecipient, IdenticalWindow: cfg.SMSIdenticalWindow},
		Metrics: s.Metrics, FirstMarked: &sms.FirstMarked{}}
	// Reminders have a sender of their own: one worker at a low pace that
	// takes only the provider capacity live texts leave.
	bulkRate := cfg.SMSBulkRate
	if bulkRate <= 0 {
		bulkRate = defaultSMSBulkRate
	}
	bulkSender := *sender
	bulkSender.Bulk = rate.NewLimiter(rate.Limit(min(bulkRate, cfg.SMSRate)), 1)
	training := &responders.Training{DB: s.DB, Relay: relay, Log: log, Now: now}
	reminders := &responders.Reminders{DB: s.DB, Tax: tax, Relay: relay, Log: log, Now: now, BudgetMonth: cfg.BudgetMonth}

	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	busy := busyWorkers(s.DB.Dialect())
	for _, c := range []struct {
		spec    events.ConsumerSpec
		handler events.Handler
	}{
		{events.ConsumerSpec{Stream: events.StreamAlarms, Durable: "intake", Workers: intakeWorkers}, intake.Handle},
		{events.ConsumerSpec{Stream: events.StreamIncidents, Durable: "dispatch", Workers: busy,
			Filters: []string{events.IncidentEventFilter(events.IncidentOpened)}}, s.Dispatcher.HandleIncident},
		{events.ConsumerSpec{Stream: events.StreamTimers, Durable: "wave-timers", Workers: 4,
			Filters: []string{events.TimerSubjectWave}}, s.Dispatcher.HandleTimer},
		{events.ConsumerSpec{Stream: events.StreamTimers, Durable: "voice-timers", Workers: 4,
			Filters: []string{events.TimerSubjectVoice}}, s.Dispatcher.HandleVoiceTimer},
		{events.ConsumerSpec{Stream: events.StreamIncidents, Durable: "plans", Workers: busy,
			Filters: []string{events.IncidentEventFilter(events.IncidentOpened)}}, s.Runner.HandleIncident},
		{events.ConsumerSpec{Stream: events.StreamTimers, Durable: "duty-timers", Workers: 2,
			Filters: []string{events.TimerSubjectDuty}}, s.Runner.HandleDutyTimer},
		{events.ConsumerSpec{Stream: events.StreamIncidents, Durable: "reporter-feedback", Workers: 8,
			Filters: []string{events.IncidentEventFilter(events.IncidentOpened), events.IncidentEventFilter(events.IncidentReportAdded)}},
			s.Dispatcher.HandleReported},
		{events.ConsumerSpec{Stream: events.StreamSMS, Durable: "replies", Workers: 2,
			Filters: []string{events.SMSInboundSubject}}, s.Dispatcher.HandleReply},
		{events.ConsumerSpec{Stream: events.StreamSMS, Durable: "offer-failover", Workers: 2,
			Filters: []string{events.SMSFailedSubject}}, s.Dispatcher.HandleFailed},
		{events.ConsumerSpec{Stream: events.StreamSMS, Durable: "sms-receipts", Workers: 2,
			Filters: []string{events.SMSStatusSubject}}, (&sms.Receipts{DB: s.DB, Relay: relay, Log: log, Now: now, Metrics: s.Metrics}).Handle},
		{events.ConsumerSpec{Stream: events.StreamTimers, Durable: "schedule", Workers: 2,
			Filters: []string{schedule.Filter}}, (&schedule.Runner{DB: s.DB, Now: now, Log: log, Handlers: map[string]schedule.Handler{
			responders.ReadinessSummaryJob: func(ctx context.Context, f schedule.Fired) error {
				return s.Dispatcher.ReadinessSummary(ctx, f.Slot)
			},
			plans.DrillJobPrefix + "*": s.Drills.RunScheduled,
			responders.RemindersJob: func(ctx context.Context, f schedule.Fired) error {
				return reminders.Run(ctx, f.Slot)
			},
		}}).Handle},
		{events.ConsumerSpec{Stream: events.StreamTimers, Durable: "drill-timers", Workers: 1,
			Filters: []string{events.TimerSubjectDrill}}, s.Drills.HandleTimer},
		{events.ConsumerSpec{Stream: events.StreamIncidents, Durable: "drill-reports", Workers: 1,
			Filters: []string{events.IncidentEventFilter(events.IncidentResolved), events.IncidentEventFilter(events.IncidentCancelled)}},
			s.Drills.HandleClosed},
		// A provider outage must not drop texts: retry for about half an hour.
		{events.ConsumerSpec{Stream: events.StreamSMS, Durable: "sms-sender", Workers: busy, MaxTries: 70,
			Filters: []string{"sms.send.>"}}, sender.Handle},
		{events.ConsumerSpec{Stream: events.StreamSMS, Durable: "sms-bulk", Workers: 1, MaxTries: 70,
			Filters: []string{"sms.bulk.>"}}, bulkSender.Handle},
	} {
		sub, err := s.Bus.Consume(runCtx, c.spec, c.handler)
		if err != nil {
			return nil, err
		}
		s.subs = append(s.subs, sub)
	}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); relay.Run(runCtx, time.Second) }()
	s.wg.Add(1)
	go func() { defer s.wg.Done(); keeper.Run(runCtx) }()
	scheduler := &schedule.Scheduler{DB: s.DB, Bus: s.Bus, Clock: clock, Zone: responders.Zone, Grace: cfg.ScheduleGrace, Log: log,
		Jobs: func(ctx context.Context) ([]schedule.Job, error) {
			var jobs []schedule.Job
			if cfg.ReadinessCron != "" {
				jobs = append(jobs, schedule.Job{Name: responders.ReadinessSummaryJob, Spec: cfg.ReadinessCron})
			}
			if cfg.RemindersCron != "" {
				jobs = append(jobs, schedule.Job{Name: responders.RemindersJob, Spec: cfg.RemindersCron})
			}
			drills, err := s.Drills.Jobs(ctx)
			return append(jobs, drills...), err
		}}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); scheduler.Run(runCtx) }()

	streams, stopStreams := context.WithCancel(context.Background())
	s.stopStreams = stopStreams
	s.app = api.New(api.Deps{
		Live: s.Bus.Conn(), Closing: streams,
		DB: requestDB, Bus: s.Bus, Tax: tax, Registry: s.Registry, Dispatcher: s.Dispatcher,
		Submitter: &incidents.Submitter{Bus: s.Bus, Tax: tax}, Tokens: s.Tokens, Accounts: s.Accounts, DevSink: s.DevSink, Plans: s.Plans, Runner: s.Runner, Drills: s.Drills, Training: training,
		TwilioAuthToken: cfg.TwilioAuthToken, PublicURL: cfg.PublicURL, CAPSender: cfg.CAPSender, Log: log, Now: now, Metrics: s.Metrics,
		Limits: api.RateLimits{IP: cfg.APIRateIP, IPBurst: cfg.APIRateIPBurst, Token: cfg.APIRateToken, TokenBurst: cfg.APIRateTokenBurst,
			TrustedProxies: cfg.TrustedProxies},
	})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.app.Listener(ln); err != nil && !errors.Is(err, net.ErrClosed) {
			log.Error("http server stopped", "err", err)
		}
	}()
	return s, nil
}

// Close stops taking requests, lets handlers in flight finish, then closes
// the bus and the database.
func (s *Service) Close(ctx context.Context) error {
	var err error
	s.closeMu.Do(func() {
		if s.stopStreams != nil {
			s.stopStreams()
		}
		if s.app != nil {
			deadline, ok := ctx.Deadline()
			timeout := 10 * time.Second
			if ok {
				timeout = time.Until(deadline)
			}
			err = s.app.ShutdownWithTimeout(timeout)
		}
		for _, sub := range s.subs {
			sub.Stop()
		}
		if s.cancel != nil {
			s.cancel()
		}
		s.wg.Wait()
		if s.Bus != nil {
			s.Bus.Close()
		}
		if s.requestDB != nil {
			s.requestDB.Close()
		}
		if s.DB != nil {
			s.DB.Close()
		}
	})
	return err
}

// intakeWorkers is how many presses at once the intake handles. Presses
// handled together share one transaction (incidents.intakeGroup), and
// only its leader holds a connection, so more of them make larger groups,
// not more backends. On PostgreSQL, with 16, a storm's groups were at
// most 16 presses, and the serial group transactions fell 5.5–8.2 s behind
// 10,000 presses in 10 s; with 64 it was 1.6–2.7 s, at the cost of a
// slower 202 during the storm, because the downstream work now shares the
// cores with the presses (docs/performance.md, ninth round).
const intakeWorkers = 64

// busyWorkers is how many messages at once the consumers on an alarm's
// path (dispatch, plan start, sender) handle. On SQLite every
// handler's transaction waits for the writer's next group commit
// (storage/sqlitewriter.go), so the handlers in flight are what fills a
// group: with 16 each, the writer was busy all the time at 200 alarms/s on
// this project's CI machine and still committed groups of about 19; with
// 32, groups of about 28 and 14 % less writer time an alarm, and the
// hand-over to the sender went from p50 0.85–3.7 s to 0.15–0.6 s in four
// back-to-back pairs (docs/performance.md, seventh round). On PostgreSQL
// each handler holds a connection and a backend, and on two cores more of
// them only share the same CPU: there 32 made a press's 202 slower.
func busyWorkers(dialect string) int {
	if dialect == "sqlite" {
		return 32
	}
	return 16
}
