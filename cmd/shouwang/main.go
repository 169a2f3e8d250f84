// Command shouwang runs the Shouwang service and its tools.
//
//	shouwang serve [--demo]   run everything (embedded NATS and SQLite by default)
//	shouwang migrate          apply database migrations
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	_ "time/tzdata" // Asia/Shanghai must work in a bare container

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/plans"
	"github.com/shouwang/shouwang/sms"
	"github.com/shouwang/shouwang/storage"
)

const usage = `shouwang — community emergency coordination (守望)

usage:
  shouwang serve [flags]     run the service; --demo loads a demo community
  shouwang migrate [flags]   apply database migrations and exit
  shouwang templates list    every message template, to register with a carrier
  shouwang plans lint FILE   check a contingency plan; prints every problem with its line
  shouwang import responders FILE --community ID [--dry-run] [--skip-bad]
                             import a roster (.xlsx or CSV) into a community
  shouwang drill run --community ID --type TYPE [--teams A,B] [--orgs KIND,…]
                             start a drill now through the serving process
  shouwang users add --username U --role R [--community C] [--subject S] [--name N]
                             create a user who signs in with a password (read from stdin)
  shouwang bench [--responders N] [--rate R | --rates A,B,…] [--scenario alarms|masscall|storm|all] [--json] [--plot FILE.png]
                             load-test a service started in this process (docs/performance.md)

Run "shouwang serve -h" for the flags; every flag also has a SHOUWANG_* variable.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd := os.Args[1]; cmd {
	case "serve":
		err = serveCmd(ctx, os.Args[2:])
	case "migrate":
		err = migrateCmd(ctx, os.Args[2:])
	case "templates":
		err = templatesCmd(os.Stdout, os.Args[2:])
	case "plans":
		err = plansCmd(os.Stdout, os.Args[2:])
	case "import":
		err = importCmd(ctx, os.Args[2:], os.Stdout, os.Stderr)
	case "drill":
		err = drillCmd(ctx, os.Args[2:], os.Stdout, os.Stderr)
	case "users":
		err = usersCmd(ctx, os.Args[2:], os.Stdin, os.Stdout, os.Stderr)
	case "bench":
		err = benchCmd(ctx, os.Args[2:], os.Stdout, os.Stderr)
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "shouwang:", err)
		os.Exit(1)
	}
}

// newLogger writes one line per record to w: logfmt-style text, or with
// format "json" one JSON object a line (time, level, msg and the fields),
// for log collectors. Lines about an incident carry its id as "incident";
// phone numbers are masked where they are logged.
func newLogger(w io.Writer, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func serveCmd(ctx context.Context, args []string) error {
	cfg, err := parseConfig("serve", args)
	if err != nil {
		return err
	}
	widenProcs(cfg.DatabaseURL == "" || cfg.NATSURL == "")
	log := newLogger(os.Stderr, cfg.LogFormat)
	svc, err := Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	if cfg.Demo {
		if err := seedDemo(ctx, svc, os.Stdout); err != nil {
			svc.Close(context.Background())
			return fmt.Errorf("demo: %w", err)
		}
	}
	log.Info("shouwang serving", "addr", svc.Addr, "store", svc.DB.Dialect(), "nats", natsLabel(cfg), "sms", smsLabel(cfg),
		"gomaxprocs", runtime.GOMAXPROCS(0))
	<-ctx.Done()
	log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return svc.Close(shutdown)
}

func migrateCmd(ctx context.Context, args []string) error {
	cfg, err := parseConfig("migrate", args)
	if err != nil {
		return err
	}
	db, err := storage.Open(ctx, cfg.DatabaseURL, cfg.DataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := storage.Migrate(ctx, db); err != nil {
		return err
	}
	where := cfg.DatabaseURL
	if where == "" {
		where = filepath.Join(cfg.DataDir, "shouwang.db")
	}
	fmt.Printf("migrated %s database (%s)\n", db.Dialect(), redact(where))
	return nil
}

// storeFlags gives a command that writes to the serving process's database
// its --data-dir and --database-url flags, and returns what opens that
// database once the flags are parsed; an embedded one must exist already.
func storeFlags(fs *flag.FlagSet) func(context.Context) (storage.DB, error) {
	dataDir := fs.String("data-dir", env("SHOUWANG_DATA_DIR", "./data"), "directory of the embedded SQLite database")
	dbURL := fs.String("database-url", env("SHOUWANG_DATABASE_URL", ""), "postgres:// URL; empty uses embedded SQLite")
	return func(ctx context.Context) (storage.DB, error) {
		if *dbURL == "" {
			if _, err := os.Stat(filepath.Join(*dataDir, "shouwang.db")); err != nil {
				return nil, fmt.Errorf("no database in %s (--data-dir): start the service once or run shouwang migrate", *dataDir)
			}
		}
		return storage.Open(ctx, *dbURL, *dataDir)
	}
}

func natsLabel(c Config) string {
	if c.NATSURL == "" {
		return "embedded"
	}
	return redact(c.NATSURL)
}

func smsLabel(c Config) string {
	if c.twilioConfigured() {
		return "twilio"
	}
	return "dev-sink"
}

// redact hides credentials in a URL for logs.
func redact(u string) string {
	for i := 0; i+3 <= len(u); i++ {
		if u[i:i+3] == "://" {
			rest := u[i+3:]
			for j := 0; j < len(rest); j++ {
				if rest[j] == '@' {
					return u[:i+3] + "***" + rest[j:]
				}
				if rest[j] == '/' {
					break
				}
			}
			break
		}
	}
	return u
}

// templatesCmd lists every template with its parameters and both texts, so
// an operator can register them with a carrier that requires it.
func templatesCmd(out io.Writer, args []string) error {
	if len(args) != 1 || args[0] != "list" {
		return fmt.Errorf("usage: shouwang templates list")
	}
	for _, name := range sms.TemplateNames() {
		t := sms.Templates[name]
		fmt.Fprintf(out, "%s\n  params: %s\n  zh-CN:  %s\n  en:     %s\n\n", name, strings.Join(t.Params(), ", "), t.ZH, t.EN)
	}
	return nil
}

// plansCmd checks plan documents before they are posted: every problem is
// printed as FILE:LINE: field: message, and the command fails if any.
func plansCmd(out io.Writer, args []string) error {
	if len(args) < 2 || args[0] != "lint" {
		return fmt.Errorf("usage: shouwang plans lint FILE [FILE…]")
	}
	bad := 0
	for _, file := range args[1:] {
		src, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		p, err := plans.Parse(events.DefaultTaxonomy(), src)
		var ps plans.Problems
		switch {
		case errors.As(err, &ps):
			for _, pr := range ps {
				fmt.Fprintf(out, "%s:%d: %s: %s\n", file, pr.Line, pr.Field, pr.Message)
			}
			bad += len(ps)
		case err != nil:
			return err
		default:
			fmt.Fprintf(out, "%s: ok (plan %s, %d steps)\n", file, p.ID, len(p.Steps))
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d problem(s)", bad)
	}
	return nil
}
