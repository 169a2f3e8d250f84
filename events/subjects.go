package events

import (
	"fmt"
	"strings"
)

// Streams and their subjects. Every subject that carries an incident
// carries its community and type, so handlers can subscribe to what they serve.
const (
	StreamAlarms     = "ALARMS"
	StreamIncidents  = "INCIDENTS"
	StreamSMS        = "SMS"
	StreamTimers     = "TIMERS"
	StreamDeadLetter = "DEADLETTER"
)

// Incident event names: the last token of incidents.<community>.<type>.<event>.
const (
	IncidentOpened        = "opened"
	IncidentReportAdded   = "report_added"
	IncidentDispatched    = "dispatched"
	IncidentOfferAccepted = "offer_accepted"
	IncidentOfferDeclined = "offer_declined"
	IncidentEscalated     = "escalated"
	IncidentResolved      = "resolved"
	IncidentCancelled     = "cancelled"
	IncidentArrived       = "arrived"
	// Console actions of a dispatcher.
	IncidentRedispatched = "redispatched" // the next wave started by hand
	IncidentAssigned     = "assigned"     // a responder sent by hand
	IncidentMarkedDrill  = "marked_drill" // found to be a drill; left out of statistics
)

// AlarmSubject is where the API publishes a resident's press.
func AlarmSubject(community, typ string) string {
	return "alarms." + token(community) + "." + token(typ)
}

// IncidentSubject is incidents.<community>.<type>.<event>.
func IncidentSubject(community, typ, event string) string {
	return "incidents." + token(community) + "." + token(typ) + "." + token(event)
}

// IncidentsOf matches every incident event of one community, for a live
// view; an empty community matches every community's.
func IncidentsOf(community string) string {
	if community == "" {
		return incidentsWildcard
	}
	return "incidents." + token(community) + ".>"
}

// IncidentEventFilter matches one event of every community and type, for
// a consumer that serves all of them.
func IncidentEventFilter(event string) string {
	return "incidents.*.*." + token(event)
}

// SMSSendSubject carries "send outbox row <id>" to the SMS sender.
func SMSSendSubject(community string) string {
	if community == "" {
		community = "_"
	}
	return "sms.send." + token(community)
}

// SMSBulkSubject carries "send outbox row <id>" for texts that can wait
// (reminders), to a sender that never holds up live texts.
func SMSBulkSubject(community string) string {
	if community == "" {
		community = "_"
	}
	return "sms.bulk." + token(community)
}

// RegistryChangedSubject is a core NATS subject (no stream: nothing is
// stored) where a replica says it changed a community's responders, so the
// others refresh their in-memory match index. A lost message only delays
// the refresh until the next reconciliation.
func RegistryChangedSubject(community string) string {
	return "registry.changed." + token(community)
}

// RegistryChangedWildcard matches RegistryChangedSubject of every community.
const RegistryChangedWildcard = "registry.changed.*"

// Subjects of the SMS stream that are not per community.
const (
	SMSInboundSubject = "sms.inbound"  // a reply from a phone
	SMSFailedSubject  = "sms.failed"   // a text that will never arrive
	SMSStatusSubject  = "sms.status"   // a delivery receipt
	TimerSubjectWave  = "timers.wave"  // a dispatch wave ran out of time
	TimerSubjectVoice = "timers.voice" // an offer unanswered long enough to call
	TimerSubjectDuty  = "timers.duty"  // a plan duty's deadline
	TimerSubjectDrill = "timers.drill" // a drill's time limit
	deadLetterPrefix  = "deadletter."  // + durable name
	alarmsWildcard    = "alarms.>"     // the whole alarms stream
	incidentsWildcard = "incidents.>"  // the whole incidents stream
	smsWildcard       = "sms.>"        // the whole SMS stream
	timersWildcard    = "timers.>"     // the whole timers stream
	deadWildcard      = "deadletter.>" // the whole dead-letter stream
)

// token makes s safe as one subject token: NATS subjects split on '.', and
// '*', '>' and whitespace are reserved.
func token(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '\t', '\n', '\r':
			return '_'
		}
		return r
	}, s)
}

// ParseIncidentSubject splits incidents.<community>.<type>.<event>.
func ParseIncidentSubject(subject string) (community, typ, event string, err error) {
	parts := strings.Split(subject, ".")
	if len(parts) != 4 || parts[0] != "incidents" {
		return "", "", "", fmt.Errorf("not an incident subject: %q", subject)
	}
	return parts[1], parts[2], parts[3], nil
}
