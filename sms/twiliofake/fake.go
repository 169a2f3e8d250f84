// Package twiliofake is a fake of Twilio's Messages REST API for tests. It
// speaks the real wire format, so the real twilio-go client can be pointed
// at it (see Client) and code under test runs unchanged. Faults — errors,
// outages, slowness and rate limits — can be injected while a test runs.
package twiliofake

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Test credentials accepted by a Server. They have Twilio's shapes (AC + 32
// hex, 32 hex) because twilio-go rejects non-alphanumeric credentials.
const (
	AccountSID = "AC00000000000000000000000000fa4e"
	AuthToken  = "0123456789abcdef0123456789abcdef"
)

// Twilio error codes the fake answers with on its own.
const (
	codeAuth        = 20003 // authentication failed
	codeRateLimit   = 20429 // too many requests
	codeInvalidTo   = 21211 // invalid 'To' phone number
	codeMissingBody = 21602 // message body is required
	codeMissingFrom = 21603 // a 'From' phone number is required
	codeMissingTo   = 21604 // a 'To' phone number is required
	codeUnavailable = 20500 // internal server error
)

// Message is one text the fake accepted.
type Message struct {
	SID            string
	To             string
	From           string
	Body           string
	StatusCallback string
	At             time.Time
}

// Server is a running fake. All methods are safe for concurrent use.
type Server struct {
	// URL is the fake's base URL, e.g. http://127.0.0.1:41234.
	URL string

	srv       *httptest.Server
	opts      Options
	done      chan struct{} // closed by Close so delayed answers stop waiting
	closeOnce sync.Once

	mu       sync.Mutex
	msgs     []Message
	calls    []Call
	failTo   map[string]int // phone → Twilio error code for every text to it
	added    chan struct{}  // closed and replaced whenever a message is recorded
	failN    int
	failCode int
	failHTTP int
	down     int           // HTTP status answered to everything; 0 when up
	delay    time.Duration // before an answer
	late     time.Duration // after taking a text, before saying so
	perSec   int           // 0: no rate limit
	recent   []time.Time   // accepted requests within the last second
	lists    int           // message list reads
	attempts []Attempt     // every request to send a text, answered or not
}

// Options configure a fake started with NewServer.
type Options struct {
	// OnMessage, if set, is called with every text the fake accepts, as it
	// accepts it (from the request's goroutine): a load generator times
	// texts this way instead of polling Messages.
	OnMessage func(Message)
	// Forget keeps accepted texts out of Messages, so a long benchmark's
	// fake does not grow with every text. Use it with OnMessage.
	Forget bool
}

// New starts a fake that is closed when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := NewServer(Options{})
	t.Cleanup(s.Close)
	return s
}

// NewServer starts a fake outside a test (the benchmark command); the
// caller closes it.
func NewServer(opts Options) *Server {
	s := &Server{
		done:  make(chan struct{}),
		added: make(chan struct{}),
		opts:  opts,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2010-04-01/Accounts/{AccountSid}/Messages.json", s.createMessage)
	mux.HandleFunc("GET /2010-04-01/Accounts/{AccountSid}/Messages.json", s.listMessages)
	mux.HandleFunc("POST /2010-04-01/Accounts/{AccountSid}/Calls.json", s.createCall)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
	})
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	return s
}

// Close stops the fake; answers still waiting on SetDelay give up.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		s.srv.Close()
	})
}

