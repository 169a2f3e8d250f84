// Package sms sends text messages to responders and organisations and checks
// the webhooks that SMS providers call back with.
package sms

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"
)

// Outgoing is one text handed to a provider: the rendered body for
// providers that take free text (Twilio), and the template name, locale and
// parameters for providers that send by a registered template id (as
// Chinese carriers require).
type Outgoing struct {
	To             string // E.164
	Body           string
	Template       string
	Locale         string
	Params         map[string]string
	StatusCallback string // optional absolute URL for delivery receipts
}

// Provider hands one text to an SMS provider and returns the provider's message id.
type Provider interface {
	Send(ctx context.Context, m Outgoing) (sid string, err error)
}

// SentFinder is a provider that can say whether it already took a text.
// A process that dies after handing a text over and before recording it
// leaves the text looking unsent; the sender asks before sending it again,
// so the recipient does not get it twice.
type SentFinder interface {
	// FindSent returns the provider's id of a text to with body created at
	// or after since, or "" if there is none.
	FindSent(ctx context.Context, to, body string, since time.Time) (sid string, err error)
}

// PermanentError marks a send that must not be retried (invalid number,
// blocked recipient...): retrying would fail the same way and only delay
// the fallback to another responder.
type PermanentError struct {
	Code int // provider error code, e.g. Twilio 21211
	Err  error
}

func (e *PermanentError) Error() string {
	return fmt.Sprintf("permanent sms failure (code %d): %v", e.Code, e.Err)
}

func (e *PermanentError) Unwrap() error { return e.Err }

// UnknownOutcomeError marks a send that got no answer (a timeout, a
// dropped connection): the provider may have taken the text. The sender
// asks the provider before trying it again, so nobody is texted twice.
type UnknownOutcomeError struct{ Err error }

func (e *UnknownOutcomeError) Error() string { return e.Err.Error() }
func (e *UnknownOutcomeError) Unwrap() error { return e.Err }

// IsPermanent reports whether err, or an error it wraps, is a *PermanentError.
// Every other error is worth retrying later.
func IsPermanent(err error) bool {
	var pe *PermanentError
	return errors.As(err, &pe)
}

// twilioSendTimeout bounds one REST call. twilio-go takes no context, so
// without this bound a hung connection would stall the outbox worker forever.
const twilioSendTimeout = 10 * time.Second

// Twilio sends texts through Twilio's Programmable Messaging REST API.
// It is safe for concurrent use.
type Twilio struct {
	accountSID string
	authToken  string
	from       string
	http       *http.Client
	apiURL     *url.URL // nil: Twilio's own hosts
}

// TwilioOption configures a Twilio provider.
type TwilioOption func(*Twilio)

// WithHTTPClient makes the provider send its requests through c. Tests use
// it to reach a fake server (twilio-go has no base-URL option, so c's
// transport has to redirect api.twilio.com itself).
func WithHTTPClient(c *http.Client) TwilioOption {
	return func(t *Twilio) { t.http = c }
}

// WithAPIURL sends every request twilio-go makes to a twilio.com host
// (api.twilio.com, or an edge/region variant) to base instead: a staging
// proxy, or a fake Twilio in tests. twilio-go has no base-URL option, so
// the host is rewritten in the transport. base is scheme://host[:port]; its
// path, if any, is ignored.
func WithAPIURL(base *url.URL) TwilioOption {
	return func(t *Twilio) { t.apiURL = base }
}

