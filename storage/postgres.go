package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// defaultPoolConns is the pool's size unless the URL sets pool_max_conns.
const defaultPoolConns = 16

type pgDB struct {
	pool *pgxpool.Pool
}

// requestPoolConns is the size of the HTTP request path's own pool
// (ForRequests).
const requestPoolConns = 8

func openPostgres(ctx context.Context, url string) (*pgDB, error) {
	// pgx's default is four on two cores. The bus's consumers run
	// dozens of workers; with four connections they held them all
	// and an alarm's 202 waited for one (p50 20 → 70 ms at 100
	// alarms/s, issue 8). Connections open only when used.
	conns := int32(defaultPoolConns)
	if strings.Contains(url, "pool_max_conns") {
		conns = 0
	}
	return openPostgresPool(ctx, url, conns)
}

// openPostgresPool opens a pool of conns connections, or of the URL's
// pool_max_conns when conns is 0.
func openPostgresPool(ctx context.Context, url string, conns int32) (*pgDB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url %s: %w", redactURL(url), err)
	}
	if conns > 0 {
		cfg.MaxConns = conns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect postgres %s: %w", redactURL(url), err)
	}
	return &pgDB{pool: pool}, nil
}

func (d *pgDB) Dialect() string { return "postgres" }
func (d *pgDB) Close()          { d.pool.Close() }

func (d *pgDB) Ping(ctx context.Context) error { return d.pool.Ping(ctx) }

func (d *pgDB) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	return pgExec(ctx, d.pool, sql, args...)
}

func (d *pgDB) Query(ctx context.Context, sql string, args ...any) (Rows, error) {
	return pgQuery(ctx, d.pool, sql, args...)
}

func (d *pgDB) QueryRow(ctx context.Context, sql string, args ...any) Row {
	return pgRow{d.pool.QueryRow(ctx, sql, args...)}
}

func (d *pgDB) InTx(ctx context.Context, fn func(Querier) error) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		return holding(ctx, pgTx{tx}, fn)
	})
}

// pgConn is what pgxpool.Pool and pgx.Tx have in common.
type pgConn interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func pgExec(ctx context.Context, c pgConn, sql string, args ...any) (int64, error) {
	tag, err := c.Exec(ctx, sql, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func pgQuery(ctx context.Context, c pgConn, sql string, args ...any) (Rows, error) {
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgRows{rows}, nil
}

type pgTx struct{ tx pgx.Tx }

func (t pgTx) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	return pgExec(ctx, t.tx, sql, args...)
}

func (t pgTx) Query(ctx context.Context, sql string, args ...any) (Rows, error) {
	return pgQuery(ctx, t.tx, sql, args...)
}

func (t pgTx) QueryRow(ctx context.Context, sql string, args ...any) Row {
	return pgRow{t.tx.QueryRow(ctx, sql, args...)}
}

type pgRows struct{ pgx.Rows }

func (r pgRows) Close() { r.Rows.Close() }

type pgRow struct{ row pgx.Row }

func (r pgRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNoRows
	}
	return err
}
