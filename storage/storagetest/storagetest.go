// Package storagetest gives tests real databases: a fresh SQLite file in a
// temp dir, and a fresh schema in the machine's PostgreSQL. It never mocks.
package storagetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shouwang/shouwang/storage"
)

// DefaultAdminURL is the machine's PostgreSQL (trust auth). Override it with
// SHOUWANG_TEST_DATABASE_URL.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// testDatabase is the database the suite owns on the server; each test gets
// its own schema inside it.
const testDatabase = "shouwang_test"

// SQLite opens a migrated SQLite database in a temp dir.
func SQLite(t testing.TB) storage.DB {
	t.Helper()
	ctx := context.Background()
	db, err := storage.Open(ctx, "", t.TempDir())
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(db.Close)
	if err := storage.Migrate(ctx, db); err != nil {
		t.Fatalf("migrate sqlite: %v", err)
	}
	return db
}

// PostgresURL creates an empty schema in the suite's own database and
// returns a URL whose connections use it; the schema is dropped after the
// test.
func PostgresURL(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	admin := os.Getenv("SHOUWANG_TEST_DATABASE_URL")
	if admin == "" {
		admin = DefaultAdminURL
	}
	if err := ensureDatabase(ctx, admin); err != nil {
		t.Fatalf("postgres for tests (set SHOUWANG_TEST_DATABASE_URL, or run deploy/test.sh which installs it): %v", err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse %s: %v", admin, err)
	}
	u.Path = "/" + testDatabase
	base := u.String()

	schema := "t_" + randomHex(8)
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect %s: %v", base, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Postgres opens a migrated PostgreSQL database in a fresh schema.
func Postgres(t testing.TB) storage.DB {
	t.Helper()
	ctx := context.Background()
	db, err := storage.Open(ctx, PostgresURL(t), "")
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(db.Close)
	if err := storage.Migrate(ctx, db); err != nil {
		t.Fatalf("migrate postgres: %v", err)
	}
	return db
}

// Each runs fn once against SQLite and once against PostgreSQL, as subtests.
// It is how a store contract suite covers both stores.
func Each(t *testing.T, fn func(t *testing.T, db storage.DB)) {
	t.Helper()
	for _, open := range []struct {
		name string
		open func(testing.TB) storage.DB
	}{{"sqlite", SQLite}, {"postgres", Postgres}} {
		t.Run(open.name, func(t *testing.T) { fn(t, open.open(t)) })
	}
}

func ensureDatabase(ctx context.Context, admin string) error {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", testDatabase).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+testDatabase)
	var pgErr *pgconn.PgError
	// Test binaries of several packages race to create it; losing is fine.
	if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505") {
		return nil
	}
	if err != nil && strings.Contains(err.Error(), "already exists") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", testDatabase, err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Strings runs a query of one text column and returns its rows.
func Strings(t testing.TB, db storage.Querier, query string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(context.Background(), query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
