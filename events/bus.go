package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// HeaderNotBefore holds a message back until the given unix-millisecond
// time: durable timers are ordinary messages with this header.
const HeaderNotBefore = "Shouwang-Not-Before"

// BusConfig says which NATS to use and how to lay out the streams.
type BusConfig struct {
	// URL of an external NATS (comma-separated for a cluster). Empty starts
	// an embedded server in-process that listens on no port.
	URL string
	// StoreDir is where the embedded server keeps JetStream files.
	StoreDir string
	// Replicas of each stream: 1 embedded, 3 on a production cluster.
	Replicas int
	Logger   *slog.Logger
	// DeadLetters counts messages moved to the dead letters (the
	// service's metrics); nil counts nothing.
	DeadLetters DeadLetterCounter
}

// DeadLetterCounter counts messages moved to the dead letters.
type DeadLetterCounter interface {
	DeadLettered(durable string)
}

// Bus is the JetStream bus: streams, publishing with dedup, consumers.
type Bus struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	server *server.Server // nil when external
	log    *slog.Logger
	dead   DeadLetterCounter

	mu        sync.Mutex
	consumers []consumerRef // what this process consumes, for ConsumerLag
}

// consumerRef names a durable consumer on its stream.
type consumerRef struct{ stream, durable string }

