package main

import (
	"flag"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/shouwang/shouwang/schedule"
)

// Config is everything serve needs, from flags and SHOUWANG_* variables
// (flags win). The README has the table.
type Config struct {
	HTTPAddr     string
	DataDir      string
	DatabaseURL  string
	NATSURL      string
	NATSReplicas int
	AdminToken   string
	PublicURL    string
	CAPSender    string // names us in CAP alerts; empty: the public URL's host
	WaveTimeout  time.Duration
	SMSRate      float64
	// SMSPerRecipient caps texts to one phone per minute (carriers block
	// senders that text one phone too often).
	SMSPerRecipient int
	// SMSIdenticalWindow: the same words are not texted twice to one phone
	// within it.
	SMSIdenticalWindow time.Duration
	// VoiceAfter: an offer unanswered this long becomes a call; 0 is off.
	VoiceAfter time.Duration
	// LinkTTL is how long a one-tap link in a text works.
	LinkTTL   time.Duration
	LogFormat string
	Demo      bool
	// ReadinessCron is when the weekly coverage summary is texted to each
	// emergency center (cron spec, Asia/Shanghai).
	ReadinessCron string
	// ScheduleGrace: a scheduled slot missed while down still fires on
	// start-up if it is at most this late.
	ScheduleGrace time.Duration
	// RemindersCron is when the daily training and certificate reminders
	// run (cron spec, Asia/Shanghai); empty turns them off.
	RemindersCron string
	// BudgetMonth is the month (2–12) communities draft next year's
	// budget in; the budgeting-season reminder goes out the month before.
	// 0 turns that reminder off.
	BudgetMonth int
	// SMSBulkRate caps reminders per second (at most SMSRate); they take
	// only what live texts leave. 0 is defaultSMSBulkRate.
	SMSBulkRate float64
	// APIRateIP and APIRateToken are requests per second allowed from one
	// address without a known credential and for one token or session,
	// with their bursts; 0 turns a limit off. TrustedProxies (addresses or
	// CIDRs) are the reverse proxies whose X-Forwarded-For names the client.
	APIRateIP         float64
	APIRateIPBurst    int
	APIRateToken      float64
	APIRateTokenBurst int
	TrustedProxies    []netip.Prefix
	// Clock drives scheduled jobs (not the rest of the service); tests set
	// a fake one. Nil is the wall clock.
	Clock schedule.Clock

	TwilioAccountSID string
	TwilioAuthToken  string
	TwilioFrom       string
	// TwilioAPIURL replaces https://api.twilio.com for texts and calls (a
	// staging proxy, or a fake Twilio for a test of the built binary);
	// empty is Twilio itself.
	TwilioAPIURL string
	// TwilioHTTPClient lets tests point the real twilio-go client at a fake.
	TwilioHTTPClient *http.Client
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// parseConfig reads flags for a subcommand over the environment.
func parseConfig(name string, args []string) (Config, error) {
	var c Config
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&c.HTTPAddr, "http-addr", env("SHOUWANG_HTTP_ADDR", "127.0.0.1:8080"), "address the HTTP API listens on")
	fs.StringVar(&c.DataDir, "data-dir", env("SHOUWANG_DATA_DIR", "./data"), "directory for the embedded database and JetStream files")
	fs.StringVar(&c.DatabaseURL, "database-url", env("SHOUWANG_DATABASE_URL", ""), "postgres:// URL; empty uses embedded SQLite")
	fs.StringVar(&c.NATSURL, "nats-url", env("SHOUWANG_NATS_URL", ""), "external NATS URL(s); empty embeds NATS in-process")
	replicas, err := strconv.Atoi(env("SHOUWANG_NATS_REPLICAS", "1"))
	if err != nil {
		return c, fmt.Errorf("SHOUWANG_NATS_REPLICAS: %w", err)
	}
	fs.IntVar(&c.NATSReplicas, "nats-replicas", replicas, "replicas of each JetStream stream (3 on a cluster)")
	fs.StringVar(&c.PublicURL, "public-url", env("SHOUWANG_PUBLIC_URL", ""), "base URL Twilio calls back (checks webhook signatures)")
	fs.StringVar(&c.TwilioAPIURL, "twilio-api-url", env("SHOUWANG_TWILIO_API_URL", ""),
		"base URL that replaces https://api.twilio.com for texts and calls, e.g. a staging proxy (empty: Twilio)")
	fs.StringVar(&c.CAPSender, "cap-sender", env("SHOUWANG_CAP_SENDER", ""), "sender of CAP alerts, a domain (default: the public URL's host)")
	wave, err := time.ParseDuration(env("SHOUWANG_WAVE_TIMEOUT", "60s"))
	if err != nil {
		return c, fmt.Errorf("SHOUWANG_WAVE_TIMEOUT: %w", err)
	}
	fs.DurationVar(&c.WaveTimeout, "wave-timeout", wave, "how long a wave of offers waits for an acceptance")
	rate, err := strconv.ParseFloat(env("SHOUWANG_SMS_RATE", "20"), 64)
	if err != nil {
		return c, fmt.Errorf("SHOUWANG_SMS_RATE: %w", err)
	}
	fs.Float64Var(&c.SMSRate, "sms-rate", rate, "texts per second handed to the provider, per replica")
	perRecipient, err := strconv.Atoi(env("SHOUWANG_SMS_PER_RECIPIENT", "6"))
	if err != nil {
		return c, fmt.Errorf("SHOUWANG_SMS_PER_RECIPIENT: %w", err)
	}
	fs.IntVar(&c.SMSPerRecipient, "sms-per-recipient", perRecipient, "texts per minute to one phone; more wait (0: no limit)")
	for _, d := range []struct {
		dst        *time.Duration
		flag, env  string
		def, usage string
	}{
		{&c.SMSIdenticalWindow, "sms-identical-window", "SHOUWANG_SMS_IDENTICAL_WINDOW", "1h", "the same text is not sent twice to one phone within this"},
		{&c.VoiceAfter, "voice-after", "SHOUWANG_VOICE_AFTER", "45s", "an offer unanswered this long becomes a call (0: no calls)"},
		{&c.LinkTTL, "link-ttl", "SHOUWANG_LINK_TTL", "12h", "how long a one-tap link in a text works"},
		{&c.ScheduleGrace, "schedule-grace", "SHOUWANG_SCHEDULE_GRACE", "1h", "a scheduled job missed while down fires on start-up if at most this late"},
	} {
		v, err := time.ParseDuration(env(d.env, d.def))
		if err != nil {
			return c, fmt.Errorf("%s: %w", d.env, err)
		}
		fs.DurationVar(d.dst, d.flag, v, d.usage)
	}
	fs.StringVar(&c.ReadinessCron, "readiness-cron", env("SHOUWANG_READINESS_CRON", "0 9 * * 1"),
		"when the weekly coverage summary is texted to each emergency center (cron, Asia/Shanghai)")
	fs.StringVar(&c.RemindersCron, "reminders-cron", env("SHOUWANG_REMINDERS_CRON", "0 9 * * *"),
		"when the daily training-budget and certificate reminders run (cron, Asia/Shanghai; empty: off)")
	budgetMonth, err := strconv.Atoi(env("SHOUWANG_BUDGET_MONTH", "10"))
	if err != nil {
		return c, fmt.Errorf("SHOUWANG_BUDGET_MONTH: %w", err)
	}
	fs.IntVar(&c.BudgetMonth, "budget-month", budgetMonth, "month (2-12) next year's budget is drafted in; reminded the month before (0: off)")
	bulkRate, err := strconv.ParseFloat(env("SHOUWANG_SMS_BULK_RATE", strconv.Itoa(defaultSMSBulkRate)), 64)
	if err != nil {
		return c, fmt.Errorf("SHOUWANG_SMS_BULK_RATE: %w", err)
	}
	fs.Float64Var(&c.SMSBulkRate, "sms-bulk-rate", bulkRate, "reminder texts per second, within --sms-rate and only what live texts leave")
	for _, r := range []struct {
		dst        *float64
		flag, env  string
		def, usage string
	}{
		{&c.APIRateIP, "api-rate-ip", "SHOUWANG_API_RATE_IP", "20", "API requests per second from one address without a known token or session (0: no limit)"},
		{&c.APIRateToken, "api-rate-token", "SHOUWANG_API_RATE_TOKEN", "10", "API requests per second for one token or session (0: no limit)"},
	} {
		v, err := strconv.ParseFloat(env(r.env, r.def), 64)
		if err != nil {
			return c, fmt.Errorf("%s: %w", r.env, err)
		}
		fs.Float64Var(r.dst, r.flag, v, r.usage)
	}
	for _, b := range []struct {
		dst        *int
		flag, env  string
		def, usage string
	}{
		{&c.APIRateIPBurst, "api-rate-ip-burst", "SHOUWANG_API_RATE_IP_BURST", "200", "requests one address may send at once before --api-rate-ip applies"},
		{&c.APIRateTokenBurst, "api-rate-token-burst", "SHOUWANG_API_RATE_TOKEN_BURST", "100", "requests one token or session may send at once before --api-rate-token applies"},
	} {
		v, err := strconv.Atoi(env(b.env, b.def))
		if err != nil {
			return c, fmt.Errorf("%s: %w", b.env, err)
		}
		fs.IntVar(b.dst, b.flag, v, b.usage)
	}
	proxies := fs.String("trusted-proxies", env("SHOUWANG_TRUSTED_PROXIES", ""),
		"reverse proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For names the client; empty: trust no header")
	fs.StringVar(&c.LogFormat, "log-format", env("SHOUWANG_LOG_FORMAT", "text"), "text or json")
	if name == "serve" {
		fs.BoolVar(&c.Demo, "demo", false, "load a demo community and print ready tokens")
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.AdminToken = os.Getenv("SHOUWANG_ADMIN_TOKEN")
	c.TwilioAccountSID = os.Getenv("TWILIO_ACCOUNT_SID")
	c.TwilioAuthToken = os.Getenv("TWILIO_AUTH_TOKEN")
	c.TwilioFrom = os.Getenv("TWILIO_FROM")
	if c.WaveTimeout < time.Second {
		return c, fmt.Errorf("--wave-timeout %s: at least 1s", c.WaveTimeout)
	}
	if c.LinkTTL < time.Minute {
		return c, fmt.Errorf("--link-ttl %s: at least 1m", c.LinkTTL)
	}
	if c.SMSRate <= 0 {
		return c, fmt.Errorf("--sms-rate must be positive")
	}
	if _, err := schedule.ParseSpec(c.ReadinessCron); err != nil {
		return c, fmt.Errorf("--readiness-cron: %w", err)
	}
	if c.RemindersCron != "" {
		if _, err := schedule.ParseSpec(c.RemindersCron); err != nil {
			return c, fmt.Errorf("--reminders-cron: %w", err)
		}
	}
	if c.BudgetMonth != 0 && (c.BudgetMonth < 2 || c.BudgetMonth > 12) {
		return c, fmt.Errorf("--budget-month %d: 2 (February) to 12 (December), or 0 for no reminder", c.BudgetMonth)
	}
	if c.SMSBulkRate <= 0 {
		return c, fmt.Errorf("--sms-bulk-rate must be positive")
	}
	if strings.ContainsAny(c.CAPSender, " \t\r\n,<&") {
		return c, fmt.Errorf("--cap-sender %q: CAP allows no spaces, commas, < or &", c.CAPSender)
	}
	if c.TwilioAPIURL != "" {
		if _, err := c.twilioAPIURL(); err != nil {
			return c, err
		}
	}
	if c.APIRateIP < 0 || c.APIRateToken < 0 || c.APIRateIPBurst < 1 || c.APIRateTokenBurst < 1 {
		return c, fmt.Errorf("--api-rate-ip and --api-rate-token must be 0 (off) or more, their bursts at least 1")
	}
	if c.TrustedProxies, err = parseProxies(*proxies); err != nil {
		return c, fmt.Errorf("--trusted-proxies: %w", err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return c, fmt.Errorf("--log-format %q: text or json", c.LogFormat)
	}
	return c, nil
}

// parseProxies reads a comma-separated list of IPs and CIDRs.
func parseProxies(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an IP nor a CIDR", f)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// defaultSMSBulkRate is reminders per second unless configured: a day's
// reminders for a community are a few hundred texts at most.
const defaultSMSBulkRate = 2

// twilioConfigured reports whether real texts go out.
func (c Config) twilioConfigured() bool {
	return c.TwilioAccountSID != "" && c.TwilioAuthToken != "" && c.TwilioFrom != ""
}

// twilioAPIURL parses --twilio-api-url: an http or https URL with a host
// and nothing after it but an optional "/".
func (c Config) twilioAPIURL() (*url.URL, error) {
	u, err := url.Parse(c.TwilioAPIURL)
	if err != nil {
		return nil, fmt.Errorf("--twilio-api-url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
		return nil, fmt.Errorf("--twilio-api-url %q: want scheme://host[:port], e.g. https://twilio-proxy.internal:8443", c.TwilioAPIURL)
	}
	return u, nil
}
