// Package api is Shouwang's HTTP face: the JSON API (fiber v2), bearer-token
// authentication and roles, and the Twilio webhooks.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/shouwang/shouwang/accounts"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/incidents"
	"github.com/shouwang/shouwang/metrics"
	"github.com/shouwang/shouwang/plans"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/sms"
	"github.com/shouwang/shouwang/storage"
)

// Deps are the parts the API stands on.
type Deps struct {
	DB         storage.DB
	Bus        Bus
	Tax        *events.Taxonomy
	Registry   *responders.Registry
	Dispatcher *responders.Dispatcher
	Submitter  *incidents.Submitter
	Plans      *plans.Store
	Runner     *plans.Runner
	Drills     *plans.Drills
	Training   *responders.Training
	Tokens     *Tokens
	// Accounts signs people in from a browser (users, sessions, texted
	// sign-in links for residents).
	Accounts *accounts.Accounts
	// DevSink is set when texts are recorded instead of sent.
	DevSink *sms.DevSink
	// TwilioAuthToken checks webhook signatures; empty refuses webhooks.
	TwilioAuthToken string
	// PublicURL is the base URL Twilio calls, used to check signatures
	// behind a proxy. Empty means the URL the request arrived on.
	PublicURL string
	// CAPSender names us in CAP alerts (a domain); empty: PublicURL's host.
	CAPSender string
	Log       *slog.Logger
	Now       func() time.Time
	// Metrics is served at /metrics and counts alarm presses; nil serves
	// no /metrics.
	Metrics *metrics.Set
	// Live follows incident events for GET /v1/stream (the bus's plain
	// NATS connection); nil: the stream answers 503.
	Live Subscriber
	// Limits are the per-address and per-token request limits (see
	// ratelimit.go); the zero value limits nothing.
	Limits RateLimits
	// Closing ends the open live streams when it is done. The service
	// cancels it before shutting HTTP down, which would otherwise wait
	// for streams that never end. Nil: streams end only with their client.
	Closing context.Context
}

// Bus is what the API needs from the event bus.
type Bus interface {
	Publish(ctx context.Context, m events.Message) error
	Ready(ctx context.Context) error
	DeadLetters(ctx context.Context, limit int) ([]events.DeadLetter, error)
}

type server struct {
	Deps
	tokens *Tokens
	// signIns counts failed password sign-ins per username and address.
	signIns *accounts.Throttle
}

// Limits on request bodies. Alarms are small; the general limit leaves
// room for registry documents.
const (
	bodyLimit  = 256 << 10
	alarmLimit = 16 << 10
)

