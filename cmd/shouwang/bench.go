package main

// shouwang bench: the load generator behind docs/performance.md. It seeds a
// community with N responders through the roster import, starts the real
// service in this process with a fake Twilio behind the real twilio-go
// client, and drives alarms over real HTTP at a fixed rate from a pool of
// goroutines. Sends are scheduled on the clock (open loop) and latency is
// counted from the scheduled time, so a slow server cannot hide its delay
// by slowing the generator down (coordinated omission).

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/shouwang/shouwang/api"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/incidents"
	"github.com/shouwang/shouwang/plans"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/sms/twiliofake"
	"github.com/shouwang/shouwang/storage"
)

const benchUsage = `usage: shouwang bench [flags]

Seeds a community with --responders people, starts the service in this
process (embedded NATS and SQLite unless --nats-url / --database-url) with
a fake Twilio, and measures:
  alarms    alarms at --rate (or each of --rates) for --duration / --alarms:
            202 latency and alarm -> first offer text at the fake Twilio
  masscall  one flood whose plan calls --masscall volunteers, through a
            fake Twilio that takes --twilio-rps requests a second
  storm     --storm-presses presses for one fire within --storm-window
Each scenario starts once the match index has loaded and --settle has
passed. Latencies are counted from when each request was due to be sent.
`

// benchOptions are the flags of shouwang bench.
type benchOptions struct {
	Responders  int
	Rates       []float64
	Duration    time.Duration
	Alarms      int // per rate; 0: Duration decides
	Scenarios   []string
	DatabaseURL string
	NATSURL     string
	DataDir     string
	JSON        bool
	Plot        string
	TwilioRPS   int // fake Twilio capacity in the masscall scenario; 0: unlimited
	// SMSRate is the service's --sms-rate in the alarms and storm
	// scenarios; 0: unlimited (the sender competes for the CPU at full tilt).
	SMSRate float64
	// Settle is how long each scenario waits, once the match index has
	// loaded, before it starts (the reconciliation after the load).
	Settle       time.Duration
	Workers      int
	CPUProfile   string
	MemProfile   string
	PlotFrom     string
	PerRecipient int
	MassCall     int
	StormPresses int
	StormWindow  time.Duration
	Log          bool
}

func defaultBenchOptions() benchOptions {
	return benchOptions{Responders: 100000, Rates: []float64{500}, Duration: 10 * time.Second,
		Scenarios: []string{"alarms"}, TwilioRPS: 100, Workers: 128, MassCall: 300, Settle: 3 * time.Second,
		StormPresses: 10000, StormWindow: 10 * time.Second}
}

func parseBenchFlags(args []string, stderr io.Writer) (benchOptions, error) {
	o := defaultBenchOptions()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, benchUsage); fs.PrintDefaults() }
	fs.IntVar(&o.Responders, "responders", o.Responders, "responders registered before the run")
	rate := fs.Float64("rate", 500, "alarms a second")
	rates := fs.String("rates", "", "comma-separated alarm rates to sweep, e.g. 50,100,250,500 (overrides --rate; makes the plot)")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "how long alarms are sent at each rate")
	fs.IntVar(&o.Alarms, "alarms", 0, "alarms sent at each rate (instead of --duration)")
	scenario := fs.String("scenario", "alarms", "alarms, masscall, storm or all (comma-separated list allowed)")
	fs.StringVar(&o.DatabaseURL, "database-url", env("SHOUWANG_DATABASE_URL", ""), "postgres:// URL; empty uses embedded SQLite")
	fs.StringVar(&o.NATSURL, "nats-url", env("SHOUWANG_NATS_URL", ""), "external NATS URL; empty embeds NATS")
	fs.StringVar(&o.DataDir, "data-dir", "", "directory for SQLite and JetStream files (default: a temporary one, removed after)")
	fs.BoolVar(&o.JSON, "json", false, "print the report as JSON")
	fs.StringVar(&o.Plot, "plot", "", "write a latency-vs-rate PNG here")
	fs.StringVar(&o.PlotFrom, "plot-from", "", "with --plot: draw the plot from a saved --json report instead of running")
	fs.IntVar(&o.TwilioRPS, "twilio-rps", o.TwilioRPS, "requests a second the fake Twilio takes in the masscall scenario (0: unlimited); the service's --sms-rate is set to it. Other scenarios: unlimited")
	fs.Float64Var(&o.SMSRate, "sms-rate", 0, "the service's texts a second in the alarms and storm scenarios, as a provider account would allow (0: unlimited)")
	fs.DurationVar(&o.Settle, "settle", o.Settle, "wait this long after the match index has loaded before each scenario (start-up is not measured)")
	fs.IntVar(&o.Workers, "workers", o.Workers, "goroutines sending HTTP requests")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the measured runs (not the seeding) here")
	fs.StringVar(&o.MemProfile, "memprofile", "", "write a heap profile here when the scenarios end (go tool pprof -sample_index=alloc_space for the churn)")
	fs.IntVar(&o.PerRecipient, "sms-per-recipient", 0, "the service's per-phone texts a minute (0: no limit; the bench measures the pipeline, not the carrier limit)")
	fs.IntVar(&o.MassCall, "masscall", o.MassCall, "volunteers the masscall flood calls")
	fs.IntVar(&o.StormPresses, "storm-presses", o.StormPresses, "presses in the storm scenario")
	fs.DurationVar(&o.StormWindow, "storm-window", o.StormWindow, "the storm's presses are spread over this")
	fs.BoolVar(&o.Log, "log", false, "show the service's log on stderr")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.Rates = []float64{*rate}
	if *rates != "" {
		o.Rates = nil
		for _, f := range strings.Split(*rates, ",") {
			r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil || r <= 0 {
				return o, fmt.Errorf("--rates: %q is not a positive number", f)
			}
			o.Rates = append(o.Rates, r)
		}
	}
	o.Scenarios = nil
	for _, s := range strings.Split(*scenario, ",") {
		switch s = strings.TrimSpace(s); s {
		case "all":
			o.Scenarios = append(o.Scenarios, "alarms", "masscall", "storm")
		case "alarms", "masscall", "storm":
			o.Scenarios = append(o.Scenarios, s)
		default:
			return o, fmt.Errorf("--scenario %q: alarms, masscall, storm or all", s)
		}
	}
	switch {
	case o.Rates[0] <= 0:
		return o, fmt.Errorf("--rate must be positive")
	case o.Workers < 1:
		return o, fmt.Errorf("--workers must be at least 1")
	case o.Responders < 0 || o.MassCall < 0 || o.StormPresses < 0:
		return o, fmt.Errorf("--responders, --masscall and --storm-presses cannot be negative")
	case o.Alarms == 0 && o.Duration <= 0:
		return o, fmt.Errorf("--duration must be positive")
	}
	return o, nil
}

