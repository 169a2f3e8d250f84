// Package metrics holds Shouwang's Prometheus metrics: what operators watch
// to know that alarms become incidents, offers go out fast, texts arrive and
// no consumer falls behind.
//
// Every service has its own registry (tests start several services in one
// process), so handles are passed explicitly through the structs that count,
// never taken from the global default registry. Labels are bounded: incident
// type, result or outcome, SMS channel and status, stream and durable. Phone
// numbers, incident ids and community ids are never labels.
package metrics

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Results of POST /v1/alarms, the result label of shouwang_alarms_received_total.
const (
	AlarmAccepted    = "accepted"    // 202: JetStream stored it
	AlarmInvalid     = "invalid"     // 400, 413, 415, 422: the request was wrong
	AlarmDenied      = "denied"      // 401, 403: no or wrong token
	AlarmUnavailable = "unavailable" // 503: the bus did not store it; the phone retries
	AlarmError       = "error"       // any other status
)

// Outcomes of the intake consumer, the outcome label of
// shouwang_alarms_processed_total.
const (
	AlarmOpened = "opened" // opened a new incident
	AlarmJoined = "joined" // joined an open incident as a report
)

// UnknownType labels an alarm refused before its type was read or checked.
const UnknownType = "unknown"

// Offer outcomes, the outcome label of shouwang_offers_total. They are the
// offer states of package responders plus "called".
var offerOutcomes = []string{"offered", "accepted", "declined", "expired", "stood_down", "failed", "called"}

// SMS statuses, the status label of shouwang_sms_total.
var smsStatuses = []string{"sent", "failed", "suppressed", "bundled", "delivered", "undelivered"}

// Set is one service's metrics on its own registry. A nil *Set records
// nothing, so handlers built without metrics (unit tests) need no checks.
type Set struct {
	// Registry holds every metric of the service, and the Go and process
	// collectors.
	Registry *prometheus.Registry

	alarmsReceived     *prometheus.CounterVec
	alarmsProcessed    *prometheus.CounterVec
	alarmToOffer       prometheus.Histogram
	offers             *prometheus.CounterVec
	sms                *prometheus.CounterVec
	smsProviderErrors  *prometheus.CounterVec
	deadLetters        *prometheus.CounterVec
	consumerPending    *prometheus.Desc
	consumerAckPending *prometheus.Desc
	deadLetterStored   *prometheus.Desc
}

// New builds the metrics on a fresh registry.
func New() *Set {
	s := &Set{Registry: prometheus.NewRegistry()}
	s.alarmsReceived = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shouwang_alarms_received_total",
		Help: "Alarm presses answered by POST /v1/alarms, by incident type and result (accepted, invalid, denied, unavailable, error).",
	}, []string{"type", "result"})
	s.alarmsProcessed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shouwang_alarms_processed_total",
		Help: "Alarms the intake consumer committed, by incident type and outcome (opened a new incident, joined an open one).",
	}, []string{"type", "outcome"})
	s.alarmToOffer = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "shouwang_alarm_to_offer_sms_seconds",
		Help: "From the first alarm of an incident being received to its first offer text accepted by the SMS provider; once per incident.",
		// Tens of milliseconds when all is well, up to minutes when the
		// carrier limits or a provider outage hold texts back.
		Buckets: []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
	})
	s.offers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shouwang_offers_total",
		Help: "Offer changes committed, by outcome: offered, accepted, declined, expired, stood_down, failed, called (an unanswered offer became a call).",
	}, []string{"outcome"})
	s.sms = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shouwang_sms_total",
		Help: "Texts and calls by channel (sms, voice) and status: sent (the provider took it), failed (refused for good), suppressed, bundled, delivered and undelivered (receipts).",
	}, []string{"channel", "status"})
	s.smsProviderErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shouwang_sms_provider_errors_total",
		Help: "Attempts the SMS provider could not take for now (outage, timeout); the text is retried.",
	}, []string{"channel"})
	s.deadLetters = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shouwang_dead_letters_total",
		Help: "Messages moved to deadletter.<durable> after failing for good, by durable consumer.",
	}, []string{"durable"})
	s.consumerPending = prometheus.NewDesc("shouwang_consumer_pending_messages",
		"Messages of a durable consumer's stream not yet delivered to it, read from JetStream at scrape time.",
		[]string{"stream", "durable"}, nil)
	s.consumerAckPending = prometheus.NewDesc("shouwang_consumer_ack_pending_messages",
		"Messages delivered to a durable consumer and not yet acknowledged (in progress, or timers waiting to be due), read at scrape time.",
		[]string{"stream", "durable"}, nil)
	s.deadLetterStored = prometheus.NewDesc("shouwang_dead_letter_messages",
		"Dead letters kept in the DEADLETTER stream (30 days), by durable consumer, read at scrape time.",
		[]string{"durable"}, nil)

	s.Registry.MustRegister(s.alarmsReceived, s.alarmsProcessed, s.alarmToOffer, s.offers, s.sms, s.smsProviderErrors,
		s.deadLetters, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Known series start at zero, so rate() and alerts see them from the
	// first scrape rather than from the first event.
	for _, o := range offerOutcomes {
		s.offers.WithLabelValues(o)
	}
	for _, st := range smsStatuses {
		s.sms.WithLabelValues("sms", st)
	}
	return s
}

// Handler serves the registry in the Prometheus text format. A metric that
// cannot be read (JetStream down) is logged and left out; the rest is served.
func (s *Set) Handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      s.Registry,
	})
}

// AlarmReceived counts one answer of POST /v1/alarms.
func (s *Set) AlarmReceived(typ, result string) {
	if s == nil {
		return
	}
	s.alarmsReceived.WithLabelValues(typ, result).Inc()
}

// AlarmResult maps an HTTP status of POST /v1/alarms to its result label.
func AlarmResult(status int) string {
	switch status {
	case http.StatusAccepted:
		return AlarmAccepted
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		return AlarmInvalid
	case http.StatusUnauthorized, http.StatusForbidden:
		return AlarmDenied
	case http.StatusServiceUnavailable:
		return AlarmUnavailable
	default:
		return AlarmError
	}
}

// AlarmProcessed counts an alarm the intake consumer committed.
func (s *Set) AlarmProcessed(typ, outcome string) {
	if s == nil {
		return
	}
	s.alarmsProcessed.WithLabelValues(typ, outcome).Inc()
}

// AlarmToOfferSMS observes the time from an incident's first alarm to its
// first offer text accepted by the provider.
func (s *Set) AlarmToOfferSMS(d time.Duration) {
	if s == nil {
		return
	}
	s.alarmToOffer.Observe(d.Seconds())
}

// Offers counts n offers that reached outcome in a committed transaction.
func (s *Set) Offers(outcome string, n int) {
	if s == nil || n <= 0 {
		return
	}
	s.offers.WithLabelValues(outcome).Add(float64(n))
}

// SMS counts n texts (or calls, channel "voice") that reached status.
func (s *Set) SMS(channel, status string, n int) {
	if s == nil || n <= 0 {
		return
	}
	s.sms.WithLabelValues(channel, status).Add(float64(n))
}

// SMSProviderError counts an attempt the provider could not take for now.
func (s *Set) SMSProviderError(channel string) {
	if s == nil {
		return
	}
	s.smsProviderErrors.WithLabelValues(channel).Inc()
}

// DeadLettered counts a message moved to the dead letters of durable.
func (s *Set) DeadLettered(durable string) {
	if s == nil {
		return
	}
	s.deadLetters.WithLabelValues(durable).Inc()
}
