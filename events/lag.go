package events

import (
	"context"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Lag is how far one durable consumer is behind, as JetStream counts it.
type Lag struct {
	Stream  string
	Durable string
	// Pending messages match the consumer and were not delivered yet.
	Pending uint64
	// AckPending messages were delivered and not acknowledged yet: in
	// progress, waiting for a retry, or timers not yet due.
	AckPending int
}

// ConsumerLag asks JetStream how far behind each durable consumer this
// process runs is. Replicas share durables, so every replica reports the
// same numbers.
func (b *Bus) ConsumerLag(ctx context.Context) ([]Lag, error) {
	b.mu.Lock()
	refs := append([]consumerRef(nil), b.consumers...)
	b.mu.Unlock()
	out := make([]Lag, 0, len(refs))
	for _, r := range refs {
		c, err := b.js.Consumer(ctx, r.stream, r.durable)
		if err != nil {
			return nil, fmt.Errorf("consumer %s on %s: %w", r.durable, r.stream, err)
		}
		info := c.CachedInfo()
		out = append(out, Lag{Stream: r.stream, Durable: r.durable, Pending: info.NumPending, AckPending: info.NumAckPending})
	}
	return out, nil
}

// DeadLetterCounts returns how many dead letters the dead-letter stream
// keeps, by the durable that gave up on them.
func (b *Bus) DeadLetterCounts(ctx context.Context) (map[string]uint64, error) {
	s, err := b.js.Stream(ctx, StreamDeadLetter)
	if err != nil {
		return nil, fmt.Errorf("dead letter stream: %w", err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(deadWildcard))
	if err != nil {
		return nil, fmt.Errorf("dead letter stream: %w", err)
	}
	out := make(map[string]uint64, len(info.State.Subjects))
	for subject, n := range info.State.Subjects {
		out[strings.TrimPrefix(subject, deadLetterPrefix)] = n
	}
	return out, nil
}
