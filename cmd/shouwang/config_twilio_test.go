package main

import (
	"strings"
	"testing"
)

// --twilio-api-url takes a base URL and nothing else: a typo must stop the
// start, not send every alert to the wrong place.
func TestConfigTwilioAPIURL(t *testing.T) {
	for _, tc := range []struct {
		value string
		ok    bool
	}{
		{"", true},
		{"https://twilio-proxy.internal:8443", true},
		{"http://127.0.0.1:41234/", true},
		{"twilio-proxy.internal", false},
		{"ftp://twilio-proxy.internal", false},
		{"https://twilio-proxy.internal/2010-04-01", false},
		{"https://", false},
	} {
		cfg, err := parseConfig("serve", []string{"--twilio-api-url", tc.value})
		if (err == nil) != tc.ok {
			t.Errorf("--twilio-api-url %q: err %v, want ok=%v", tc.value, err, tc.ok)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), "--twilio-api-url") {
			t.Errorf("--twilio-api-url %q: error %q does not name the flag", tc.value, err)
		}
		if tc.ok && cfg.TwilioAPIURL != tc.value {
			t.Errorf("--twilio-api-url %q: config has %q", tc.value, cfg.TwilioAPIURL)
		}
	}
	t.Setenv("SHOUWANG_TWILIO_API_URL", "https://from-env.internal")
	if cfg, err := parseConfig("serve", nil); err != nil || cfg.TwilioAPIURL != "https://from-env.internal" {
		t.Errorf("SHOUWANG_TWILIO_API_URL: %q, %v", cfg.TwilioAPIURL, err)
	}
}
