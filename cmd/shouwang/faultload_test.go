package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/sms/twiliofake"
	"github.com/shouwang/shouwang/storage"
)

// alarmLoad is a phone app under load: every alarm has its own key and is
// posted again with the same key on any error, 5xx or timeout until a 2xx,
// as the resident's phone does.
type alarmLoad struct {
	token string
	http  *http.Client
	// giveUp bounds how long one alarm is retried.
	giveUp time.Duration

	mu       sync.Mutex
	sent     int
	accepted map[string]string    // key → alarm id
	lastTry  map[string]time.Time // key → when its accepted attempt began
	retries  int                  // attempts that did not end in a 2xx
	failures map[string]int       // what those attempts got, for the report
	slowest  time.Duration        // first try to 2xx, worst alarm
}

func newAlarmLoad(token string) *alarmLoad {
	return &alarmLoad{token: token, http: &http.Client{Timeout: 5 * time.Second}, giveUp: 60 * time.Second,
		accepted: map[string]string{}, lastTry: map[string]time.Time{}, failures: map[string]int{}}
}

// run posts n alarms, perSecond of them a second, each to target(i, try)
// (a base URL), at spot(i). at[i] runs (in its own goroutine) just before
// alarm i is sent: the fault. run returns when every alarm is accepted or
// given up.
func (l *alarmLoad) run(n int, perSecond float64, keyPrefix string, target func(i, try int) string,
	spot func(i int) geo.Point, at map[int]func()) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / perSecond))
	defer tick.Stop()
	var wg sync.WaitGroup
	for i := range n {
		if f := at[i]; f != nil {
			wg.Add(1)
			go func() { defer wg.Done(); f() }()
		}
		key := fmt.Sprintf("%s-%d", keyPrefix, i)
		wg.Add(1)
		go func() { defer wg.Done(); l.pressUntilAccepted(i, key, target, spot(i)) }()
		<-tick.C
	}
	wg.Wait()
}

func (l *alarmLoad) pressUntilAccepted(i int, key string, target func(i, try int) string, where geo.Point) {
	l.mu.Lock()
	l.sent++
	l.mu.Unlock()
	body, _ := json.Marshal(map[string]any{"key": key, "type": "medical", "location": where, "address": "3栋2单元501"})
	began := time.Now()
	wait := 100 * time.Millisecond
	for try := 0; time.Since(began) < l.giveUp; try++ {
		at := time.Now()
		id, failure := l.post(target(i, try), body)
		l.mu.Lock()
		if failure == "" {
			l.accepted[key] = id
			l.lastTry[key] = at
			l.slowest = max(l.slowest, time.Since(began))
			l.mu.Unlock()
			return
		}
		l.retries++
		l.failures[failure]++
		l.mu.Unlock()
		time.Sleep(wait)
		wait = min(2*wait, time.Second)
	}
}

// post makes one attempt; failure is "" on a 2xx, else what went wrong.
func (l *alarmLoad) post(base string, body []byte) (alarmID, failure string) {
	req, err := http.NewRequest("POST", base+"/v1/alarms", bytes.NewReader(body))
	if err != nil {
		return "", "request: " + err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+l.token)
	resp, err := l.http.Do(req)
	if err != nil {
		return "", "no answer"
	}
	defer resp.Body.Close()
	var out struct {
		AlarmID string `json:"alarm_id"`
	}
	if resp.StatusCode/100 != 2 {
		return "", fmt.Sprint(resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AlarmID == "" {
		return "", "2xx without an alarm id"
	}
	return out.AlarmID, ""
}

// acceptedIDs is a copy of the alarm ids answered 2xx.
func (l *alarmLoad) acceptedIDs() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]string, len(l.accepted))
	for k, v := range l.accepted {
		out[k] = v
	}
	return out
}

// acceptedBetween counts alarms whose accepted attempt began within
// [from, to].
func (l *alarmLoad) acceptedBetween(from, to time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, at := range l.lastTry {
		if !at.Before(from) && !at.After(to) {
			n++
		}
	}
	return n
}

func (l *alarmLoad) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var fs []string
	for f, n := range l.failures {
		fs = append(fs, fmt.Sprintf("%s×%d", f, n))
	}
	sort.Strings(fs)
	return fmt.Sprintf("%d sent, %d accepted, %d retried attempts (%s), slowest accept %s",
		l.sent, len(l.accepted), l.retries, strings.Join(fs, " "), l.slowest.Round(time.Millisecond))
}

// medicsAlong registers k medics 3 km apart (north of the centre) and
// returns where alarm i of n is pressed: beside medic i%k, 50 m further
// east for each round, so no two alarms are within medical's 30 m
// correlation radius and each opens its own incident, offered to its
// medic within the first wave's 500 m.
func medicsAlong(h *harness, community string, k int) func(i int) geo.Point {
	for j := range k {
		h.responder(community, person{fmt.Sprintf("m%d", j), fmt.Sprintf("+86138%08d", 10000+j), []string{"medic"}, float64(j) * 3000, true, true})
	}
	return func(i int) geo.Point {
		return geo.Offset(centre, float64(i%k)*3000, float64(i/k)*50)
	}
}

