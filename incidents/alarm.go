// Package incidents turns residents' presses (alarms) into incidents:
// validation, correlation with open incidents, the incident lifecycle and
// its timeline.
package incidents

import (
	"crypto/sha256"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
)

// Limits on what a resident's phone may send.
const (
	MaxKeyLen     = 128
	MaxAddressLen = 200  // runes
	MaxNoteLen    = 1000 // runes
)

// Alarm is one press of the button.
type Alarm struct {
	ID          string    `json:"id"`
	Community   string    `json:"community"`
	Resident    string    `json:"resident"`
	Key         string    `json:"key"`
	Type        string    `json:"type"`
	Location    geo.Point `json:"location"`
	HasLocation bool      `json:"has_location"`
	Address     string    `json:"address,omitempty"`
	Note        string    `json:"note,omitempty"`
	Drill       bool      `json:"drill,omitempty"`
	// Severity overrides the type's default; drills set it, presses don't.
	Severity   events.Severity `json:"severity,omitempty"`
	ReceivedAt time.Time       `json:"received_at"`
}

// AlarmRequest is the body of POST /v1/alarms.
type AlarmRequest struct {
	Key      string `json:"key"`
	Type     string `json:"type"`
	Location *struct {
		Lat *float64 `json:"lat"`
		Lng *float64 `json:"lng"`
	} `json:"location"`
	Address string `json:"address"`
	Note    string `json:"note"`
}

// AlarmID is derived from who pressed and their idempotency key, so a retry
// with the same key names the same alarm however late it comes.
func AlarmID(community, resident, key string) string {
	sum := sha256.Sum256([]byte(community + "\x00" + resident + "\x00" + key))
	return events.StableID("al", sum[:])
}

// NewAlarm checks a request from a resident of community and builds the
// alarm. A missing type means "other": a frightened person may not choose.
func NewAlarm(tax *events.Taxonomy, community, resident string, req AlarmRequest, now time.Time) (Alarm, error) {
	verr := &errdefs.ValidationError{}
	key := strings.TrimSpace(req.Key)
	switch {
	case key == "":
		verr.Add("key", "required: a client idempotency key, reused when retrying the same press")
	case len(key) > MaxKeyLen:
		verr.Add("key", "longer than 128 bytes")
	case !utf8.ValidString(key) || HasControl(key, false):
		verr.Add("key", "must be text without control characters")
	}
	typ := strings.TrimSpace(req.Type)
	if typ == "" {
		typ = "other"
	}
	if _, ok := tax.Type(typ); !ok {
		verr.Add("type", "unknown incident type "+quote(typ)+"; one of "+strings.Join(tax.TypeNames(), ", "))
	}
	a := Alarm{Community: community, Resident: resident, Key: key, Type: typ, ReceivedAt: now.UTC()}
	if req.Location != nil {
		switch {
		case req.Location.Lat == nil:
			verr.Add("location.lat", "required with location")
		case req.Location.Lng == nil:
			verr.Add("location.lng", "required with location")
		default:
			p := geo.Point{Lat: *req.Location.Lat, Lng: *req.Location.Lng}
			if err := p.Validate(); err != nil {
				verr.Add("location", err.Error())
			}
			a.Location, a.HasLocation = p, true
		}
	}
	a.Address = strings.TrimSpace(req.Address)
	a.Note = strings.TrimSpace(req.Note)
	if !utf8.ValidString(a.Address) || utf8.RuneCountInString(a.Address) > MaxAddressLen || HasControl(a.Address, false) {
		verr.Add("address", "must be text of at most 200 characters without control characters")
	}
	if !utf8.ValidString(a.Note) || utf8.RuneCountInString(a.Note) > MaxNoteLen || HasControl(a.Note, true) {
		verr.Add("note", "must be text of at most 1000 characters without control characters")
	}
	if err := verr.OrNil(); err != nil {
		return Alarm{}, err
	}
	a.ID = AlarmID(community, resident, key)
	return a, nil
}

// HasControl reports whether s holds control characters (NUL among them,
// which PostgreSQL cannot store). Multi-line text may keep newlines and tabs.
// Anything accepted must be storable: a 202 for an alarm the database then
// refuses would be an alarm lost.
func HasControl(s string, multiline bool) bool {
	for _, r := range s {
		if multiline && (r == '\n' || r == '\r' || r == '\t') {
			continue
		}
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return "\"" + s + "\""
}
