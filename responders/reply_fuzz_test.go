package responders_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/sms"
	"github.com/shouwang/shouwang/storage"
	"github.com/shouwang/shouwang/storage/storagetest"
)

// anyText is a text from one of textSenders (an index past the end: from
// anyone, a number or not) to a number, with any words.
type anyText struct {
	from     uint8
	to, body string
	anyone   string
}

// textSenders are a resident, a responder, the emergency center's duty
// phone and a stranger, as replyDispatcher registers them.
var textSenders = []string{"+8613800000001", "+8613800000002", "+8613900009000", "+8613700000099"}

var anyTexts = []anyText{
	{from: 0, to: "+8610690000001", body: "火"}, {from: 0, to: "+8610690000001", body: "救命啊！"}, {from: 0, body: "我安全"},
	{from: 0, body: "你好"}, {from: 1, body: "1"}, {from: 1, body: "２"}, {from: 1, body: "3"}, {from: 1, body: "完成"},
	{from: 1, to: "+8610690000001", body: "HELP"}, {from: 2, body: "1"}, {from: 2, body: "火"},
	{from: 3, to: "+8610690000001", body: "救命"}, {from: 3, body: "1 OR 1=1"},
	{from: 9, to: "'; DROP TABLE residents;--", body: "'; DROP TABLE responders;--", anyone: "1 OR 1=1"},
	{from: 0, body: "火\x00"}, {from: 9, body: "\x00\xff", anyone: "+86138\x00"}, {from: 1, to: "\x00", body: "1\x00"},
}

// replyDispatcher registers a community that takes texts, its emergency
// center, a responder and a resident, and returns the dispatcher.
func replyDispatcher(tb testing.TB, db storage.DB) *responders.Dispatcher {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bus, err := events.Connect(ctx, events.BusConfig{StoreDir: tb.TempDir(), Logger: log})
	if err != nil {
		tb.Fatalf("connect bus: %v", err)
	}
	tb.Cleanup(bus.Close)
	tax := events.DefaultTaxonomy()
	now := func() time.Time { return clock }
	reg := &responders.Registry{DB: db, Tax: tax, Now: now}
	if _, err := reg.CreateCommunity(ctx, responders.Community{ID: "c1", Name: "新华社区", Location: centre,
		SMSNumber: "+8610690000001"}); err != nil {
		tb.Fatal(err)
	}
	if _, err := reg.CreateOrganisation(ctx, responders.Organisation{ID: "c1-center", Community: "c1",
		Kind: responders.OrgEmergencyCenter, Name: "应急中心", DutyPhone: textSenders[2]}); err != nil {
		tb.Fatal(err)
	}
	if _, err := reg.CreateResponder(ctx, medic("c1", "李医生", textSenders[1])); err != nil {
		tb.Fatal(err)
	}
	home := centre
	if _, err := reg.CreateResident(ctx, responders.Resident{ID: "res1", Community: "c1", Name: "王阿姨",
		Phone: textSenders[0], Address: "3栋2单元501", Location: &home}); err != nil {
		tb.Fatal(err)
	}
	return &responders.Dispatcher{DB: db, Tax: tax, Relay: events.NewRelay(db, bus, log), Log: log, Now: now}
}

// handleTwice delivers a text twice, as a retried webhook or a redelivered
// message would: it must be handled, and answered once.
func handleTwice(t *testing.T, d *responders.Dispatcher, sid string, text anyText) {
	t.Helper()
	ctx := context.Background()
	in := sms.Inbound{SID: sid, From: text.anyone, To: text.to, Body: text.body}
	if int(text.from) < len(textSenders) {
		in.From = textSenders[text.from]
	}
	ev, err := events.New("inbound:"+in.SID, "sms.inbound", events.SMSInboundSubject, "", clock, in)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.HandleReply(ctx, ev); err != nil {
		t.Fatalf("text %+q not handled: %v", in, err)
	}
	var texts, again int
	if err := d.DB.QueryRow(ctx, `SELECT COUNT(*) FROM sms_outbox`).Scan(&texts); err != nil {
		t.Fatal(err)
	}
	if err := d.HandleReply(ctx, ev); err != nil {
		t.Fatalf("text %+q delivered again: %v", in, err)
	}
	if err := d.DB.QueryRow(ctx, `SELECT COUNT(*) FROM sms_outbox`).Scan(&again); err != nil {
		t.Fatal(err)
	}
	if again != texts {
		t.Fatalf("text %+q delivered twice was answered twice: %d texts, then %d", in, texts, again)
	}
}

// Any text from anyone is handled on both stores, NUL characters among
// them (PostgreSQL cannot store one, and such a text was retried until it
// went to the dead letters).
func TestHandleReplyTakesAnyText(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		d := replyDispatcher(t, db)
		for i, text := range anyTexts {
			handleTwice(t, d, "SMany"+strconv.Itoa(i), text)
		}
	})
}

// FuzzHandleReply plays arbitrary texts through the handler of every text
// a phone sends the community (replies to offers and duties, "I am safe",
// alarms by text, strangers) from a resident, a responder, the emergency
// center's duty phone, a stranger, or any sender at all. Whatever the
// words, the handler must not panic or fail (a failed text is retried and
// then lost to the dead letters), and a text delivered twice is answered
// once. It runs on SQLite; TestHandleReplyTakesAnyText runs the seeds on
// PostgreSQL too.
func FuzzHandleReply(f *testing.F) {
	d := replyDispatcher(f, storagetest.SQLite(f))
	for _, s := range anyTexts {
		f.Add(s.from, s.to, s.body, s.anyone)
	}
	seq := 0 // one database per fuzzing process: a counter names each text
	f.Fuzz(func(t *testing.T, from uint8, to, body, anyone string) {
		seq++
		handleTwice(t, d, "SMfuzz"+strconv.Itoa(seq), anyText{from: from, to: to, body: body, anyone: anyone})
	})
}