// Client returns an HTTP client that sends every request for a twilio.com
// host (api.twilio.com, or an edge/region variant) to the fake instead.
// Requests to any other host fail, so a test can never reach the network.
func (s *Server) Client() *http.Client {
	target, _ := url.Parse(s.URL)
	base := s.srv.Client().Transport
	if t, ok := base.(*http.Transport); ok {
		// The default of 2 idle connections a host makes a busy sender
		// open a connection a text, and a long benchmark runs out of ports.
		t = t.Clone()
		t.MaxIdleConnsPerHost = 64
		base = t
	}
	return &http.Client{
		Transport: rewriteTransport{target: target, base: base},
		// Mirrors twilio-go's default client: redirects are answers.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type rewriteTransport struct {
	target *url.URL
	base   http.RoundTripper
}

func (rt rewriteTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	host := req.URL.Hostname()
	if host != "twilio.com" && !strings.HasSuffix(host, ".twilio.com") {
		return nil, fmt.Errorf("twiliofake: refusing request to %s: only twilio.com hosts are faked", req.URL.Host)
	}
	// RoundTrippers must not modify the caller's request.
	req = req.Clone(req.Context())
	req.URL.Scheme = rt.target.Scheme
	req.URL.Host = rt.target.Host
	req.Host = rt.target.Host
	return rt.base.RoundTrip(req)
}

// Messages returns every accepted message, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// MessagesTo returns the accepted messages sent to phone, oldest first.
func (s *Server) MessagesTo(phone string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.msgs {
		if m.To == phone {
			out = append(out, m)
		}
	}
	return out
}

// WaitFor waits until at least n messages were accepted and returns all of
// them. It fails the test if that takes longer than timeout, so it must be
// called from the test's goroutine.
func (s *Server) WaitFor(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	return waitFor(s, t, n, timeout, "messages", func() []Message { return s.msgs })
}

// waitFor waits until list (read under the lock) has at least n items.
func waitFor[T any](s *Server, t testing.TB, n int, timeout time.Duration, what string, list func() []T) []T {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		got, added := slices.Clone(list()), s.added
		s.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-added:
		case <-deadline.C:
			t.Fatalf("twiliofake: waited %v for %d %s, got %d", timeout, n, what, len(got))
			return nil
		}
	}
}

// FailNext makes the next n authenticated requests fail with HTTP status
// and Twilio error code twilioCode, e.g. FailNext(1, 400, 21211) for an
// invalid number or FailNext(2, 503, 20500) for a brief outage.
func (s *Server) FailNext(n int, status int, twilioCode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failHTTP, s.failCode = n, status, twilioCode
}

// SetDown makes every request fail with HTTP status until SetUp.
func (s *Server) SetDown(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = status
}

// Attempt is one request to send a text as it reached the fake, before
// any fault was applied: a test counts a sender's retries with them.
type Attempt struct {
	To   string
	Body string
	At   time.Time
}

// Attempts returns every request to send a text, oldest first, whether it
// was accepted, failed or left hanging.
func (s *Server) Attempts() []Attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.attempts)
}

// SetUp ends an outage started by SetDown.
func (s *Server) SetUp() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = 0
}

// SetDelay makes every answer wait d first. A client that gives up during
// the wait (a timeout) leaves no message behind, as if the request never
// reached Twilio. A d longer than the client's timeout is a hung Twilio.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// SetLateAnswer makes the fake take each text and only then wait d before
// answering: a client that times out meanwhile does not know the text went
// out, as happens with a real provider.
func (s *Server) SetLateAnswer(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.late = d
}

// SetRateLimit answers 429 (code 20429) to requests beyond perSecond within
// any one-second window. Zero or less removes the limit.
func (s *Server) SetRateLimit(perSecond int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.perSec = max(perSecond, 0)
	s.recent = nil
}

// admit does what Twilio does before looking at a request's resource:
// the configured delay, authentication, the form, injected faults and the
// rate limit. It answers the request itself and returns false when the
// request must go no further.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (time.Time, bool) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/Messages.json") && r.ParseForm() == nil {
		s.mu.Lock()
		s.attempts = append(s.attempts, Attempt{To: r.PostForm.Get("To"), Body: r.PostForm.Get("Body"), At: time.Now()})
		s.mu.Unlock()
	}
	s.mu.Lock()
	delay := s.delay
	s.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return time.Time{}, false
		case <-s.done:
			t.Stop()
			return time.Time{}, false
		}
	}

	user, pass, ok := r.BasicAuth()
	if !ok || user != AccountSID || pass != AuthToken || r.PathValue("AccountSid") != AccountSID {
		writeError(w, http.StatusUnauthorized, codeAuth, "Authenticate")
		return time.Time{}, false
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, 20001, "Invalid form body: "+err.Error())
		return time.Time{}, false
	}

	// Faults and the rate limit are decided under one lock so concurrent
	// senders see an exact count of failures.
	s.mu.Lock()
	now := time.Now()
	if status := s.down; status != 0 {
		s.mu.Unlock()
		writeError(w, status, codeFor(status), "Service unavailable")
		return time.Time{}, false
	}
	if s.failN > 0 {
		s.failN--
		status, code := s.failHTTP, s.failCode
		s.mu.Unlock()
		writeError(w, status, code, "Injected failure")
		return time.Time{}, false
	}
	if s.perSec > 0 {
		s.recent = slices.DeleteFunc(s.recent, func(at time.Time) bool { return now.Sub(at) >= time.Second })
		if len(s.recent) >= s.perSec {
			s.mu.Unlock()
			writeError(w, http.StatusTooManyRequests, codeRateLimit, "Too Many Requests")
			return time.Time{}, false
		}
		s.recent = append(s.recent, now)
	}
	s.mu.Unlock()
	return now, true
}

