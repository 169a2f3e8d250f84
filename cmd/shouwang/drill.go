package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/shouwang/shouwang/audit"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/plans"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/storage"
)

const drillUsage = `usage: shouwang drill run --community ID --type TYPE [flags]

Starts a drill now: a real incident flagged as a drill, run through the
whole pipeline by the serving process, which must share this database.
Only the teams, organisations and responders in scope are contacted.
`

// stagedOnly is the bus of the drill command: the command writes the
// drill and its messages to the database in one transaction, and the
// serving process's relay publishes them (with the embedded NATS there is
// no server this process could reach).
type stagedOnly struct{}

func (stagedOnly) Publish(context.Context, events.Message) error {
	return errors.New("published by the serving process")
}

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '，' || r == ' ' })
}

func drillCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("drill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, drillUsage); fs.PrintDefaults() }
	community := fs.String("community", "", "community id (required)")
	typ := fs.String("type", "", "incident type, e.g. fire, medical, flood (required)")
	severity := fs.String("severity", "", "I, II, III or IV; the type's default if empty")
	teams := fs.String("teams", "", "comma-separated team (organisation) ids whose members take part; default: every volunteer team")
	orgs := fs.String("orgs", "", "comma-separated organisation ids or kinds given plan duties; default: the teams only")
	people := fs.String("responders", "", "comma-separated responder ids taking part")
	notice := fs.String("notice", "", "told to the emergency center when the drill starts")
	limit := fs.String("time-limit", "30m", "the drill ends by itself after this")
	address := fs.String("address", "", "where the drill takes place; the community's centre by default")
	key := fs.String("key", "", "idempotency key: the same key starts the same drill once")
	openStore := storeFlags(fs)
	if len(args) == 0 || args[0] != "run" {
		fs.Usage()
		return errors.New("want: drill run --community ID --type TYPE")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *community == "" || *typ == "" {
		fs.Usage()
		return errors.New("--community and --type are required")
	}
	db, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := storage.Migrate(ctx, db); err != nil {
		return err
	}
	scope := responders.Scope{Teams: splitList(*teams), Organisations: splitList(*orgs), Responders: splitList(*people)}
	if scope.Empty() {
		vt, err := (&responders.Registry{DB: db, Tax: events.DefaultTaxonomy()}).ListOrganisations(ctx, *community, responders.OrgVolunteerTeam)
		if err != nil {
			return err
		}
		for _, o := range vt {
			scope.Teams = append(scope.Teams, o.ID)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	drills := &plans.Drills{DB: db, Tax: events.DefaultTaxonomy(), Relay: events.NewRelay(db, stagedOnly{}, log), Log: log,
		Now: time.Now, LinkBase: strings.TrimRight(env("SHOUWANG_PUBLIC_URL", ""), "/")}
	if *key == "" {
		*key = events.NewID("cli", time.Now())
	}
	spec := plans.DrillSpec{Type: *typ, Severity: *severity, Address: *address, Scope: scope, Notice: *notice, TimeLimit: *limit}
	dr, err := drills.Start(ctx, *community, spec, "cli:"+*key, "", "cli")
	if err != nil {
		return err
	}
	// After the start commits (it stages events as it does).
	if err := audit.Record(ctx, db, audit.Entry{At: time.Now(), Actor: cliActor(), Community: *community, Action: "drill.run",
		ObjectKind: "drill", ObjectID: dr.ID, Detail: map[string]any{"key": *key}}); err != nil {
		return fmt.Errorf("drill %s started, but its audit entry was not written: %w", dr.ID, err)
	}
	fmt.Fprintf(stdout, "drill %s started: incident %s, %s, ends at %s\n  teams: %s\n  organisations: %s\n  responders: %s\n"+
		"The serving process picks it up within seconds; the report is at /v1/drills/%s/report when it ends.\n",
		dr.ID, dr.Incident, dr.Type, dr.EndsAt.In(responders.Zone).Format("2006-01-02 15:04"),
		strings.Join(scope.Teams, ", "), strings.Join(append(scope.Organisations, "emergency_center"), ", "),
		strings.Join(scope.Responders, ", "), dr.ID)
	return nil
}