// Connect opens the bus and makes sure every stream exists.
func Connect(ctx context.Context, cfg BusConfig) (*Bus, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	b := &Bus{log: log, dead: cfg.DeadLetters}
	opts := []nats.Option{
		nats.Name("shouwang"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrl()) }),
	}
	url := cfg.URL
	if url == "" {
		ns, err := startEmbedded(cfg.StoreDir)
		if err != nil {
			return nil, err
		}
		b.server = ns
		opts = append(opts, nats.InProcessServer(ns))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		b.shutdownServer()
		return nil, fmt.Errorf("connect nats %s: %w", url, err)
	}
	b.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	b.js = js
	if err := b.ensureStreams(ctx, max(cfg.Replicas, 1)); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func startEmbedded(dir string) (*server.Server, error) {
	ns, err := server.NewServer(&server.Options{
		ServerName: "shouwang-embedded",
		JetStream:  true,
		StoreDir:   dir,
		DontListen: true,
		NoSigs:     true,
		// A 202 promises the alarm survives a crash. The file store otherwise
		// acknowledges messages it still holds in memory, and kill -9 loses
		// them (a test proved it); a single embedded node has no replicas to
		// fall back on. Streams that only the outbox feeds opt out (see
		// outboxFed).
		SyncAlways: true,
		// How often the opted-out streams are written and fsynced; Settle
		// waits a few of these.
		SyncInterval: embeddedSyncInterval,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded nats: not ready after 10s")
	}
	return ns, nil
}

// embeddedSyncInterval is how often the embedded server fsyncs the
// streams that do not fsync each message.
const embeddedSyncInterval = 250 * time.Millisecond

// outboxFed are the streams whose every message is first committed to the
// database's outbox (Relay): on the embedded server they skip the fsync a
// message, and the outbox keeps each message's row until Settle has passed,
// so a message lost with the server's buffers is published again. The
// fsyncs were the ceiling of the embedded service: a press becomes a dozen
// such messages, fsynced one at a time per stream (issue 8). ALARMS (a
// press is on the bus alone when it is answered 202), SMS (Twilio's
// webhooks publish there directly and Twilio does not send again) and the
// dead letters keep fsyncing every message. The scheduler publishes its
// slots on TIMERS directly: a slot lost to a power cut fires again on
// start-up, within the schedule grace.
var outboxFed = map[string]bool{StreamIncidents: true, StreamTimers: true}

// Settle is how long after JetStream acknowledged a message it may still
// be lost by a crash of this process or the machine: the outbox must keep
// the message until then. Zero when every stream fsyncs each message (an
// external server is the operator's to configure; a cluster replicates).
func (b *Bus) Settle() time.Duration {
	if b.server == nil {
		return 0
	}
	// Buffered writes reach the file within milliseconds, and an fsync
	// follows every embeddedSyncInterval: four of those is room enough.
	return 4 * embeddedSyncInterval
}

func (b *Bus) ensureStreams(ctx context.Context, replicas int) error {
	day := 24 * time.Hour
	streams := []jetstream.StreamConfig{
		// Presses are kept a month: they are the evidence of what residents asked for.
		{Name: StreamAlarms, Subjects: []string{alarmsWildcard}, MaxAge: 30 * day, Duplicates: 2 * time.Hour},
		{Name: StreamIncidents, Subjects: []string{incidentsWildcard}, MaxAge: 30 * day, Duplicates: 10 * time.Minute},
		{Name: StreamSMS, Subjects: []string{smsWildcard}, MaxAge: 7 * day, Duplicates: 10 * time.Minute},
		{Name: StreamTimers, Subjects: []string{timersWildcard}, MaxAge: 7 * day, Duplicates: 10 * time.Minute},
		{Name: StreamDeadLetter, Subjects: []string{deadWildcard}, MaxAge: 30 * day, Duplicates: 10 * time.Minute},
	}
	for _, sc := range streams {
		sc.Storage = jetstream.FileStorage
		sc.Retention = jetstream.LimitsPolicy
		sc.Replicas = replicas
		if b.server != nil && replicas == 1 && outboxFed[sc.Name] {
			sc.PersistMode = jetstream.AsyncPersistMode
		}
		// JetStream refuses to change a stream's persist mode: a stream made
		// by an earlier version keeps the one it has.
		if old, err := b.js.Stream(ctx, sc.Name); err == nil {
			sc.PersistMode = old.CachedInfo().Config.PersistMode
		} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
		if _, err := b.js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	return nil
}

// Message is one thing to publish. ID is its Nats-Msg-Id: JetStream drops a
// second message with the same ID inside the stream's duplicate window.
type Message struct {
	ID        string
	Subject   string
	Data      []byte
	NotBefore time.Time
}

// EventMessage wraps an event as a message; its id is the event's id.
func EventMessage(ev Event, notBefore time.Time) (Message, error) {
	data, err := json.Marshal(ev)
	if err != nil {
		return Message{}, fmt.Errorf("encode event %s: %w", ev.ID, err)
	}
	return Message{ID: ev.ID, Subject: ev.Subject, Data: data, NotBefore: notBefore}, nil
}

// publishPatience is how long Publish keeps trying through a moment when
// the stream cannot answer: a leader election on a cluster takes a few
// seconds.
const publishPatience = 5 * time.Second

// Publish stores m in JetStream and waits for the acknowledgement: once it
// returns nil the message survives a crash of this process. Through a
// stream leader election, or while another replica stores the same id, it
// tries again with the same id (so nothing is stored twice) until ctx ends
// or publishPatience has passed.
func (b *Bus) Publish(ctx context.Context, m Message) error {
	msg := nats.NewMsg(m.Subject)
	msg.Data = m.Data
	if !m.NotBefore.IsZero() {
		msg.Header.Set(HeaderNotBefore, strconv.FormatInt(m.NotBefore.UnixMilli(), 10))
	}
	deadline := time.Now().Add(publishPatience)
	wait := 50 * time.Millisecond
	for {
		_, err := b.js.PublishMsg(ctx, msg, jetstream.WithMsgID(m.ID))
		if err == nil {
			return nil
		}
		if !passing(err) || time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("publish %s to %s: %w", m.ID, m.Subject, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("publish %s to %s: %w", m.ID, m.Subject, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// jsErrDuplicateInProcess is JetStream's answer on a cluster when a message
// with the same id is being stored right now (two replicas' outbox sweeps,
// say); a moment later the same publish is acknowledged as a duplicate.
const jsErrDuplicateInProcess jetstream.ErrorCode = 10158

// passing reports whether a publish error is a moment's trouble worth
// trying again: no stream leader yet, or the same id in process.
func passing(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return true
	case errors.As(err, &apiErr):
		return apiErr.ErrorCode == jsErrDuplicateInProcess
	}
	return false
}

// PublishEvent publishes an event now.
func (b *Bus) PublishEvent(ctx context.Context, ev Event) error {
	m, err := EventMessage(ev, time.Time{})
	if err != nil {
		return err
	}
	return b.Publish(ctx, m)
}

// Ready reports whether the bus can take messages now.
func (b *Bus) Ready(ctx context.Context) error {
	if b.nc.Status() != nats.CONNECTED {
		return fmt.Errorf("nats %s", b.nc.Status())
	}
	if _, err := b.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	return nil
}

// Conn is the underlying connection, for plain (non-durable) subscriptions
// such as live views.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// JetStream is the underlying JetStream context, for tests and tools.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Close drains the connection and stops the embedded server, if any.
func (b *Bus) Close() {
	if b.nc != nil {
		_ = b.nc.Drain()
		for i := 0; i < 100 && !b.nc.IsClosed(); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		b.nc.Close()
	}
	b.shutdownServer()
}

func (b *Bus) shutdownServer() {
	if b.server != nil {
		b.server.Shutdown()
		b.server.WaitForShutdown()
	}
}

// Handler processes one event. It must be idempotent: the same event may be
// delivered again after a crash, a timeout or a redelivery. Return nil once
// the outcome is committed; an error makes the bus retry with backoff.
type Handler func(ctx context.Context, ev Event) error

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent wraps err so the bus sends the message to the dead letters at
// once instead of retrying.
func Permanent(err error) error { return permanentError{err} }

// delayError asks for redelivery after a given time.
type delayError struct {
	after time.Duration
	err   error
}

func (e delayError) Error() string { return e.err.Error() }
func (e delayError) Unwrap() error { return e.err }

// RetryAfter asks the bus to redeliver the message after d instead of the
// usual backoff: the handler knows when trying again makes sense (a
// per-recipient limit resets, say).
func RetryAfter(d time.Duration, err error) error { return delayError{after: d, err: err} }

// RetryDelay reports the wait err asks for, if it was made by RetryAfter.
func RetryDelay(err error) (time.Duration, bool) {
	var de delayError
	if errors.As(err, &de) {
		return de.after, true
	}
	return 0, false
}

// ConsumerSpec names a durable consumer.
type ConsumerSpec struct {
	Stream  string
	Durable string
	Filters []string
	// Workers is how many messages this process handles at once.
	Workers int
	// MaxTries before a failing message goes to the dead letters.
	MaxTries int
	// AckWait is how long a message may go without an ack or a heartbeat
	// before another worker gets it. Handlers heartbeat while they work, so
	// this bounds how long a crashed replica's messages wait, not how long a
	// handler may run.
	AckWait time.Duration
}

// Subscription is a running consumer.
type Subscription struct {
	cc      jetstream.ConsumeContext
	wg      sync.WaitGroup
	mu      sync.Mutex
	stopped bool
}

// Stop stops fetching and waits for the handlers in flight to finish. A
// message fetched but not started is left unacknowledged for redelivery.
func (s *Subscription) Stop() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.cc.Stop()
	s.wg.Wait()
}

// begin registers a handler about to run, unless Stop has been called.
func (s *Subscription) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.wg.Add(1)
	return true
}

// Consume runs h for every message of a durable consumer. Several processes
// using the same durable share the work.
func (b *Bus) Consume(ctx context.Context, spec ConsumerSpec, h Handler) (*Subscription, error) {
	if spec.Workers < 1 {
		spec.Workers = 1
	}
	if spec.MaxTries < 1 {
		spec.MaxTries = 8
	}
	if spec.AckWait <= 0 {
		spec.AckWait = 5 * time.Second
	}
	cons, err := b.js.CreateOrUpdateConsumer(ctx, spec.Stream, jetstream.ConsumerConfig{
		Durable:        spec.Durable,
		FilterSubjects: spec.Filters,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        spec.AckWait,
		// Delivery counting is ours (see handle): delayed timers are
		// redelivered on purpose and must never be dropped by the server.
		MaxDeliver:    -1,
		MaxAckPending: spec.Workers * 4,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", spec.Durable, err)
	}
	sem := make(chan struct{}, spec.Workers)
	sub := &Subscription{}
	log := b.log.With("durable", spec.Durable)
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		sem <- struct{}{}
		if !sub.begin() {
			<-sem
			return
		}
		go func() {
			defer func() { <-sem; sub.wg.Done() }()
			b.handle(ctx, spec, log, h, msg)
		}()
	}, jetstream.PullMaxMessages(spec.Workers*2))
	if err != nil {
		return nil, fmt.Errorf("consume %s: %w", spec.Durable, err)
	}
	sub.cc = cc
	b.mu.Lock()
	b.consumers = append(b.consumers, consumerRef{spec.Stream, spec.Durable})
	b.mu.Unlock()
	return sub, nil
}

func (b *Bus) handle(ctx context.Context, spec ConsumerSpec, log *slog.Logger, h Handler, msg jetstream.Msg) {
	if nb := msg.Headers().Get(HeaderNotBefore); nb != "" {
		if ms, err := strconv.ParseInt(nb, 10, 64); err == nil {
			if wait := time.Until(time.UnixMilli(ms)); wait > 0 {
				_ = msg.NakWithDelay(wait)
				return
			}
		}
	}
	meta, err := msg.Metadata()
	tries := uint64(1)
	if err == nil {
		tries = meta.NumDelivered
	}
	var ev Event
	if err := json.Unmarshal(msg.Data(), &ev); err != nil {
		b.deadLetter(ctx, spec, log, msg, fmt.Errorf("decode envelope: %w", err))
		return
	}
	// A handler keeps the message in progress while it works, so a slow
	// database does not make the server hand the message to another replica.
	stop := keepInProgress(msg, spec.AckWait)
	err = h(ctx, ev)
	stop()
	if err == nil {
		if err := msg.Ack(); err != nil {
			log.Warn("ack failed; message will be redelivered and handled idempotently", "event", ev.ID, "err", err)
		}
		return
	}
	var perm permanentError
	if errors.As(err, &perm) || tries >= uint64(spec.MaxTries) {
		b.deadLetter(ctx, spec, log, msg, err)
		return
	}
	delay := backoff(tries)
	if de := (delayError{}); errors.As(err, &de) {
		delay = de.after
	}
	log.Warn("handler failed; retrying", "event", ev.ID, "type", ev.Type, "try", tries, "retry_in", delay, "err", err)
	_ = msg.NakWithDelay(delay)
}

func keepInProgress(msg jetstream.Msg, ackWait time.Duration) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(ackWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	return func() { close(done) }
}

// backoff grows 250 ms, 500 ms, 1 s … up to 30 s.
func backoff(try uint64) time.Duration {
	d := 250 * time.Millisecond
	for i := uint64(1); i < try && d < 30*time.Second; i++ {
		d *= 2
	}
	return min(d, 30*time.Second)
}

// Header names on a dead letter.
const (
	HeaderDeadSubject = "Shouwang-Dead-Subject"
	HeaderDeadError   = "Shouwang-Dead-Error"
	HeaderDeadDurable = "Shouwang-Dead-Durable"
)

// deadLetter parks a message that cannot be handled where admins can see it,
// then terminates it so it stops blocking the consumer.
func (b *Bus) deadLetter(ctx context.Context, spec ConsumerSpec, log *slog.Logger, msg jetstream.Msg, cause error) {
	dl := nats.NewMsg(deadLetterPrefix + spec.Durable)
	dl.Data = msg.Data()
	dl.Header.Set(HeaderDeadSubject, msg.Subject())
	dl.Header.Set(HeaderDeadError, cause.Error())
	dl.Header.Set(HeaderDeadDurable, spec.Durable)
	// One dead letter per message and durable, however often the message
	// comes back (a Term lost on the way, a redelivery under load): it is
	// stored and counted once.
	var opts []jetstream.PublishOpt
	if meta, err := msg.Metadata(); err == nil {
		opts = append(opts, jetstream.WithMsgID(spec.Durable+":"+meta.Stream+":"+strconv.FormatUint(meta.Sequence.Stream, 10)))
	}
	ack, err := b.js.PublishMsg(ctx, dl, opts...)
	if err != nil {
		log.Error("dead letter not stored; leaving message for redelivery", "subject", msg.Subject(), "err", err)
		_ = msg.NakWithDelay(30 * time.Second)
		return
	}
	if ack.Duplicate {
		_ = msg.Term()
		return
	}
	log.Error("message moved to dead letters", "subject", msg.Subject(), "err", cause)
	if b.dead != nil {
		b.dead.DeadLettered(spec.Durable)
	}
	_ = msg.Term()
}

// DeadLetter is a message that failed for good.
type DeadLetter struct {
	Seq     uint64    `json:"seq"`
	Durable string    `json:"durable"`
	Subject string    `json:"subject"`
	Error   string    `json:"error"`
	At      time.Time `json:"at"`
	Data    string    `json:"data"`
}

// DeadLetters lists up to limit dead letters, newest last.
func (b *Bus) DeadLetters(ctx context.Context, limit int) ([]DeadLetter, error) {
	s, err := b.js.Stream(ctx, StreamDeadLetter)
	if err != nil {
		return nil, fmt.Errorf("dead letter stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	var out []DeadLetter
	first := info.State.FirstSeq
	if info.State.Msgs > uint64(limit) {
		first = info.State.LastSeq - uint64(limit) + 1
	}
	for seq := first; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted or aged out
		}
		out = append(out, DeadLetter{
			Seq: seq, Durable: m.Header.Get(HeaderDeadDurable), Subject: m.Header.Get(HeaderDeadSubject),
			Error: m.Header.Get(HeaderDeadError), At: m.Time, Data: string(m.Data),
		})
	}
	return out, nil
}
