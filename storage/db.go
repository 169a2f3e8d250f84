// Package storage holds the database plumbing shared by every capability:
// one small query interface over PostgreSQL (pgx/v5 pgxpool) and embedded
// SQLite, and the schema migrations that drive both.
//
// Stores in other packages write portable SQL against DB ($N placeholders,
// ON CONFLICT, RETURNING, BIGINT unix-millisecond times, TEXT JSON), so one
// implementation serves both databases and one contract suite tests both.
package storage

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrNoRows is returned by Row.Scan when a query selected nothing, whichever
// database is underneath.
var ErrNoRows = errors.New("storage: no rows")

// Querier runs statements. Both DB and Tx satisfy it, so store code can be
// written once and run inside or outside a transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (int64, error)
	Query(ctx context.Context, sql string, args ...any) (Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) Row
}

// DB is a pool of connections to one database.
type DB interface {
	Querier
	// InTx runs fn in a transaction and commits if fn returns nil. On SQLite
	// the transaction takes the write lock at BEGIN, so write transactions
	// never deadlock on lock upgrade.
	InTx(ctx context.Context, fn func(Querier) error) error
	// Ping reports whether the database answers; readiness uses it.
	Ping(ctx context.Context) error
	// Dialect is "postgres" or "sqlite".
	Dialect() string
	Close()
}

// IsUniqueViolation reports whether err is an insert or update refused by a
// unique constraint, whichever database is underneath.
func IsUniqueViolation(err error) bool {
	// SQLite: "UNIQUE constraint failed"; PostgreSQL: SQLSTATE 23505.
	return err != nil && (strings.Contains(err.Error(), "UNIQUE constraint") || strings.Contains(err.Error(), "23505"))
}

// Rows is the cursor of a multi-row query.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Row is the result of a single-row query.
type Row interface {
	Scan(dest ...any) error
}

// Open connects to the database named by url: a postgres:// or postgresql://
// URL selects PostgreSQL through pgxpool; an empty url selects the embedded
// SQLite file shouwang.db under dataDir.
func Open(ctx context.Context, url, dataDir string) (DB, error) {
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return openPostgres(ctx, url)
	case url == "":
		return openSQLite(ctx, dataDir)
	case strings.HasPrefix(url, "sqlite:"):
		return openSQLiteFile(ctx, strings.TrimPrefix(url, "sqlite:"))
	default:
		return nil, fmt.Errorf("database url %q: want postgres://… or sqlite:PATH", redactURL(url))
	}
}

// ForRequests returns the handle the HTTP request path uses, and whether
// it is a new one the caller must close. On PostgreSQL it is a pool of its
// own: the consumers' transactions can hold every connection of the main
// pool under load, and a press's 202 (which looks up its token) then
// queued behind them for one (issue 8). On SQLite it is db itself: reads
// already have connections of their own, and a file has one writer.
func ForRequests(ctx context.Context, db DB, url string) (DB, bool, error) {
	if db.Dialect() != "postgres" {
		return db, false, nil
	}
	rdb, err := openPostgresPool(ctx, url, requestPoolConns)
	if err != nil {
		return nil, false, err
	}
	return rdb, true, nil
}

// redactURL hides a password in a connection URL before it reaches a log.
func redactURL(u string) string {
	at := strings.LastIndex(u, "@")
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return u
	}
	userinfo := u[scheme+3 : at]
	if i := strings.Index(userinfo, ":"); i >= 0 {
		userinfo = userinfo[:i] + ":***"
	}
	return u[:scheme+3] + userinfo + u[at:]
}

// Marks returns n numbered placeholders from $first, comma-separated, for
// an IN list: Marks(1, 3) is "$1, $2, $3".
func Marks(first, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$")
		b.WriteString(strconv.Itoa(first + i))
	}
	return b.String()
}

// Args returns ss as statement arguments, for the placeholders of Marks.
func Args(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// Tuples returns the VALUES of a multi-row INSERT: rows tuples of per
// placeholders, numbered from $1. Tuples(2, 3) is "($1, $2, $3), ($4, $5, $6)".
func Tuples(rows, per int) string {
	var b strings.Builder
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(")
		b.WriteString(Marks(r*per+1, per))
		b.WriteString(")")
	}
	return b.String()
}

// StringSet runs a query of one text column, in or out of a transaction's
// reads, and returns the values it gave as a set. A write with RETURNING
// must run in a transaction on SQLite (sqliteDB.Query).
func StringSet(ctx context.Context, q Querier, query string, args ...any) (map[string]bool, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out[s] = true
	}
	return out, rows.Err()
}
