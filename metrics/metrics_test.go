package metrics_test

import (
	"net/http"
	"testing"

	"github.com/shouwang/shouwang/metrics"
)

// An operator alerting on refused presses must tell a broken phone app
// (invalid), a lost token (denied) and a bus outage (unavailable) apart.
func TestAlarmResult(t *testing.T) {
	for status, want := range map[int]string{
		http.StatusAccepted:              metrics.AlarmAccepted,
		http.StatusBadRequest:            metrics.AlarmInvalid,
		http.StatusRequestEntityTooLarge: metrics.AlarmInvalid,
		http.StatusUnsupportedMediaType:  metrics.AlarmInvalid,
		http.StatusUnprocessableEntity:   metrics.AlarmInvalid,
		http.StatusUnauthorized:          metrics.AlarmDenied,
		http.StatusForbidden:             metrics.AlarmDenied,
		http.StatusServiceUnavailable:    metrics.AlarmUnavailable,
		http.StatusInternalServerError:   metrics.AlarmError,
	} {
		if got := metrics.AlarmResult(status); got != want {
			t.Errorf("AlarmResult(%d) = %q, want %q", status, got, want)
		}
	}
}