// benchCmd runs shouwang bench: progress on stderr, the report on stdout.
func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseBenchFlags(args, stderr)
	if err != nil {
		return err
	}
	// The service under test runs in this process: the same Ps as serve.
	widenProcs(o.DatabaseURL == "" || o.NATSURL == "")
	var rep *BenchReport
	if o.PlotFrom != "" {
		// Plot a saved report (a quiet machine's run) without running again.
		data, err := os.ReadFile(o.PlotFrom)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(data, &rep); err != nil {
			return fmt.Errorf("%s: not a shouwang bench --json report: %w", o.PlotFrom, err)
		}
	} else if rep, err = runBench(ctx, o, stderr); err != nil {
		return err
	}
	if o.Plot != "" {
		if err := plotLatency(o.Plot, rep); err != nil {
			return err
		}
	}
	if o.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printBench(stdout, rep)
	return nil
}

// Latency is a distribution in milliseconds.
type Latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func summarize(xs []float64) Latency {
	if len(xs) == 0 {
		return Latency{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	at := func(p float64) float64 {
		i := int(math.Ceil(p/100*float64(len(s)))) - 1
		return round3(s[max(0, min(i, len(s)-1))])
	}
	return Latency{N: len(s), P50: at(50), P95: at(95), P99: at(99), Max: round3(s[len(s)-1])}
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// AlarmRun is the outcome of alarms sent at one rate.
type AlarmRun struct {
	OfferedRate float64 `json:"offered_rate"`
	Sent        int     `json:"sent"`
	Accepted    int     `json:"accepted"`
	Errors      int     `json:"errors"`
	// Throughput is 202s a second over the sending window.
	Throughput float64 `json:"throughput_per_s"`
	// Accept: due time of the POST to its 202.
	Accept Latency `json:"accept"`
	// Queued: due time of the POST to the incident's first offer text
	// written to the SMS outbox, i.e. handed to the sender (the row's
	// time has millisecond resolution).
	Queued Latency `json:"to_sms_queued"`
	// ToSMS: due time of the POST to the fake Twilio accepting the first
	// offer text about the incident.
	ToSMS Latency `json:"to_sms_provider"`
	// NoText counts accepted alarms whose offer never reached the fake
	// within the wait; Ambiguous those left out because another alarm of
	// the run has the same 4-character reference.
	NoText    int `json:"no_text"`
	Ambiguous int `json:"ambiguous"`
	// TextsPerS is texts the fake accepted a second while alarms were sent.
	TextsPerS float64 `json:"texts_per_s"`
}

// MassCallRun is the outcome of the masscall scenario.
type MassCallRun struct {
	Volunteers int     `json:"volunteers"`
	TwilioRPS  int     `json:"twilio_rps"`
	SMSRate    float64 `json:"service_sms_rate"`
	Reached    int     `json:"reached"`
	FirstMs    float64 `json:"first_text_ms"`
	// AllMs is the time from the alarm to the last volunteer's first text;
	// 0 if not everyone was reached.
	AllMs   float64 `json:"all_reached_ms"`
	Texts   int     `json:"texts_accepted"`
	Refused int64   `json:"provider_errors"`
	How     string  `json:"how"`
}

// StormRun is the outcome of the storm scenario.
type StormRun struct {
	Presses    int     `json:"presses"`
	Accepted   int     `json:"accepted"`
	Errors     int     `json:"errors"`
	WindowS    float64 `json:"window_s"`
	Incidents  int     `json:"incidents"`
	Reports    int     `json:"reports"`
	Attached   int     `json:"attached"`
	LagMs      float64 `json:"lag_ms"`
	CaughtUp   bool    `json:"caught_up"`
	Accept     Latency `json:"accept"`
	Throughput float64 `json:"throughput_per_s"`
}

// BenchReport is what shouwang bench prints (--json).
type BenchReport struct {
	Date            time.Time `json:"date"`
	Store           string    `json:"store"`
	NATS            string    `json:"nats"`
	GoMaxProcs      int       `json:"gomaxprocs"`
	CPUs            int       `json:"cpus"`
	Responders      int       `json:"responders"`
	Workers         int       `json:"workers"`
	SMSPerRecipient int       `json:"sms_per_recipient"`
	// SMSRate is the service's --sms-rate in the alarms and storm
	// scenarios; 0: unlimited.
	SMSRate      float64 `json:"sms_rate,omitempty"`
	SeedSeconds  float64 `json:"seed_s"`
	StartSeconds float64 `json:"start_s"`
	// RSSAfterStartMB is the process's resident memory with the service
	// started and the responders registered, before any load.
	RSSAfterStartMB float64 `json:"rss_after_start_mb"`
	// PeakServingRSSMB is the highest resident memory sampled while the
	// scenarios ran; PeakRSSMB is VmHWM, the whole run's peak, seeding
	// included. Both count the fake Twilio and the load generator too.
	PeakServingRSSMB float64      `json:"peak_serving_rss_mb"`
	PeakRSSMB        float64      `json:"peak_rss_mb"`
	Alarms           []AlarmRun   `json:"alarms,omitempty"`
	MassCall         *MassCallRun `json:"masscall,omitempty"`
	Storm            *StormRun    `json:"storm,omitempty"`
}

// benchPhonePrefix marks the responders' phones, so texts to organisations
// (plan duties) are not taken for offers.
const (
	benchPhonePrefix = "+86137"
	massPhonePrefix  = "+86136"
)

// bench is one invocation's state.
type bench struct {
	o         benchOptions
	stderr    io.Writer
	community string
	admin     string
	dataDir   string
	svc       *Service
	fake      *twiliofake.Server
	base      string
	client    *httpClient
	rep       *BenchReport
	log       *slog.Logger

	mu     sync.Mutex
	onText func(twiliofake.Message) // the running scenario's view of texts
	texts  atomic.Int64

	// peakRSS is the highest VmRSS (kB) seen since the service first
	// started, sampled until stopSampling.
	peakRSS      atomic.Int64
	stopSampling func()

	massSpot, stormSpot geo.Point
	alarmSeq            int // spots used so far, so every alarm of the invocation has its own
}

func runBench(ctx context.Context, o benchOptions, stderr io.Writer) (*BenchReport, error) {
	b := &bench{o: o, stderr: stderr, rep: &BenchReport{Date: time.Now().UTC(), Store: "sqlite", NATS: "embedded",
		GoMaxProcs: runtime.GOMAXPROCS(0), CPUs: runtime.NumCPU(), Responders: o.Responders, Workers: o.Workers,
		SMSPerRecipient: o.PerRecipient, SMSRate: o.SMSRate}}
	if o.DatabaseURL != "" {
		b.rep.Store = "postgres"
	}
	if o.NATSURL != "" {
		b.rep.NATS = redact(o.NATSURL)
	}
	b.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	if o.Log {
		b.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	b.dataDir = o.DataDir
	if b.dataDir == "" {
		dir, err := os.MkdirTemp("", "shouwang-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		b.dataDir = dir
	}
	// A community of its own, so runs against one PostgreSQL database do
	// not meet each other's responders.
	b.community = "bench-" + strconv.FormatInt(time.Now().Unix(), 36)
	b.admin = randomToken()
	b.massSpot = geo.Offset(centreOfBench, -6000, 6000)
	b.stormSpot = geo.Offset(centreOfBench, 6000, -6000)
	b.fake = twiliofake.NewServer(twiliofake.Options{Forget: true, OnMessage: b.gotText})
	defer b.fake.Close()
	b.client = newHTTPClient(o.Workers)

	t0 := time.Now()
	if err := b.seed(ctx); err != nil {
		return nil, err
	}
	b.rep.SeedSeconds = round3(time.Since(t0).Seconds())

	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	defer func() {
		if b.stopSampling != nil {
			b.stopSampling()
		}
	}()
	for i, sc := range o.Scenarios {
		// The masscall's provider is slow, the others' unlimited, and the
		// service's send rate is fixed at start: one start a scenario.
		smsRate := 100000.0
		if o.SMSRate > 0 {
			smsRate = o.SMSRate
		}
		twilioRPS := 0
		if sc == "masscall" && o.TwilioRPS > 0 {
			smsRate, twilioRPS = float64(o.TwilioRPS), o.TwilioRPS
		}
		if err := b.start(ctx, smsRate, twilioRPS, i == 0); err != nil {
			return nil, err
		}
		var err error
		switch sc {
		case "alarms":
			err = b.alarms(ctx)
		case "masscall":
			err = b.massCall(ctx, smsRate, twilioRPS)
		case "storm":
			err = b.storm(ctx)
		}
		b.stop()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sc, err)
		}
	}
	b.rep.PeakServingRSSMB = round3(float64(b.peakRSS.Load()) / 1024)
	if o.MemProfile != "" {
		if err := writeHeapProfile(o.MemProfile); err != nil {
			return nil, err
		}
	}
	b.rep.PeakRSSMB = procStatusMB("VmHWM")
	return b.rep, nil
}

// centreOfBench is the bench community's centre: a block in Shanghai.
var centreOfBench = geo.Point{Lat: 31.2304, Lng: 121.4737}

func randomToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// seed registers the community, its organisations and the responders
// (through the roster import, in chunks of the largest roster it takes),
// and for the masscall scenario its volunteers, the vulnerable residents
// they are sent to and the plan that sends them, before the service starts.
func (b *bench) seed(ctx context.Context) error {
	db, err := storage.Open(ctx, b.o.DatabaseURL, b.dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := storage.Migrate(ctx, db); err != nil {
		return err
	}
	tax := events.DefaultTaxonomy()
	reg := &responders.Registry{DB: db, Tax: tax, Now: time.Now}
	if _, err := reg.CreateCommunity(ctx, responders.Community{ID: b.community, Name: "压测社区", Location: centreOfBench, Locale: "zh-CN"}); err != nil {
		return fmt.Errorf("create community: %w", err)
	}
	// Every kind of organisation, so plan duties go where they would.
	for i, kind := range responders.OrganisationKinds() {
		if _, err := reg.CreateOrganisation(ctx, responders.Organisation{ID: b.community + "-" + kind, Community: b.community, Kind: kind,
			Name: "压测" + kind, DutyPhone: fmt.Sprintf("+861390000%04d", i)}); err != nil {
			return fmt.Errorf("create organisation: %w", err)
		}
	}
	mass := slices.Contains(b.o.Scenarios, "masscall")
	total := b.o.Responders
	if mass {
		total += b.o.MassCall
	}
	bar := progressbar.NewOptions(total, progressbar.OptionSetWriter(b.stderr), progressbar.OptionSetDescription("registering responders"),
		progressbar.OptionShowCount(), progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionSetWidth(30),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(b.stderr) }))
	header := []string{"姓名", "手机号", "技能", "证书", "证书有效期", "纬度", "经度"}
	expiry := time.Now().AddDate(2, 0, 0).Format("2006-01-02")
	// The population: spread evenly over 10 km × 10 km, skills mixed.
	mix := []struct{ skill, cert string }{{"medic", "急救证"}, {"medic", "急救证"}, {"medic", "急救证"}, {"firefighting", "消防证"},
		{"firefighting", "消防证"}, {"gas_safety", "燃气安全证"}, {"security", ""}, {"general", ""}, {"search", ""}, {"electrician", "电工证"}}
	side := int(math.Ceil(math.Sqrt(float64(max(b.o.Responders, 1)))))
	step := 10000.0 / float64(side)
	done := 0
	for start := 0; start < b.o.Responders; start += responders.MaxRosterRows {
		rows := [][]string{header}
		for i := start; i < min(start+responders.MaxRosterRows, b.o.Responders); i++ {
			p := geo.Offset(centreOfBench, float64(i/side)*step-5000, float64(i%side)*step-5000)
			m := mix[i%len(mix)]
			certExpiry := expiry
			if m.cert == "" {
				certExpiry = ""
			}
			rows = append(rows, []string{fmt.Sprintf("志愿者%d", i), fmt.Sprintf("%s%08d", benchPhonePrefix, i), m.skill, m.cert, certExpiry,
				strconv.FormatFloat(p.Lat, 'f', 6, 64), strconv.FormatFloat(p.Lng, 'f', 6, 64)})
		}
		if err := b.importRows(ctx, reg, rows, func(n, _ int) { _ = bar.Set(done + n) }); err != nil {
			return err
		}
		done += len(rows) - 1
	}
	if mass {
		if err := b.seedMassCall(ctx, reg, db, tax, header, func(n int) { _ = bar.Set(done + n) }); err != nil {
			return err
		}
	}
	_ = bar.Finish()
	return nil
}

func (b *bench) importRows(ctx context.Context, reg *responders.Registry, rows [][]string, progress func(done, total int)) error {
	rep, err := reg.ImportRoster(ctx, b.community, rows, responders.ImportOptions{Progress: progress})
	if err != nil {
		return fmt.Errorf("register responders: %w", err)
	}
	if !rep.Imported {
		first := ""
		if len(rep.Errors) > 0 {
			first = rep.Errors[0].MessageEN
		}
		return fmt.Errorf("register responders: %d bad rows, first: %s", rep.Failed, first)
	}
	return nil
}

// massSpots are where the masscall's vulnerable residents live, 30 m
// apart within the flood's 500 m: a volunteer lives at each, so the
// nearest volunteer to each resident is a different person.
func (b *bench) massSpots() []geo.Point {
	side := int(math.Ceil(math.Sqrt(float64(b.o.MassCall))))
	var out []geo.Point
	for i := range b.o.MassCall {
		out = append(out, geo.Offset(b.massSpot, float64(i/side-side/2)*30, float64(i%side-side/2)*30))
	}
	return out
}

// benchMassPlan is the flood plan of the bench community: one duty for
// every vulnerable resident in the flooded area, each given to the
// nearest flood-rescue volunteer. It is what makes one incident call
// hundreds of people; the taxonomy's dispatch waves never ask more than a
// few.
const benchMassPlan = `id: %s
community: %s
title: {zh: 压测内涝预案, en: Bench flood plan}
applies_to:
  types: [flood]
  severity: {from: IV, to: I}
steps:
  - id: help_vulnerable
    title: {zh: 上门帮扶独居老人, en: Help a vulnerable resident}
    assignee: skill:flood_rescue
    due_minutes: 15
    for_each: vulnerable_residents_in_area
    instructions: {zh: 上门协助转移到高楼层。, en: Help them to a higher floor.}
`

func (b *bench) seedMassCall(ctx context.Context, reg *responders.Registry, db storage.DB, tax *events.Taxonomy, header []string, progress func(int)) error {
	spots := b.massSpots()
	rows := [][]string{header}
	for i, p := range spots {
		rows = append(rows, []string{fmt.Sprintf("防汛队员%d", i), fmt.Sprintf("%s%08d", massPhonePrefix, i), "flood_rescue", "", "",
			strconv.FormatFloat(p.Lat, 'f', 6, 64), strconv.FormatFloat(p.Lng, 'f', 6, 64)})
	}
	if err := b.importRows(ctx, reg, rows, func(n, _ int) { progress(n) }); err != nil {
		return err
	}
	for i, p := range spots {
		p := p
		if _, err := reg.CreateResident(ctx, responders.Resident{Community: b.community, Name: fmt.Sprintf("独居老人%d", i),
			Address: fmt.Sprintf("%d号楼", i), Location: &p, Vulnerable: responders.VulnerableElderlyAlone, Locale: "zh-CN"}); err != nil {
			return fmt.Errorf("register vulnerable resident: %w", err)
		}
	}
	plan, err := plans.Parse(tax, []byte(fmt.Sprintf(benchMassPlan, b.community+"-flood", b.community)))
	if err != nil {
		return fmt.Errorf("masscall plan: %w", err)
	}
	if _, err := (&plans.Store{DB: db, Tax: tax, Now: time.Now}).Save(ctx, plan, "bench"); err != nil {
		return fmt.Errorf("save masscall plan: %w", err)
	}
	return nil
}

// start starts the service for one scenario on the seeded database.
func (b *bench) start(ctx context.Context, smsRate float64, twilioRPS int, first bool) error {
	b.fake.SetRateLimit(twilioRPS)
	cfg := Config{HTTPAddr: "127.0.0.1:0", DataDir: b.dataDir, DatabaseURL: b.o.DatabaseURL, NATSURL: b.o.NATSURL, NATSReplicas: 1,
		AdminToken: b.admin, WaveTimeout: 10 * time.Minute, SMSRate: smsRate, SMSPerRecipient: b.o.PerRecipient,
		SMSIdenticalWindow: time.Hour, LinkTTL: 12 * time.Hour, LogFormat: "text", ScheduleGrace: time.Hour, SMSBulkRate: defaultSMSBulkRate,
		TwilioAccountSID: twiliofake.AccountSID, TwilioAuthToken: twiliofake.AuthToken, TwilioFrom: "+8610690000000",
		TwilioHTTPClient: b.fake.Client()}
	t0 := time.Now()
	svc, err := Start(ctx, cfg, b.log)
	if err != nil {
		return err
	}
	b.svc, b.base = svc, "http://"+svc.Addr
	started := time.Since(t0)
	// Start-up work is not what the scenarios measure: the match index
	// loads the registry (and reconciles what was changed meanwhile, all of
	// a fresh seeding), which took about 2 s of CPU for 100,000 responders
	// and showed as a p95 ten times the steady one in a 10 s run.
	for deadline := time.Now().Add(time.Minute); !svc.Dispatcher.Index.Loaded() && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(b.o.Settle)
	if first {
		b.rep.StartSeconds = round3(started.Seconds())
		// What the seeding left behind is garbage; measure what serving keeps.
		debug.FreeOSMemory()
		b.rep.RSSAfterStartMB = procStatusMB("VmRSS")
		b.stopSampling = sampleRSS(&b.peakRSS)
	}
	return nil
}

func (b *bench) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = b.svc.Close(ctx)
	b.setOnText(nil)
}

func (b *bench) setOnText(f func(twiliofake.Message)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.onText = f
}

// gotText is the fake Twilio's OnMessage.
func (b *bench) gotText(m twiliofake.Message) {
	b.texts.Add(1)
	b.mu.Lock()
	f := b.onText
	b.mu.Unlock()
	if f != nil {
		f(m)
	}
}

// residents issues n resident tokens, as the admin would.
func (b *bench) residents(ctx context.Context, prefix string, n int) ([]string, []string, error) {
	tokens, subjects := make([]string, n), make([]string, n)
	for i := range n {
		subjects[i] = fmt.Sprintf("%s-%d", prefix, i)
		tok, err := b.svc.Tokens.Issue(ctx, api.Principal{Role: api.RoleResident, Community: b.community, Subject: subjects[i]}, "bench")
		if err != nil {
			return nil, nil, err
		}
		tokens[i] = tok
	}
	return tokens, subjects, nil
}

// press is one alarm due at a time.
type press struct {
	due   time.Time
	token string
	body  []byte
}

// pressResult is what became of a press.
type pressResult struct {
	accepted time.Duration // from due to the answer
	status   int
	done     time.Time
}

// pressTally sums up the answers to a run of presses.
type pressTally struct {
	accepted, errors int
	throughput       float64 // accepted per second, from start to the last 202
	accept           Latency // due time → 202, of the accepted
	lastDone         time.Time
}

func tallyPresses(res []pressResult, start time.Time) pressTally {
	var t pressTally
	var accept []float64
	for _, r := range res {
		if r.status != 202 {
			t.errors++
			continue
		}
		t.accepted++
		accept = append(accept, ms(r.accepted))
		if r.done.After(t.lastDone) {
			t.lastDone = r.done
		}
	}
	if window := t.lastDone.Sub(start).Seconds(); window > 0 {
		t.throughput = round3(float64(t.accepted) / window)
	}
	t.accept = summarize(accept)
	return t
}

// drive sends presses at rate, each at its due time, from the worker pool,
// and returns what became of each (in order).
func (b *bench) drive(ctx context.Context, ps []press) []pressResult {
	out := make([]pressResult, len(ps))
	jobs := make(chan int, len(ps))
	var wg sync.WaitGroup
	for range b.o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				status, err := b.client.post(ctx, b.base+"/v1/alarms", ps[i].token, ps[i].body)
				now := time.Now()
				if err != nil {
					status = 0
				}
				out[i] = pressResult{accepted: now.Sub(ps[i].due), status: status, done: now}
			}
		}()
	}
	// The schedule does not wait for answers: a press late for its slot
	// is sent at once, and its lateness counts in its latency.
	for i, p := range ps {
		if d := time.Until(p.due); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return out
}

