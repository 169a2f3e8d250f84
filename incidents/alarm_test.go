package incidents

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
)

func decode(t *testing.T, body string) AlarmRequest {
	t.Helper()
	var r AlarmRequest
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return r
}

func TestNewAlarm(t *testing.T) {
	tax := events.DefaultTaxonomy()
	now := time.Now()
	for _, tc := range []struct {
		body      string
		wantField string // "" means valid
	}{
		{`{"key":"k1","type":"fire","location":{"lat":31.23,"lng":121.47},"address":"3栋2单元501"}`, ""},
		{`{"key":"k1"}`, ""},
		{`{"type":"fire"}`, "key"},
		{`{"key":"k","type":"volcano"}`, "type"},
		{`{"key":"k","location":{"lat":95,"lng":121}}`, "location"},
		{`{"key":"k","location":{"lat":0,"lng":0}}`, "location"},
		{`{"key":"k","location":{"lng":121}}`, "location.lat"},
		{`{"key":"k","note":"` + strings.Repeat("火", 1001) + `"}`, "note"},
		{`{"key":"` + strings.Repeat("k", 129) + `"}`, "key"},
	} {
		a, err := NewAlarm(tax, "c1", "r1", decode(t, tc.body), now)
		if tc.wantField == "" {
			if err != nil {
				t.Errorf("%s: unexpected error %v", tc.body, err)
			}
			continue
		}
		var verr *errdefs.ValidationError
		if !errors.As(err, &verr) || verr.Fields[tc.wantField] == "" {
			t.Errorf("%.60s: want a problem with %q, got %v (alarm %+v)", tc.body, tc.wantField, err, a)
		}
	}
}

func TestAlarmDefaultsAndStableID(t *testing.T) {
	tax := events.DefaultTaxonomy()
	a, err := NewAlarm(tax, "c1", "r1", decode(t, `{"key":"press-1"}`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if a.Type != "other" || a.HasLocation {
		t.Fatalf("a bare press must be type other without location, got %+v", a)
	}
	b, _ := NewAlarm(tax, "c1", "r1", decode(t, `{"key":"press-1","type":"fire"}`), time.Now().Add(time.Hour))
	if a.ID != b.ID {
		t.Fatalf("same key, different alarm ids: %s %s", a.ID, b.ID)
	}
	c, _ := NewAlarm(tax, "c1", "r2", decode(t, `{"key":"press-1"}`), time.Now())
	if c.ID == a.ID {
		t.Fatal("two residents using the same key must get different alarms")
	}
}