// FailTo makes every text to phone fail with HTTP 400 and the Twilio
// error code (21211 not a valid number, 21610 unsubscribed…), as for a
// number that cannot be reached.
func (s *Server) FailTo(phone string, twilioCode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failTo == nil {
		s.failTo = map[string]int{}
	}
	s.failTo[phone] = twilioCode
}

func (s *Server) createMessage(w http.ResponseWriter, r *http.Request) {
	now, ok := s.admit(w, r)
	if !ok {
		return
	}
	m := Message{
		To:             r.PostForm.Get("To"),
		From:           r.PostForm.Get("From"),
		Body:           r.PostForm.Get("Body"),
		StatusCallback: r.PostForm.Get("StatusCallback"),
	}
	s.mu.Lock()
	code, refused := s.failTo[m.To]
	s.mu.Unlock()
	if refused {
		writeError(w, http.StatusBadRequest, code, "Injected failure for "+m.To)
		return
	}
	switch {
	case m.To == "":
		writeError(w, http.StatusBadRequest, codeMissingTo, "A 'To' phone number is required.")
		return
	case !e164.MatchString(m.To):
		writeError(w, http.StatusBadRequest, codeInvalidTo, fmt.Sprintf("The 'To' number %s is not a valid phone number.", m.To))
		return
	case m.From == "":
		writeError(w, http.StatusBadRequest, codeMissingFrom, "A 'From' phone number is required.")
		return
	case m.Body == "":
		writeError(w, http.StatusBadRequest, codeMissingBody, "Message body is required.")
		return
	}

	m.SID = newSID("SM")
	m.At = now
	s.mu.Lock()
	if !s.opts.Forget {
		s.msgs = append(s.msgs, m)
	}
	close(s.added)
	s.added = make(chan struct{})
	s.mu.Unlock()
	if s.opts.OnMessage != nil {
		s.opts.OnMessage(m)
	}
	s.mu.Lock()
	late := s.late
	s.mu.Unlock()
	if late > 0 {
		select {
		case <-time.After(late):
		case <-r.Context().Done():
			return // the client gave up, not knowing the text was taken
		case <-s.done:
			return
		}
	}
	writeJSON(w, http.StatusCreated, messageResource(m))
}

// listMessages answers Twilio's message list: newest first, filtered by
// To and From, one page of PageSize (default 50).
func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.admit(w, r); !ok {
		return
	}
	size := 50
	if n, err := strconv.Atoi(r.Form.Get("PageSize")); err == nil && n > 0 {
		size = min(n, 1000)
	}
	to, from := r.Form.Get("To"), r.Form.Get("From")
	s.mu.Lock()
	s.lists++
	list := []map[string]any{}
	for i := len(s.msgs) - 1; i >= 0 && len(list) < size; i-- {
		m := s.msgs[i]
		if (to == "" || m.To == to) && (from == "" || m.From == from) {
			list = append(list, messageResource(m))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"messages": list, "page": 0, "page_size": size, "start": 0, "end": max(len(list)-1, 0),
		"first_page_uri": r.URL.RequestURI(), "next_page_uri": nil, "previous_page_uri": nil, "uri": r.URL.RequestURI(),
	})
}

// Lists returns how many times the message list was read: a sender reads
// it only when it cannot tell whether Twilio took a text.
func (s *Server) Lists() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists
}

