package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shouwang/shouwang/events"
)

// BusStats is what the scrape-time collector reads from the event bus.
type BusStats interface {
	ConsumerLag(ctx context.Context) ([]events.Lag, error)
	DeadLetterCounts(ctx context.Context) (map[string]uint64, error)
}

// WatchBus registers a collector that asks the bus at every scrape how far
// each durable consumer is behind and how many dead letters are kept.
// JetStream already keeps these numbers, so nothing is counted in between.
func (s *Set) WatchBus(bus BusStats) {
	s.Registry.MustRegister(&busCollector{set: s, bus: bus})
}

// busCollector reads JetStream at scrape time.
type busCollector struct {
	set *Set
	bus BusStats
}

// scrapeTimeout bounds the JetStream requests of one scrape, well inside
// Prometheus's default scrape timeout of 10 s.
const scrapeTimeout = 3 * time.Second

func (c *busCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.set.consumerPending
	ch <- c.set.consumerAckPending
	ch <- c.set.deadLetterStored
}

// Collect reports what it could read; what it could not read is an error
// the HTTP handler logs, while the other metrics are still served.
func (c *busCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	if lags, err := c.bus.ConsumerLag(ctx); err != nil {
		ch <- prometheus.NewInvalidMetric(c.set.consumerPending, err)
	} else {
		for _, l := range lags {
			ch <- prometheus.MustNewConstMetric(c.set.consumerPending, prometheus.GaugeValue, float64(l.Pending), l.Stream, l.Durable)
			ch <- prometheus.MustNewConstMetric(c.set.consumerAckPending, prometheus.GaugeValue, float64(l.AckPending), l.Stream, l.Durable)
		}
	}
	if counts, err := c.bus.DeadLetterCounts(ctx); err != nil {
		ch <- prometheus.NewInvalidMetric(c.set.deadLetterStored, err)
	} else {
		for durable, n := range counts {
			ch <- prometheus.MustNewConstMetric(c.set.deadLetterStored, prometheus.GaugeValue, float64(n), durable)
		}
	}
}
