package responders

import (
	"github.com/shouwang/shouwang/incidents"
	"github.com/shouwang/shouwang/storage"
)

// Offer outcomes counted besides the offer states.
const outcomeCalled = "called" // an unanswered offer became a call

// offerTx is the transaction a Dispatcher method runs in. It notes how
// offers change, and the dispatcher counts them only once the transaction
// has committed: a handler that fails and is retried must not count twice.
type offerTx struct {
	storage.Querier
	changes map[string]int // outcome → offers
}

// Unwrap lets storage.Append find the transaction underneath.
func (t *offerTx) Unwrap() storage.Querier { return t.Querier }

// noteOffers notes n offers of in reaching outcome in the transaction q.
// Every Dispatcher method runs in d.tx, so q is an *offerTx. Drills are
// left out: they must not move live statistics.
func noteOffers(q storage.Querier, in incidents.Incident, outcome string, n int64) {
	t, ok := q.(*offerTx)
	if !ok || n <= 0 || in.Drill {
		return
	}
	if t.changes == nil {
		t.changes = map[string]int{}
	}
	t.changes[outcome] += int(n)
}