// e164 is what Twilio accepts as a phone number: + and up to 15 digits.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)

// messageResource is the JSON Twilio answers a created message with.
func messageResource(m Message) map[string]any {
	date := m.At.UTC().Format(time.RFC1123Z)
	uri := "/2010-04-01/Accounts/" + AccountSID + "/Messages/" + m.SID
	return map[string]any{
		"account_sid":           AccountSID,
		"api_version":           "2010-04-01",
		"body":                  m.Body,
		"date_created":          date,
		"date_sent":             nil,
		"date_updated":          date,
		"direction":             "outbound-api",
		"error_code":            nil,
		"error_message":         nil,
		"from":                  m.From,
		"messaging_service_sid": nil,
		"num_media":             "0",
		"num_segments":          "1",
		"price":                 nil,
		"price_unit":            "USD",
		"sid":                   m.SID,
		"status":                "queued",
		"subresource_uris":      map[string]string{"media": uri + "/Media.json"},
		"to":                    m.To,
		"uri":                   uri + ".json",
	}
}

// writeError answers with Twilio's error body, which twilio-go decodes into
// a *client.TwilioRestError.
func writeError(w http.ResponseWriter, status, code int, message string) {
	writeJSON(w, status, map[string]any{
		"code":      code,
		"message":   message,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code),
		"status":    status,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func codeFor(status int) int {
	if status == http.StatusTooManyRequests {
		return codeRateLimit
	}
	return codeUnavailable
}

func newSID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return prefix + hex.EncodeToString(b[:])
}

// Sign returns the X-Twilio-Signature Twilio would send when calling rawURL
// with the form params: base64 of HMAC-SHA1, keyed with authToken, over rawURL
// followed by each key (sorted) and its value. A key with several values
// contributes each of them, sorted, as Twilio's own libraries do.
func Sign(authToken, rawURL string, params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)

	var b strings.Builder
	b.WriteString(rawURL)
	for _, k := range keys {
		vals := slices.Sorted(slices.Values(params[k]))
		for _, v := range vals {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Call is one voice call the fake accepted.
type Call struct {
	SID            string
	To             string
	From           string
	Twiml          string
	StatusCallback string
	At             time.Time
}

func (s *Server) createCall(w http.ResponseWriter, r *http.Request) {
	now, ok := s.admit(w, r)
	if !ok {
		return
	}
	c := Call{
		To:             r.PostForm.Get("To"),
		From:           r.PostForm.Get("From"),
		Twiml:          r.PostForm.Get("Twiml"),
		StatusCallback: r.PostForm.Get("StatusCallback"),
	}
	switch {
	case c.To == "" || !e164.MatchString(c.To):
		// Twilio answers 21217 ("Phone number does not appear to be valid").
		writeError(w, http.StatusBadRequest, 21217, fmt.Sprintf("Phone number %s does not appear to be valid", c.To))
		return
	case c.From == "":
		writeError(w, http.StatusBadRequest, codeMissingFrom, "A 'From' phone number is required.")
		return
	case c.Twiml == "" && r.PostForm.Get("Url") == "":
		writeError(w, http.StatusBadRequest, 21205, "Url or Twiml is required.")
		return
	}
	c.SID, c.At = newSID("CA"), now
	s.mu.Lock()
	s.calls = append(s.calls, c)
	close(s.added)
	s.added = make(chan struct{})
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{
		"sid": c.SID, "account_sid": AccountSID, "to": c.To, "from": c.From, "status": "queued",
		"direction": "outbound-api", "api_version": "2010-04-01", "date_created": now.UTC().Format(time.RFC1123Z),
		"uri": "/2010-04-01/Accounts/" + AccountSID + "/Calls/" + c.SID + ".json",
	})
}

// Calls returns every accepted call, oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallsTo returns the accepted calls to one phone.
func (s *Server) CallsTo(phone string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.To == phone {
			out = append(out, c)
		}
	}
	return out
}

// WaitForCalls waits until at least n calls were accepted and returns them;
// it fails the test after timeout.
func (s *Server) WaitForCalls(t testing.TB, n int, timeout time.Duration) []Call {
	t.Helper()
	return waitFor(s, t, n, timeout, "calls", func() []Call { return s.calls })
}