// waitAllInIncidents waits until every alarm in the database belongs to an
// incident, then asks the API about each accepted alarm: lost are those it
// does not place in an incident.
func waitAllInIncidents(t *testing.T, h *harness, db storage.DB, resident string, accepted map[string]string, within time.Duration) (lost int) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(within)
	var waiting, stored int
	for time.Now().Before(deadline) {
		err1 := db.QueryRow(ctx, `SELECT COUNT(*) FROM alarms WHERE incident_id = ''`).Scan(&waiting)
		err2 := db.QueryRow(ctx, `SELECT COUNT(*) FROM alarms`).Scan(&stored)
		if err1 == nil && err2 == nil && waiting == 0 && stored >= len(accepted) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if waiting > 0 || stored < len(accepted) {
		t.Errorf("after %s: %d alarms stored of %d accepted, %d of them in no incident", within, stored, len(accepted), waiting)
	}
	for key, id := range accepted {
		status, out := h.call("GET", "/v1/alarms/"+id, resident, nil)
		if status != 200 || out["incident_id"] == nil || out["incident_id"] == "" {
			t.Errorf("alarm %s (key %s) answered 2xx but is in no incident: %d %v", id, key, status, out)
			lost++
		}
	}
	return lost
}

var offerRef = regexp.MustCompile(`\[([0-9A-Z]{4})\]`)

// offerTally compares the offer texts Twilio got with the offers the
// database holds: per phone and incident, one text. It waits until no
// offer text is still queued and every incident has its offers.
type offerTally struct {
	Offers     int // (phone, incident) offers queued
	Texts      int // offer texts Twilio got (a bundle is one text)
	Duplicates int // (phone, incident) offers texted more than once
	Missing    int // offers never texted
	Unoffered  int // incidents with no offer at all
}

func tallyOffers(t *testing.T, db storage.DB, fake *twiliofake.Server, within time.Duration) offerTally {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(within)
	var queued, unoffered int
	for time.Now().Before(deadline) {
		err1 := db.QueryRow(ctx, `SELECT COUNT(*) FROM sms_outbox WHERE purpose = 'offer' AND status IN ('pending', 'sending')`).Scan(&queued)
		err2 := db.QueryRow(ctx, `SELECT COUNT(*) FROM incidents WHERE id NOT IN
			(SELECT incident_id FROM sms_outbox WHERE purpose = 'offer')`).Scan(&unoffered)
		if err1 == nil && err2 == nil && queued == 0 && unoffered == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if queued > 0 || unoffered > 0 {
		t.Errorf("after %s: %d offer texts still queued, %d incidents offered to nobody", within, queued, unoffered)
		rows, err := db.Query(ctx, `SELECT id, status, attempts, last_error FROM sms_outbox WHERE purpose = 'offer' AND status IN ('pending', 'sending')`)
		if err == nil {
			for rows.Next() {
				var id, status, lastErr string
				var attempts int
				_ = rows.Scan(&id, &status, &attempts, &lastErr)
				t.Logf("queued: %s %s after %d attempts: %s", id, status, attempts, lastErr)
			}
			rows.Close()
		}
	}
	tally := offerTally{Unoffered: unoffered}
	// What the database says was offered: per phone, how many incidents
	// have each reference (a reference is 4 characters, so two incidents
	// may share one).
	want := map[string]int{}
	rows, err := db.Query(ctx, `SELECT DISTINCT to_phone, incident_id FROM sms_outbox WHERE purpose = 'offer' AND channel = 'sms'`)
	if err != nil {
		t.Fatalf("read offers: %v", err)
	}
	for rows.Next() {
		var phone, incident string
		if err := rows.Scan(&phone, &incident); err != nil {
			t.Fatal(err)
		}
		want[phone+" "+responders.Ref(incident)]++
		tally.Offers++
	}
	rows.Close()
	got := map[string]int{}
	for _, m := range fake.Messages() {
		if !strings.Contains(m.Body, "接受或拒绝") {
			continue // not an offer
		}
		tally.Texts++
		for _, ref := range offerRef.FindAllStringSubmatch(m.Body, -1) {
			got[m.To+" "+ref[1]]++
		}
	}
	for k, n := range got {
		if n > want[k] {
			t.Errorf("offer %s texted %d times, %d incident(s) offered", k, n, want[k])
			tally.Duplicates += n - want[k]
		}
	}
	for k, n := range want {
		if got[k] < n {
			t.Errorf("offer %s never texted (%d of %d)", k, got[k], n)
			tally.Missing += n - got[k]
		}
	}
	return tally
}

// counter sums a counter of a replica's own metrics whose labels include
// match.
func counter(t *testing.T, reg *prometheus.Registry, name string, match map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			for k, v := range match {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == k && l.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}