// NewTwilio returns a provider that sends from the number (or sender id)
// from, authenticating as accountSID with authToken.
func NewTwilio(accountSID, authToken, from string, opts ...TwilioOption) *Twilio {
	t := &Twilio{
		accountSID: accountSID,
		authToken:  authToken,
		from:       from,
		http: &http.Client{
			// Like twilio-go's own default: a redirect from the API is an
			// answer to report, not to follow with our credentials.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	for _, o := range opts {
		o(t)
	}
	return t
}

// Send hands m to Twilio and returns the message SID. Errors wrapping a
// *PermanentError must not be retried; all others may be.
func (t *Twilio) Send(ctx context.Context, m Outgoing) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("twilio send: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, twilioSendTimeout)
	defer cancel()

	params := &openapi.CreateMessageParams{}
	params.SetTo(m.To)
	params.SetFrom(t.from)
	params.SetBody(m.Body)
	if m.StatusCallback != "" {
		params.SetStatusCallback(m.StatusCallback)
	}

	msg, err := t.api(ctx).CreateMessage(params)
	if err != nil {
		return "", classifyTwilioError(err)
	}
	if msg.Sid == nil || *msg.Sid == "" {
		// Twilio accepted something but we cannot track it; a retry may
		// duplicate the text, which is better than never knowing its fate.
		return "", errors.New("twilio send: response has no message sid")
	}
	return *msg.Sid, nil
}

// FindSent looks among the latest texts Twilio took for this phone from
// our number for one with this body created at or after since, and returns
// its SID, or "" if there is none.
func (t *Twilio) FindSent(ctx context.Context, to, body string, since time.Time) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("twilio list: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, twilioSendTimeout)
	defer cancel()
	params := &openapi.ListMessageParams{}
	params.SetTo(to)
	params.SetFrom(t.from)
	// One page of Twilio's largest size, newest first: an emergency
	// center's duty phone can get hundreds of texts in minutes. A date
	// filter would be narrower, but Twilio filters on the sent date, which
	// a text still queued has not got. Were the text older than the whole
	// page, it would go out again: a duplicate rather than a lost alert.
	params.SetPageSize(1000)
	page, err := t.api(ctx).PageMessage(params, "", "")
	if err != nil {
		return "", fmt.Errorf("twilio list: %w", err)
	}
	// Twilio's dates have whole seconds.
	since = since.Truncate(time.Second)
	for _, m := range page.Messages {
		if m.Sid == nil || m.Body == nil || *m.Body != body || m.DateCreated == nil {
			continue
		}
		created, err := time.Parse(time.RFC1123Z, *m.DateCreated)
		if err != nil || created.Before(since) {
			continue
		}
		return *m.Sid, nil
	}
	return "", nil
}

// api builds a twilio-go service bound to ctx. twilio-go creates its requests
// with context.Background(), so the only way to make cancellation reach the
// connection is a transport that attaches ctx to each request. Building the
// service per call is cheap: connections stay pooled in the shared transport.
//
// Only rest/api/v2010 is imported, not the root twilio package, which pulls
// in every Twilio product and doubles the cold build time.
func (t *Twilio) api(ctx context.Context) *openapi.ApiService {
	hc := *t.http
	var base http.RoundTripper = t.http.Transport
	if t.apiURL != nil {
		base = hostTransport{target: t.apiURL, base: base}
	}
	hc.Transport = ctxTransport{ctx: ctx, base: base}
	c := &client.Client{
		Credentials: client.NewCredentials(t.accountSID, t.authToken),
		HTTPClient:  &hc,
	}
	c.SetAccountSid(t.accountSID)
	return openapi.NewApiServiceWithClient(c)
}

// ctxTransport ties each request to ctx as well as to whatever context the
// request already has (an http.Client timeout is one).
type ctxTransport struct {
	ctx  context.Context
	base http.RoundTripper
}

func (c ctxTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := c.base
	if base == nil {
		base = http.DefaultTransport
	}
	rctx, cancel := context.WithCancelCause(req.Context())
	// Not released here: the body is read after RoundTrip returns. Send
	// cancels c.ctx once twilio-go has decoded the response, which runs
	// this and frees rctx.
	context.AfterFunc(c.ctx, func() { cancel(context.Cause(c.ctx)) })
	return base.RoundTrip(req.WithContext(rctx))
}

// hostTransport sends requests for twilio.com hosts to target. Requests to
// other hosts (none today) pass unchanged.
type hostTransport struct {
	target *url.URL
	base   http.RoundTripper
}

func (h hostTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := h.base
	if base == nil {
		base = http.DefaultTransport
	}
	host := req.URL.Hostname()
	if host != "twilio.com" && !strings.HasSuffix(host, ".twilio.com") {
		return base.RoundTrip(req)
	}
	// A RoundTripper must not modify the caller's request.
	req = req.Clone(req.Context())
	req.URL.Scheme = h.target.Scheme
	req.URL.Host = h.target.Host
	req.Host = h.target.Host
	return base.RoundTrip(req)
}

// classifyTwilioError decides whether a failed send may be retried.
func classifyTwilioError(err error) error {
	var re *client.TwilioRestError
	if !errors.As(err, &re) {
		// Network errors, timeouts, cancellation, an unreadable error body
		// from a proxy: Twilio may be fine a moment later, and it may even
		// have taken the text.
		return &UnknownOutcomeError{Err: fmt.Errorf("twilio send: %w", err)}
	}
	switch {
	case re.Status == http.StatusTooManyRequests || re.Status >= 500:
		return fmt.Errorf("twilio send: %w", err)
	case re.Status == http.StatusUnauthorized || re.Code == codeInvalidUsername || re.Code == codeInvalidPassword:
		// Bad credentials fail every message, not this one: marking them
		// all permanent would silently drop alerts until someone fixed the
		// config. Retry instead, so they go out once it is fixed.
		return fmt.Errorf("twilio send: credentials rejected: %w", err)
	case re.Status >= 400 && re.Status < 500:
		return &PermanentError{Code: re.Code, Err: err}
	default:
		return fmt.Errorf("twilio send: %w", err)
	}
}

// twilio-go checks credentials locally and reports bad characters with these
// codes and status 400, although no request was made.
const (
	codeInvalidUsername = 21222
	codeInvalidPassword = 21224
)

// ValidTwilioSignature reports whether signature (the X-Twilio-Signature
// header) is Twilio's signature of a webhook call to url with the form
// params. url must be the public URL Twilio called, as configured in
// Twilio, not the one seen behind a proxy.
func ValidTwilioSignature(authToken, url string, params map[string]string, signature string) bool {
	if authToken == "" || signature == "" {
		// An empty token would make anyone able to sign.
		return false
	}
	v := client.NewRequestValidator(authToken)
	return v.Validate(url, params, signature)
}

// Compile-time checks that Twilio is a Provider and a SentFinder.
var (
	_ Provider   = (*Twilio)(nil)
	_ SentFinder = (*Twilio)(nil)
)