// New builds the fiber app.
func New(d Deps) *fiber.App {
	s := &server{Deps: d, tokens: d.Tokens, signIns: accounts.NewThrottle(signInFailures, signInPeriod)}
	app := fiber.New(fiber.Config{
		// fiber reuses request buffers; strings kept past a handler must be copies.
		Immutable:             true,
		BodyLimit:             importLimit, // limitBody keeps bodyLimit everywhere else
		ErrorHandler:          errorHandler(d.Log),
		DisableStartupMessage: true,
		ReadTimeout:           15 * time.Second,
		WriteTimeout:          15 * time.Second,
		IdleTimeout:           60 * time.Second,
	})
	app.Use(limitBody)
	if d.Limits.on() {
		app.Use(newLimiter(d.Limits, time.Now).middleware)
	}
	app.Get("/healthz", s.healthz)
	app.Get("/readyz", s.readyz)
	s.routeMetrics(app)
	// Before the /v1 group: the document needs no token (see openapi.go).
	app.Get("/v1/openapi.yaml", openAPI)

	// Twilio authenticates itself by signature, not by token.
	app.Post("/v1/webhooks/twilio/sms", s.twilioSMS)
	app.Post("/v1/webhooks/twilio/status", s.twilioStatus)
	app.Post("/v1/webhooks/twilio/voice", s.twilioVoice)

	// Signing in. Before the /v1 group: a stale cookie must not stop
	// anyone signing in again for want of its CSRF value (see session.go).
	app.Post("/v1/login", s.login)
	app.Post("/v1/login/sms", s.loginBySMS)

	// One-tap links from texts: the token is the key, no sign-in.
	app.Get("/o/:token", s.linkGet)
	app.Post("/o/:token", s.linkPost)
	app.Get("/console/readiness", tokenPage(readinessPage))
	// The resident page, the dispatcher console and the duties page.
	routeWeb(app)
	app.Get("/console/drills/:id", tokenPage(drillPage))

	v1 := app.Group("/v1", s.authenticate)
	v1.Get("/taxonomy", s.taxonomy)
	v1.Post("/tokens", s.createToken)
	v1.Post("/logout", s.logout)
	v1.Get("/session", s.getSession)
	v1.Post("/users", s.createUser)
	v1.Post("/alarms", s.postAlarm)
	v1.Get("/alarms/:id", s.getAlarm)
	v1.Get("/incidents", s.listIncidents)
	v1.Get("/incidents/:id", s.getIncident)
	v1.Post("/incidents/:id/resolve", s.resolveIncident)
	// The console's actions and the resident's "I am safe" (actions.go).
	v1.Post("/incidents/:id/redispatch", s.redispatch)
	v1.Post("/incidents/:id/assign", s.assign)
	v1.Post("/incidents/:id/false-alarm", s.falseAlarm)
	v1.Post("/incidents/:id/mark-drill", s.markDrill)
	v1.Post("/incidents/:id/safe", s.residentSafe)
	// Server-sent events for live boards (stream.go).
	v1.Get("/stream", s.stream)
	// CAP for alerting platforms: public types need no token (see cap.go).
	v1.Get("/incidents/:id/cap", s.incidentCAP)
	v1.Get("/cap/feed", s.capFeed)

	v1.Post("/communities", s.createCommunity)
	v1.Get("/communities", s.listCommunities)
	v1.Get("/communities/:id", s.getCommunity)
	v1.Patch("/communities/:id", s.patchCommunity)
	v1.Post("/communities/:id/organisations", s.createOrganisation)
	v1.Get("/communities/:id/organisations", s.listOrganisations)
	v1.Get("/communities/:id/organisations/:org", s.getOrganisation)
	v1.Patch("/communities/:id/organisations/:org", s.patchOrganisation)
	v1.Post("/communities/:id/responders", s.createResponder)
	v1.Get("/communities/:id/responders", s.listResponders)
	v1.Get("/communities/:id/responders/:rid", s.getResponder)
	v1.Patch("/communities/:id/responders/:rid", s.patchResponder)
	v1.Post("/communities/:id/responders\\:import", s.importResponders) // the colon is literal
	v1.Post("/communities/:id/grids", s.saveGrid)
	v1.Get("/communities/:id/grids", s.listGrids)
	v1.Delete("/communities/:id/grids/:grid", s.deleteGrid)
	v1.Get("/communities/:id/readiness", s.readiness)
	v1.Post("/communities/:id/drills", s.createDrillSchedule)
	v1.Get("/communities/:id/drills", s.listDrills)
	v1.Post("/communities/:id/drills/run", s.runDrill)
	v1.Delete("/communities/:id/drills/:schedule", s.deleteDrillSchedule)
	v1.Get("/drills/:id", s.getDrill)
	v1.Get("/drills/:id/report", s.drillReport)
	v1.Put("/communities/:id/teams/:team/budgets/:year", s.putBudget)
	v1.Get("/communities/:id/teams/:team/budgets/:year", s.getBudget)
	v1.Post("/communities/:id/teams/:team/training", s.postTraining)
	v1.Delete("/communities/:id/teams/:team/training/:entry", s.deleteTraining)
	v1.Get("/communities/:id/budgets", s.listBudgets)

	v1.Post("/communities/:id/residents", s.createResident)
	v1.Get("/communities/:id/residents", s.listResidents)
	v1.Get("/communities/:id/residents/:rid", s.getResident)
	v1.Patch("/communities/:id/residents/:rid", s.patchResident)

	v1.Post("/communities/:id/vulnerable-residents", s.createVulnerable)
	v1.Get("/communities/:id/vulnerable-residents", s.listVulnerable)
	v1.Get("/communities/:id/vulnerable-residents/:rid", s.getVulnerable)

	v1.Post("/plans", s.postPlan)
	v1.Get("/plans", s.listPlans)
	v1.Get("/plans/:id", s.getPlan)
	v1.Get("/duties", s.listDuties)
	v1.Post("/duties/:id/ack", s.ackDuty)
	v1.Post("/duties/:id/done", s.doneDuty)

	v1.Get("/dev/sms", s.devSMS)
	v1.Get("/dev/calls", s.devCalls)
	v1.Post("/dev/sms/inbound", s.devInbound)
	v1.Get("/admin/deadletters", s.deadLetters)
	v1.Get("/audit", s.listAudit)
	return app
}

