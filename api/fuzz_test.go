package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/shouwang/shouwang/api"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/incidents"
	"github.com/shouwang/shouwang/storage"
	"github.com/shouwang/shouwang/storage/storagetest"
)

// FuzzPostAlarm throws arbitrary bodies at POST /v1/alarms, as a resident
// would from a buggy or hostile phone. Whatever arrives, the answer is a
// JSON 202 with an alarm id or a JSON 4xx error: never a 5xx, never a panic,
// and a 202 only for a press that is valid by the documented rules.
func FuzzPostAlarm(f *testing.F) {
	ctx := context.Background()
	db, bus, tax, log := fuzzBackends(f)
	tokens := &api.Tokens{DB: db, Now: time.Now}
	app := api.New(api.Deps{
		DB: db, Bus: bus, Tax: tax, Tokens: tokens, Log: log, Now: time.Now,
		Submitter: &incidents.Submitter{Bus: bus, Tax: tax},
	})
	token, err := tokens.Issue(ctx, api.Principal{Role: api.RoleResident, Community: "c1", Subject: "resident-501"}, "fuzz")
	if err != nil {
		f.Fatalf("issue token: %v", err)
	}

	// The happy path works, so the fuzzer explores past it rather than
	// against a setup that refuses everything.
	valid := `{"key":"press-1","type":"medical","location":{"lat":31.2304,"lng":121.4737},"address":"3栋2单元501","note":"老人摔倒"}`
	req := httptest.NewRequest("POST", "/v1/alarms", strings.NewReader(valid))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := app.Test(req, 10_000)
	if err != nil {
		f.Fatalf("post a valid alarm: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		f.Fatalf("a valid alarm was not accepted: status %d", resp.StatusCode)
	}

	for _, seed := range []string{
		valid,
		`{"key":"press-2"}`,
		`{"key":"k","type":"fire","location":{"lat":31.2,"lng":121.4},"address":"'); DROP TABLE alarms; --"}`,
		`{"key":"k","location":{"lat":1e400,"lng":-1e400}}`,
		`{"key":"k","location":{"lat":123456789012345678901234567890,"lng":0.0000000000000000000001}}`,
		`{"key":"k","location":{"lat":-0,"lng":-0}}`,
		`{"key":"k","location":{"lat":"31","lng":121}}`,
		`{"key":"k","location":null,"type":null}`,
		`{"key":"🔥\u0000\ud800","address":"` + "\xff\xfe" + `","note":"` + strings.Repeat("火", 1001) + `"}`,
		`{"key":"` + strings.Repeat("k", 129) + `"}`,
		`{"key":"k","key":"k2","type":"FIRE "}`,
		`{"key":"k"} trailing`,
		`[1,2,3]`,
		`"just a string"`,
		`null`,
		`{`,
		``,
		strings.Repeat(`{"a":`, 10000),
		`{"key":"big","note":"` + strings.Repeat("x", 17<<10) + `"}`,
	} {
		f.Add([]byte(seed))
	}

	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/v1/alarms", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, raw := answer(t, app, req)
		if resp.StatusCode >= 500 {
			t.Fatalf("status %d for body %q: %s", resp.StatusCode, body, raw)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("status %d answered with Content-Type %q: %s", resp.StatusCode, ct, raw)
		}
		var out struct {
			AlarmID string `json:"alarm_id"`
			Status  string `json:"status"`
			Error   *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("status %d: answer is not JSON (%v): %q", resp.StatusCode, err, raw)
		}
		switch resp.StatusCode {
		case 202:
			if out.AlarmID == "" || out.Status != "received" || out.Error != nil {
				t.Fatalf("202 without an alarm id: %s", raw)
			}
			key, why := validAlarm(body)
			if why != "" {
				t.Fatalf("202 for an alarm that is not valid (%s): %q", why, body)
			}
			if want := incidents.AlarmID("c1", "resident-501", key); out.AlarmID != want {
				t.Fatalf("202 names alarm %s, want %s for key %q", out.AlarmID, want, key)
			}
		default:
			if resp.StatusCode < 400 {
				t.Fatalf("unexpected status %d: %s", resp.StatusCode, raw)
			}
			if out.Error == nil || out.Error.Code == "" || out.Error.Message == "" || out.AlarmID != "" {
				t.Fatalf("status %d without an error object: %s", resp.StatusCode, raw)
			}
		}
	})
}

// validAlarm is the rule for a press, written out again from the API's
// documentation rather than taken from the code under test: one JSON object
// of at most 16 KiB; a key of 1–128 bytes of text; a type of the taxonomy,
// or none; a location, if any, with both coordinates in range and not 0,0;
// an address of at most 200 and a note of at most 1000 characters. It
// returns the trimmed key, or why the press is not valid.
func validAlarm(body []byte) (key, why string) {
	if len(body) > 16<<10 {
		return "", "larger than 16 KiB"
	}
	var req incidents.AlarmRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return "", "not one JSON object: " + err.Error()
	}
	if !bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{")) {
		return "", "not an object"
	}
	key = strings.TrimSpace(req.Key)
	if key == "" || len(key) > 128 || !utf8.ValidString(key) || hasControl(key, false) {
		return "", "bad key"
	}
	if typ := strings.TrimSpace(req.Type); typ != "" {
		if _, ok := events.DefaultTaxonomy().Type(typ); !ok {
			return "", "unknown type"
		}
	}
	if l := req.Location; l != nil {
		if l.Lat == nil || l.Lng == nil {
			return "", "location without lat or lng"
		}
		lat, lng := *l.Lat, *l.Lng
		if !(lat >= -90 && lat <= 90) || !(lng >= -180 && lng <= 180) || (lat == 0 && lng == 0) {
			return "", "location out of range"
		}
	}
	address, note := strings.TrimSpace(req.Address), strings.TrimSpace(req.Note)
	if utf8.RuneCountInString(address) > 200 || hasControl(address, false) {
		return "", "bad address"
	}
	if utf8.RuneCountInString(note) > 1000 || hasControl(note, true) {
		return "", "bad note"
	}
	return key, ""
}

// hasControl reports control characters, which PostgreSQL may refuse (NUL)
// and which no text message shows; a note may keep line breaks and tabs.
func hasControl(s string, multiline bool) bool {
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

// fuzzBackends gives a fuzz target the real parts behind the API: a SQLite
// store, the embedded bus, the shipped taxonomy and a quiet logger.
func fuzzBackends(f *testing.F) (storage.DB, *events.Bus, *events.Taxonomy, *slog.Logger) {
	db := storagetest.SQLite(f)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bus, err := events.Connect(context.Background(), events.BusConfig{StoreDir: f.TempDir(), Logger: log})
	if err != nil {
		f.Fatalf("connect bus: %v", err)
	}
	f.Cleanup(bus.Close)
	return db, bus, events.DefaultTaxonomy(), log
}