// benchDrain is how long after the last alarm offers may still come: an
// alarm without one by then counts in no_text.
const benchDrain = time.Minute

var offerRefs = regexp.MustCompile(`\[([0-9A-Z]{4})\]`)

// alarms runs the alarms scenario at each rate.
func (b *bench) alarms(ctx context.Context) error {
	tokens, subjects, err := b.residents(ctx, "resident", 500)
	if err != nil {
		return err
	}
	for i, rate := range b.o.Rates {
		n := b.o.Alarms
		if n == 0 {
			n = max(1, int(rate*b.o.Duration.Seconds()))
		}
		fmt.Fprintf(b.stderr, "alarms: %d at %g/s…\n", n, rate)
		if i > 0 {
			// A rate the service could not keep up with leaves texts
			// queued (plan duties, later offers); the next rate would
			// pay for them.
			b.drain(ctx)
		}
		run, err := b.alarmRun(ctx, rate, n, tokens, subjects)
		if err != nil {
			return err
		}
		b.rep.Alarms = append(b.rep.Alarms, run)
	}
	return nil
}

// drain waits, for up to three minutes, until nothing is left to send:
// no text waiting, and no incident whose plan has not started.
func (b *bench) drain(ctx context.Context) {
	deadline := time.Now().Add(3 * time.Minute)
	quiet := 0
	for time.Now().Before(deadline) && quiet < 2 {
		// Texts not sent yet, and incidents whose plan has not started
		// (their duty texts are not even queued).
		var waiting int
		if err := b.svc.DB.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM sms_outbox WHERE status IN ('pending', 'sending'))
			+ (SELECT COUNT(*) FROM incidents i WHERE i.community_id = $1
				AND NOT EXISTS (SELECT 1 FROM plan_runs p WHERE p.incident_id = i.id))`, b.community).Scan(&waiting); err != nil {
			return
		}
		if waiting == 0 {
			quiet++
		} else {
			quiet = 0
			fmt.Fprintf(b.stderr, "  draining: %d texts and plans still to go\n", waiting)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// alarmSpot is the i-th alarm's place: a 40 m grid over 10 km × 10 km
// (medical alarms further apart than 30 m are separate incidents), visited
// in a scattered order so consecutive alarms are far apart.
func alarmSpot(i int) geo.Point {
	const side = 250
	cell := (i * 7919) % (side * side) // 7919 is prime to 62,500: every cell once
	return geo.Offset(centreOfBench, float64(cell/side)*40-5000, float64(cell%side)*40-5000)
}

func (b *bench) alarmRun(ctx context.Context, rate float64, n int, tokens, subjects []string) (AlarmRun, error) {
	run := AlarmRun{OfferedRate: rate, Sent: n}
	// Which incident each press will open, by the reference its texts carry.
	refOf := make([]string, n)
	byRef := map[string]int{}
	ps := make([]press, n)
	start := time.Now().Add(50 * time.Millisecond)
	interval := time.Duration(float64(time.Second) / rate)
	for i := range n {
		k := i % len(tokens)
		key := fmt.Sprintf("b%d", b.alarmSeq)
		body, _ := json.Marshal(map[string]any{"key": key, "type": "medical", "location": alarmSpot(b.alarmSeq), "address": "3栋2单元501"})
		b.alarmSeq++
		ps[i] = press{due: start.Add(time.Duration(i) * interval), token: tokens[k], body: body}
		refOf[i] = responders.Ref(incidents.OpenedID(incidents.AlarmID(b.community, subjects[k], key)))
		byRef[refOf[i]]++
	}
	var mu sync.Mutex
	first := map[string]time.Time{}
	// firstUnique counts the refs in first that only one alarm has: the
	// wait below is for those. (Counting the shared ones too ended the
	// wait while the run's last texts were on their way, and they counted
	// as no_text.)
	firstUnique := 0
	b.setOnText(func(m twiliofake.Message) {
		if !strings.HasPrefix(m.To, benchPhonePrefix) {
			return // a duty text to an organisation
		}
		mu.Lock()
		defer mu.Unlock()
		for _, sub := range offerRefs.FindAllStringSubmatch(m.Body, -1) {
			if _, ok := first[sub[1]]; !ok && byRef[sub[1]] > 0 {
				first[sub[1]] = m.At
				if byRef[sub[1]] == 1 {
					firstUnique++
				}
			}
		}
	})
	texts0 := b.texts.Load()
	res := b.drive(ctx, ps)
	end := time.Now()
	textsDuring := b.texts.Load() - texts0

	t := tallyPresses(res, start)
	run.Accepted, run.Errors, run.Throughput, run.Accept = t.accepted, t.errors, t.throughput, t.accept
	run.TextsPerS = round3(float64(textsDuring) / end.Sub(start).Seconds())

	// Wait for the offers: until every alarm has one, none came for 10 s,
	// or a backlog has had a minute to drain.
	want := 0
	for i, r := range res {
		if r.status == 202 && byRef[refOf[i]] == 1 {
			want++
		}
	}
	got, lastGot, since, waitFrom, told := 0, -1, time.Now(), time.Now(), time.Now()
	for time.Since(since) < 10*time.Second && time.Since(waitFrom) < benchDrain && ctx.Err() == nil {
		mu.Lock()
		got = firstUnique
		mu.Unlock()
		if got >= want {
			break
		}
		if got != lastGot {
			lastGot, since = got, time.Now()
		}
		if time.Since(told) > 5*time.Second {
			fmt.Fprintf(b.stderr, "  waiting for offer texts: %d of %d alarms have one\n", got, want)
			told = time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.setOnText(nil)
	queued, err := b.firstQueued(ctx, start)
	if err != nil {
		return run, err
	}
	var toSMS, toQueue []float64
	mu.Lock()
	defer mu.Unlock()
	for i, r := range res {
		if r.status != 202 {
			continue
		}
		if byRef[refOf[i]] > 1 {
			run.Ambiguous++
			continue
		}
		if at, ok := first[refOf[i]]; ok {
			toSMS = append(toSMS, ms(at.Sub(ps[i].due)))
		} else {
			run.NoText++
		}
		if at, ok := queued[refOf[i]]; ok {
			toQueue = append(toQueue, float64(at)-float64(ps[i].due.UnixMicro())/1000)
		}
	}
	run.ToSMS, run.Queued = summarize(toSMS), summarize(toQueue)
	return run, nil
}

// firstQueued reads when each incident's first offer text was written to
// the outbox for the sender, by incident reference.
func (b *bench) firstQueued(ctx context.Context, since time.Time) (map[string]int64, error) {
	rows, err := b.svc.DB.Query(ctx, `SELECT incident_id, MIN(created_at) FROM sms_outbox
		WHERE community_id = $1 AND purpose = 'offer' AND created_at >= $2 GROUP BY incident_id`, b.community, since.UnixMilli()-1)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var at int64
		if err := rows.Scan(&id, &at); err != nil {
			return nil, err
		}
		out[responders.Ref(id)] = at
	}
	return out, rows.Err()
}

// massCall presses one flood where the masscall volunteers live and times
// until each of them has had a text about it.
func (b *bench) massCall(ctx context.Context, smsRate float64, twilioRPS int) error {
	run := &MassCallRun{Volunteers: b.o.MassCall, TwilioRPS: twilioRPS, SMSRate: smsRate,
		How: "one flood alarm; a community flood plan gives each of the volunteers' vulnerable neighbours a duty for the nearest flood-rescue volunteer (assignee skill:flood_rescue, for_each vulnerable_residents_in_area)"}
	b.rep.MassCall = run
	if b.o.MassCall == 0 {
		return nil
	}
	tokens, _, err := b.residents(ctx, "flood", 1)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	reached := map[string]time.Time{}
	var texts int
	b.setOnText(func(m twiliofake.Message) {
		mu.Lock()
		defer mu.Unlock()
		texts++
		if _, ok := reached[m.To]; !ok && strings.HasPrefix(m.To, massPhonePrefix) {
			reached[m.To] = m.At
		}
	})
	errs0 := counterTotal(b.svc, "shouwang_sms_provider_errors_total")
	body, _ := json.Marshal(map[string]any{"key": "flood", "type": "flood", "location": b.massSpot, "address": "地下车库"})
	t0 := time.Now()
	status, err := b.client.post(ctx, b.base+"/v1/alarms", tokens[0], body)
	if err != nil || status != 202 {
		return fmt.Errorf("flood alarm: status %d: %v", status, err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		mu.Lock()
		n := len(reached)
		mu.Unlock()
		if n >= b.o.MassCall {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	run.Reached, run.Texts = len(reached), texts
	var firstAt, lastAt time.Time
	for _, at := range reached {
		if firstAt.IsZero() || at.Before(firstAt) {
			firstAt = at
		}
		if at.After(lastAt) {
			lastAt = at
		}
	}
	if !firstAt.IsZero() {
		run.FirstMs = ms(firstAt.Sub(t0))
	}
	if run.Reached >= b.o.MassCall {
		run.AllMs = ms(lastAt.Sub(t0))
	}
	run.Refused = int64(counterTotal(b.svc, "shouwang_sms_provider_errors_total") - errs0)
	return nil
}

// storm sends the storm's presses for one fire from as many residents
// around one spot, and waits until every accepted press is a
// report of an incident.
func (b *bench) storm(ctx context.Context) error {
	n := b.o.StormPresses
	run := &StormRun{Presses: n, WindowS: b.o.StormWindow.Seconds()}
	b.rep.Storm = run
	if n == 0 {
		return nil
	}
	prefix := "storm" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	tokens, _, err := b.residents(ctx, prefix, n)
	if err != nil {
		return err
	}
	ps := make([]press, n)
	start := time.Now().Add(50 * time.Millisecond)
	interval := b.o.StormWindow / time.Duration(n)
	for i := range n {
		// Within 35 m each way of the spot, so any two presses are closer
		// than fire's 150 m correlation radius whichever came first.
		where := geo.Offset(b.stormSpot, float64(i%21-10)*3.5, float64(i/21%21-10)*3.5)
		body, _ := json.Marshal(map[string]any{"key": "fire", "type": "fire", "location": where, "address": "5号楼"})
		ps[i] = press{due: start.Add(time.Duration(i) * interval), token: tokens[i], body: body}
	}
	fmt.Fprintf(b.stderr, "storm: %d presses in %s…\n", n, b.o.StormWindow)
	res := b.drive(ctx, ps)
	t := tallyPresses(res, start)
	run.Accepted, run.Errors, run.Throughput, run.Accept = t.accepted, t.errors, t.throughput, t.accept
	lastDone := t.lastDone
	// Caught up when every accepted press is attached to an incident and
	// the incidents count them all as reports.
	deadline := time.Now().Add(120 * time.Second)
	for {
		if err := b.stormState(ctx, prefix, run); err != nil {
			return err
		}
		if run.Attached >= run.Accepted && run.Reports >= run.Accepted {
			run.CaughtUp = true
			run.LagMs = ms(time.Since(lastDone))
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			run.LagMs = ms(time.Since(lastDone))
			return nil
		}
		// Often enough for the lag's resolution, seldom enough that the
		// counting does not slow the pipeline it measures.
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *bench) stormState(ctx context.Context, prefix string, run *StormRun) error {
	err := b.svc.DB.QueryRow(ctx, `SELECT COUNT(*), COUNT(DISTINCT incident_id) FROM alarms
		WHERE community_id = $1 AND resident >= $2 AND resident < $3 AND incident_id <> ''`, b.community, prefix+"-", prefix+".").Scan(&run.Attached, &run.Incidents)
	if err != nil {
		return fmt.Errorf("count storm alarms: %w", err)
	}
	var reports *int64
	err = b.svc.DB.QueryRow(ctx, `SELECT SUM(reports) FROM incidents WHERE id IN (SELECT DISTINCT incident_id FROM alarms
		WHERE community_id = $1 AND resident >= $2 AND resident < $3 AND incident_id <> '')`, b.community, prefix+"-", prefix+".").Scan(&reports)
	if err != nil {
		return fmt.Errorf("count storm reports: %w", err)
	}
	run.Reports = 0
	if reports != nil {
		run.Reports = int(*reports)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// procStatusMB reads a memory line (VmRSS, VmHWM) of /proc/self/status;
// 0 where there is none (not Linux).
func procStatusMB(field string) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return round3(kb / 1024)
		}
	}
	return 0
}

// sampleRSS keeps the highest VmRSS (kB) seen in peak until stopped.
func sampleRSS(peak *atomic.Int64) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if kb := int64(procStatusMB("VmRSS") * 1024); kb > peak.Load() {
				peak.Store(kb)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// printBench writes the report for people.
func printBench(w io.Writer, r *BenchReport) {
	fmt.Fprintf(w, "shouwang bench %s — store %s, NATS %s, GOMAXPROCS %d (%d CPUs), %d responders, %d workers\n",
		r.Date.Format(time.RFC3339), r.Store, r.NATS, r.GoMaxProcs, r.CPUs, r.Responders, r.Workers)
	fmt.Fprintf(w, "seeded in %.1fs, started in %.2fs; RSS after start %.0f MB, peak while serving %.0f MB, peak overall (VmHWM) %.0f MB\n\n",
		r.SeedSeconds, r.StartSeconds, r.RSSAfterStartMB, r.PeakServingRSSMB, r.PeakRSSMB)
	if r.SMSRate > 0 {
		fmt.Fprintf(w, "the service sends at most %g texts a second (--sms-rate) in the alarms and storm scenarios\n\n", r.SMSRate)
	}
	if len(r.Alarms) > 0 {
		fmt.Fprintf(w, "%-8s %-7s %-8s %-6s  %-30s  %-30s  %-30s  %s\n", "rate/s", "sent", "got/s", "errors",
			"accept p50/p95/p99/max ms", "to queued p50/p95/p99/max ms", "to Twilio p50/p95/p99/max ms", "no text")
		for _, a := range r.Alarms {
			fmt.Fprintf(w, "%-8g %-7d %-8.1f %-6d  %-30s  %-30s  %-30s  %d\n", a.OfferedRate, a.Sent, a.Throughput, a.Errors,
				fmtLatency(a.Accept), fmtLatency(a.Queued), fmtLatency(a.ToSMS), a.NoText)
			if a.NoText > 0 {
				fmt.Fprintf(w, "  at %g/s %d alarms had no offer text %s after the last was sent: the latencies cover only those that did\n",
					a.OfferedRate, a.NoText, benchDrain)
			}
		}
		fmt.Fprintln(w)
	}
	if m := r.MassCall; m != nil {
		all := "not all reached"
		if m.AllMs > 0 {
			all = fmt.Sprintf("all in %.0f ms", m.AllMs)
		}
		fmt.Fprintf(w, "masscall: %d/%d volunteers texted, first after %.0f ms, %s; Twilio fake %d req/s, service --sms-rate %g, %d provider errors\n\n",
			m.Reached, m.Volunteers, m.FirstMs, all, m.TwilioRPS, m.SMSRate, m.Refused)
	}
	if s := r.Storm; s != nil {
		fmt.Fprintf(w, "storm: %d presses (%d accepted, %d errors) in %.0fs → %d incident(s), %d reports, %d attached; caught up %v, %.0f ms after the last press; accept %s\n",
			s.Presses, s.Accepted, s.Errors, s.WindowS, s.Incidents, s.Reports, s.Attached, s.CaughtUp, s.LagMs, fmtLatency(s.Accept))
	}
}

func fmtLatency(l Latency) string {
	if l.N == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f/%.1f/%.1f/%.1f", l.P50, l.P95, l.P99, l.Max)
}

// counterTotal sums a counter of the service's metrics over its labels.
func counterTotal(svc *Service, name string) float64 {
	families, err := svc.Metrics.Registry.Gather()
	if err != nil {
		return 0
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			total += m.GetCounter().GetValue()
		}
	}
	return total
}

// httpClient posts alarms with a connection for each worker.
type httpClient struct{ c *http.Client }

func newHTTPClient(workers int) *httpClient {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = workers, workers
	return &httpClient{c: &http.Client{Transport: t, Timeout: 30 * time.Second}}
}

func (h *httpClient) post(ctx context.Context, url, token string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := h.c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func writeHeapProfile(file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	runtime.GC() // up to date with what is still in use
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("heap profile: %w", err)
	}
	return f.Close()
}