func (s *server) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

// readyz says whether this replica can take alarms: the database and the
// bus both answer.
func (s *server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	checks := fiber.Map{"database": "ok", "nats": "ok"}
	ok := true
	if err := s.DB.Ping(ctx); err != nil {
		checks["database"], ok = err.Error(), false
	}
	if err := s.Bus.Ready(ctx); err != nil {
		checks["nats"], ok = err.Error(), false
	}
	if !ok {
		c.Set(fiber.HeaderRetryAfter, "5")
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable", "checks": checks})
	}
	return c.JSON(fiber.Map{"status": "ok", "checks": checks})
}

func (s *server) taxonomy(c *fiber.Ctx) error {
	if _, err := need(c, RoleResident, RoleResponder, RoleDispatcher, RoleOrg, RoleAdmin); err != nil {
		return err
	}
	type typeView struct {
		Name          string       `json:"name"`
		Label         events.Label `json:"label"`
		Category      string       `json:"category"`
		CategoryLabel events.Label `json:"category_label"`
		Severity      string       `json:"severity"`
		Skills        []string     `json:"skills"`
		RadiusM       float64      `json:"correlation_radius_m"`
		Window        string       `json:"correlation_window"`
	}
	out := []typeView{}
	for _, n := range s.Tax.TypeNames() {
		it, _ := s.Tax.Type(n)
		out = append(out, typeView{Name: n, Label: it.Label, Category: it.Category, CategoryLabel: s.Tax.Categories[it.Category],
			Severity: it.Severity.Label(), Skills: it.Skills, RadiusM: it.Correlation.RadiusM, Window: it.Correlation.Window.String()})
	}
	return c.JSON(fiber.Map{"types": out})
}

// decodeJSON reads a JSON body into v. strict refuses unknown fields, so a
// typo in an admin's document is an error, not silently ignored.
func decodeJSON(c *fiber.Ctx, v any, strict bool) error {
	if ct := c.Get(fiber.HeaderContentType); !strings.HasPrefix(strings.ToLower(ct), fiber.MIMEApplicationJSON) {
		return fieldError(fiber.StatusUnsupportedMediaType, "content-type", "send application/json")
	}
	dec := json.NewDecoder(bytes.NewReader(c.Body()))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return fieldError(fiber.StatusBadRequest, typeErr.Field, "wrong type: want "+typeErr.Type.String())
		}
		return fieldError(fiber.StatusBadRequest, "body", "not valid JSON: "+err.Error())
	}
	// Only white space may follow. dec.More would let a stray "}" or "]"
	// through (found by FuzzPostAlarm).
	if _, err := dec.Token(); err != io.EOF {
		return fieldError(fiber.StatusBadRequest, "body", "one JSON object expected")
	}
	return nil
}
