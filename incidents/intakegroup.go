package incidents

import (
	"context"
	"sync"
)

// maxIntakeGroup bounds the alarms of one transaction.
const maxIntakeGroup = 32

// intakeGroup lets alarms handled at the same moment share a transaction.
// The first caller to find no transaction running leads: it takes every
// alarm waiting (its own first), correlates them one after another in one
// transaction, and hands each caller its result; then the first of those
// who arrived meanwhile leads the next group. A caller leads at most once,
// so its own messages are never held back by other alarms.
// Correlating in order inside one transaction decides exactly as separate
// transactions one after another would. If the shared transaction fails,
// each alarm is tried again in a transaction of its own, so one bad alarm
// only fails itself.
type intakeGroup struct {
	mu      sync.Mutex
	leading bool
	waiting []*intakeCall
}

type intakeCall struct {
	ctx  context.Context
	item intakeItem
	done chan intakeOutcome // buffered 1
}

type intakeOutcome struct {
	r   intakeResult
	err error
	// alone: the shared transaction failed; the caller runs it alone.
	alone bool
	// lead: the caller leads the next group, its own among them.
	lead bool
}

func (g *intakeGroup) run(ctx context.Context, h *Intake, item intakeItem) (intakeResult, error) {
	c := &intakeCall{ctx: ctx, item: item, done: make(chan intakeOutcome, 1)}
	g.mu.Lock()
	g.waiting = append(g.waiting, c)
	lead := !g.leading
	if lead {
		g.leading = true
	}
	g.mu.Unlock()
	if lead {
		g.leadOne(h)
	}
	// A follower waits even if its context ends: its alarm may already be
	// in the transaction, and the leader finishes within one.
	for {
		out := <-c.done
		switch {
		case out.lead:
			g.leadOne(h)
		case out.alone:
			return h.alone(ctx, item)
		default:
			return out.r, out.err
		}
	}
}

// leadOne runs one group of what is waiting, then hands the lead on.
func (g *intakeGroup) leadOne(h *Intake) {
	g.mu.Lock()
	calls := g.waiting[:min(len(g.waiting), maxIntakeGroup)]
	g.waiting = g.waiting[len(calls):]
	g.mu.Unlock()
	g.together(h, calls)
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.waiting) == 0 {
		g.leading = false
		return
	}
	g.waiting[0].done <- intakeOutcome{lead: true}
}

// together correlates calls in one transaction.
func (g *intakeGroup) together(h *Intake, calls []*intakeCall) {
	if len(calls) == 1 {
		r, err := h.alone(calls[0].ctx, calls[0].item)
		calls[0].done <- intakeOutcome{r: r, err: err}
		return
	}
	items := make([]intakeItem, len(calls))
	for i, c := range calls {
		items[i] = c.item
	}
	// The leader's context governs the shared transaction; a follower's
	// own deadline is not checked inside it.
	results, err := h.correlate(context.WithoutCancel(calls[0].ctx), items)
	for i, c := range calls {
		if err != nil {
			c.done <- intakeOutcome{alone: true}
			continue
		}
		c.done <- intakeOutcome{r: results[i]}
	}
}
