package twiliofake

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twilio/twilio-go/client"
)

// Vectors published in Twilio's own signature-validation snippets
// (TwilioDevEd/api-snippets), so Sign is checked against Twilio, not
// against itself.
func TestSignMatchesTwilioPublishedSignatures(t *testing.T) {
	const hook = "https://mycompany.com/myapp.php?foo=1&bar=2"
	for _, tt := range []struct {
		caller, want string
	}{
		{"+14158675309", "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
		{"+14158675310", "GvWf1cFY/Q7PnoempGyD5oXAezc="},
	} {
		params := url.Values{
			"CallSid": {"CA1234567890ABCDE"},
			"Caller":  {tt.caller},
			"Digits":  {"1234"},
			"From":    {tt.caller},
			"To":      {"+18005551212"},
		}
		if got := Sign("12345", hook, params); got != tt.want {
			t.Errorf("Sign(caller %s) = %s, want %s", tt.caller, got, tt.want)
		}
		flat := map[string]string{}
		for k, v := range params {
			flat[k] = v[0]
		}
		v := client.NewRequestValidator("12345")
		if !v.Validate(hook, flat, Sign("12345", hook, params)) {
			t.Errorf("twilio-go rejects Sign's output for caller %s", tt.caller)
		}
	}
}

// post creates a message the way twilio-go does, through the fake's client.
func post(c *http.Client, sid, token string, form url.Values) (status int, err error) {
	req, err := http.NewRequest(http.MethodPost,
		"https://api.twilio.com/2010-04-01/Accounts/"+sid+"/Messages.json", strings.NewReader(form.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(sid, token)
	res, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

func TestServerRejectsWrongCredentials(t *testing.T) {
	s := New(t)
	form := url.Values{"To": {"+8613800138000"}, "From": {"+15005550006"}, "Body": {"x"}}
	if status, err := post(s.Client(), AccountSID, "wrong", form); err != nil || status != http.StatusUnauthorized {
		t.Errorf("status = %d (%v), want 401", status, err)
	}
	if n := len(s.Messages()); n != 0 {
		t.Errorf("recorded %d messages from a wrong token", n)
	}
}

func TestWaitForSeesConcurrentSends(t *testing.T) {
	s := New(t)
	c := s.Client()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			form := url.Values{"To": {"+8613800138000"}, "From": {"+15005550006"}, "Body": {"x"}}
			if status, err := post(c, AccountSID, AuthToken, form); err != nil || status != http.StatusCreated {
				t.Errorf("status = %d (%v), want 201", status, err)
			}
		})
	}
	msgs := s.WaitFor(t, 20, 5*time.Second)
	wg.Wait()
	seen := map[string]bool{}
	for _, m := range msgs {
		if seen[m.SID] {
			t.Errorf("SID %s given twice", m.SID)
		}
		seen[m.SID] = true
	}
}

func TestClientRefusesNonTwilioHosts(t *testing.T) {
	s := New(t)
	if _, err := s.Client().Get("https://example.org/"); err == nil {
		t.Error("request to example.org went through")
	}
}
