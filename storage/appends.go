package storage

import (
	"context"
	"fmt"
)

// An alarm's transactions write many rows that nothing reads back before
// they commit: the events staged for the relay, timeline entries, one-tap
// links. Inserted one statement each, they were a third of the statements
// on an alarm's path (issue 8). Held until the transaction's function
// returns, they go in one multi-row statement per table.

// Appender is one append-only table's INSERT: the rows are inserted with
// Insert, each row's Cols values in order, and Then after the VALUES
// (e.g. an ON CONFLICT clause).
type Appender struct {
	Insert string // "INSERT INTO t (a, b)"
	Cols   int
	Then   string
}

// appendChunk bounds the rows of one statement, so the placeholders stay
// under both databases' limits at any width.
const appendChunk = 100

// Append inserts one row with a. In a transaction of InTx the row is held
// and inserted with the others of its table when the transaction's
// function returns, before the commit; so only rows no statement of the
// same transaction reads back may be appended. Elsewhere it is inserted at
// once. An error of the held insert is the transaction's error.
func Append(ctx context.Context, q Querier, a *Appender, row ...any) error {
	if len(row) != a.Cols {
		return fmt.Errorf("append to %q: %d values for %d columns", a.Insert, len(row), a.Cols)
	}
	if h := heldRowsOf(q); h != nil {
		h.add(a, row)
		return nil
	}
	_, err := q.Exec(ctx, a.statement(1), row...)
	return err
}

// statement is the INSERT of rows rows.
func (a *Appender) statement(rows int) string {
	return a.Insert + " VALUES " + Tuples(rows, a.Cols) + " " + a.Then
}

// Unwrapper is a Querier that wraps another, such as a handler's own
// transaction type; Append looks through it for the transaction.
type Unwrapper interface {
	Unwrap() Querier
}

func heldRowsOf(q Querier) *heldRows {
	for q != nil {
		switch t := q.(type) {
		case holdingTx:
			return t.held
		case Unwrapper:
			q = t.Unwrap()
		default:
			return nil
		}
	}
	return nil
}

// holdingTx is the Querier fn gets from InTx.
type holdingTx struct {
	Querier
	held *heldRows
}

// heldRows are a transaction's appended rows, by table in the order each
// table was first appended to.
type heldRows struct {
	order []*Appender
	rows  map[*Appender][][]any
}

func (h *heldRows) add(a *Appender, row []any) {
	if h.rows == nil {
		h.rows = map[*Appender][][]any{}
	}
	if _, ok := h.rows[a]; !ok {
		h.order = append(h.order, a)
	}
	h.rows[a] = append(h.rows[a], row)
}

func (h *heldRows) flush(ctx context.Context, q Querier) error {
	for _, a := range h.order {
		rows := h.rows[a]
		for len(rows) > 0 {
			chunk := rows[:min(len(rows), appendChunk)]
			rows = rows[len(chunk):]
			args := make([]any, 0, len(chunk)*a.Cols)
			for _, r := range chunk {
				args = append(args, r...)
			}
			if _, err := q.Exec(ctx, a.statement(len(chunk)), args...); err != nil {
				return fmt.Errorf("%s (%d rows): %w", a.Insert, len(chunk), err)
			}
		}
	}
	return nil
}

// holding runs fn with a Querier that holds appended rows, then inserts
// them; InTx of both databases runs its function through it.
func holding(ctx context.Context, q Querier, fn func(Querier) error) error {
	h := &heldRows{}
	if err := fn(holdingTx{Querier: q, held: h}); err != nil {
		return err
	}
	return h.flush(ctx, q)
}
