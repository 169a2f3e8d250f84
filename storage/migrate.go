package storage

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate applies every pending schema migration. The same SQL files drive
// PostgreSQL and SQLite.
func Migrate(ctx context.Context, db DB) error {
	var (
		sqlDB   *sql.DB
		dialect goose.Dialect
		blocks  string // which "-- +dialect" blocks apply (dialect.go)
		opts    []goose.ProviderOption
	)
	switch d := db.(type) {
	case *pgDB:
		sqlDB = stdlib.OpenDBFromPool(d.pool)
		defer sqlDB.Close()
		dialect, blocks = goose.DialectPostgres, "postgres"
		// Replicas starting together all run migrate; a session lock lets one
		// apply while the others wait. The lock is per schema, as the
		// migrations are: installs in other schemas need not wait.
		var schema string
		if err := d.pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			return fmt.Errorf("migrate: current schema: %w", err)
		}
		h := fnv.New64a()
		h.Write([]byte("shouwang-migrate:" + schema))
		locker, err := lock.NewPostgresSessionLocker(
			lock.WithLockID(int64(h.Sum64()&math.MaxInt64)),
			lock.WithLockTimeout(1, 600), // poll every second, up to 10 minutes
		)
		if err != nil {
			return fmt.Errorf("migrate lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	case *sqliteDB:
		sqlDB = d.db
		dialect, blocks = goose.DialectSQLite3, "sqlite"
	default:
		return fmt.Errorf("migrate: unknown database %T", db)
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(dialect, sqlDB, dialectFS{fsys: sub, dialect: blocks}, opts...)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}
