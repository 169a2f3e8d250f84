package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/incidents"
)

// Subscriber is the part of the bus a live stream needs: plain NATS
// subscriptions (a *nats.Conn). JetStream publishes reach plain
// subscribers too, so a stream sees each incident event as it is
// published, and leaves no durable consumer behind when it ends.
type Subscriber interface {
	ChanSubscribe(subject string, ch chan *nats.Msg) (*nats.Subscription, error)
}

const (
	// streamHeartbeat keeps proxies from closing a quiet stream, and finds
	// clients that went away without saying so.
	streamHeartbeat = 15 * time.Second
	// streamRetry is how long a browser waits before reconnecting.
	streamRetry = 2 * time.Second
	// streamWriteTimeout bounds each write to a stream's client. The
	// server's WriteTimeout counts from the start of a response, which a
	// stream outlives, so every write moves the deadline on.
	streamWriteTimeout = 2 * streamHeartbeat
	// streamBuffer is how many events wait for a slow client; NATS drops
	// what does not fit, and the board catches up at the next event.
	streamBuffer = 64
	// streamCheckTimeout bounds the database check of whether a resident
	// or responder may see an incident.
	streamCheckTimeout = 5 * time.Second
)

// liveEvent is what a stream sends for one incident event: enough for a
// board to know which incident to read again.
type liveEvent struct {
	ID        string           `json:"id"`
	Community string           `json:"community"`
	Type      string           `json:"type"`
	Event     string           `json:"event"`
	Status    incidents.Status `json:"status"`
	Drill     bool             `json:"drill"`
	At        time.Time        `json:"at"`
}

// liveEventOf reads an incident event off the bus.
func liveEventOf(m *nats.Msg) (liveEvent, bool) {
	var ev events.Event
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		return liveEvent{}, false
	}
	var p incidents.Payload
	if err := ev.Decode(&p); err != nil || p.ID == "" {
		return liveEvent{}, false
	}
	name, ok := strings.CutPrefix(ev.Type, "incident.")
	if !ok {
		return liveEvent{}, false
	}
	return liveEvent{ID: p.ID, Community: p.Community, Type: p.Type, Event: name, Status: p.Status,
		Drill: p.Drill || ev.Drill, At: ev.OccurredAt}, true
}

// follower decides which events one stream passes on.
type follower struct {
	s *server
	p Principal
	// community is the only community passed on; empty: every one (an
	// admin's stream).
	community string
	// incident, when set, is the only incident passed on.
	incident string
	// seen holds the incidents a resident or responder may see, found so
	// far: once reported or offered, always so.
	seen map[string]bool
}

// stream sends the incident events the caller may see as server-sent
// events, until the client goes away or the service stops. Dispatchers
// and org users follow their community, an admin every community or the
// one in ?community=, residents the incidents they reported, responders
// the ones they were offered; ?incident= narrows it to one incident the
// caller may see (else 404).
func (s *server) stream(c *fiber.Ctx) error {
	p, err := need(c, RoleResident, RoleResponder, RoleDispatcher, RoleOrg, RoleAdmin)
	if err != nil {
		return err
	}
	f := &follower{s: s, p: p, seen: map[string]bool{}}
	if err := f.scope(c); err != nil {
		return err
	}
	if s.Live == nil {
		return fmt.Errorf("live stream without a bus: %w", errdefs.ErrUnavailable)
	}
	subject := events.IncidentsOf(f.community)
	msgs := make(chan *nats.Msg, streamBuffer)
	sub, err := s.Live.ChanSubscribe(subject, msgs)
	if err != nil {
		return fmt.Errorf("follow %s: %w (%w)", subject, errdefs.ErrUnavailable, err)
	}
	closing := s.Closing
	if closing == nil {
		closing = context.Background()
	}
	conn := c.Context().Conn()
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no") // nginx: pass each event on at once
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer func() { _ = sub.Unsubscribe() }()
		f.run(closing, w, conn, msgs)
	})
	return nil
}

// scope reads what the caller asked to follow and checks they may.
func (f *follower) scope(c *fiber.Ctx) error {
	p := f.p
	if id := c.Query("incident"); id != "" {
		in, err := incidents.Get(c.UserContext(), f.s.DB, id)
		if err != nil {
			return err
		}
		if err := f.s.canSee(c, p, in); err != nil {
			return err
		}
		f.community, f.incident = in.Community, in.ID
		f.seen[in.ID] = true
		return nil
	}
	community := c.Query("community")
	switch {
	case p.Role == RoleAdmin:
		f.community = community
	case p.Community == "":
		return fmt.Errorf("a %s without a community has nothing to follow: %w", p.Role, errdefs.ErrForbidden)
	case community != "" && community != p.Community:
		return fmt.Errorf("community %s: %w", community, errdefs.ErrNotFound)
	default:
		f.community = p.Community
	}
	return nil
}

// run writes events to the client until ctx ends or a write fails: the
// client went away.
func (f *follower) run(ctx context.Context, w *bufio.Writer, conn net.Conn, msgs <-chan *nats.Msg) {
	write := func(s string) bool {
		if conn != nil {
			_ = conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		}
		if _, err := w.WriteString(s); err != nil {
			return false
		}
		return w.Flush() == nil
	}
	if !write(fmt.Sprintf("retry: %d\n\n", streamRetry.Milliseconds())) {
		return
	}
	ping := time.NewTicker(streamHeartbeat)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ping.C:
			if !write(": ping\n\n") {
				return
			}
		case m, ok := <-msgs:
			if !ok {
				return
			}
			ev, ok := liveEventOf(m)
			if !ok || !f.admit(ctx, ev) {
				continue
			}
			data, err := json.Marshal(ev)
			if err != nil {
				continue
			}
			if !write("event: incident\ndata: " + string(data) + "\n\n") {
				return
			}
		}
	}
}

// admit reports whether the stream passes an event on.
func (f *follower) admit(ctx context.Context, ev liveEvent) bool {
	if (f.incident != "" && ev.ID != f.incident) || (f.community != "" && ev.Community != f.community) {
		return false
	}
	switch f.p.Role {
	case RoleAdmin, RoleDispatcher, RoleOrg:
		return true
	}
	if f.seen[ev.ID] {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, streamCheckTimeout)
	defer cancel()
	if err := f.s.canSeeIn(ctx, f.p, ev.ID, ev.Community); err != nil {
		if !errors.Is(err, errdefs.ErrNotFound) && ctx.Err() == nil {
			f.s.Log.Warn("live stream: cannot check an incident", "incident", ev.ID, "role", f.p.Role, "err", err)
		}
		return false
	}
	f.seen[ev.ID] = true
	return true
}
