package api

import (
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"

	"github.com/shouwang/shouwang/metrics"
)

// alarmTypeKey is the fiber local where postAlarm leaves the alarm's
// checked type for the alarm counter.
const alarmTypeKey = "shouwang.alarm_type"

// routeMetrics serves GET /metrics and counts every answer of POST
// /v1/alarms. It is registered before the /v1 group, so refusals by
// authentication are counted too.
//
// /metrics asks for no token, like /healthz: Prometheus scrapes carry none,
// and the metrics hold counts only, labelled by incident type, outcome and
// consumer, never a person, a phone number, an incident or a community. A
// deployment whose API port is public blocks /metrics at its proxy.
func (s *server) routeMetrics(app *fiber.App) {
	if s.Metrics == nil {
		return
	}
	app.Get("/metrics", adaptor.HTTPHandler(s.Metrics.Handler(s.Log)))
	app.Post("/v1/alarms", s.countAlarm)
}

// countAlarm counts an answer of POST /v1/alarms by the alarm's type (when
// it got as far as being checked) and the status the client gets.
func (s *server) countAlarm(c *fiber.Ctx) error {
	err := c.Next()
	status := c.Response().StatusCode()
	if err != nil {
		status, _ = toResponse(err)
	}
	typ, ok := c.Locals(alarmTypeKey).(string)
	if !ok {
		typ = metrics.UnknownType
	}
	s.Metrics.AlarmReceived(typ, metrics.AlarmResult(status))
	return err
}
