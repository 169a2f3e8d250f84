package storage

import "context"

// Within makes an open transaction look like a DB, so a store written
// against DB can join a transaction its caller opened: a change and its
// audit entry commit together, or neither does. InTx on it runs fn in that
// same transaction (nested transactions are flattened), and only the
// caller's InTx commits. Anything that must wait for the commit (publishing
// to the bus) must not run on it.
func Within(q Querier, dialect string) DB {
	return txDB{Querier: q, dialect: dialect}
}

type txDB struct {
	Querier
	dialect string
}

func (t txDB) InTx(_ context.Context, fn func(Querier) error) error { return fn(t.Querier) }
func (t txDB) Unwrap() Querier                                      { return t.Querier }
func (t txDB) Ping(context.Context) error                           { return nil }
func (t txDB) Dialect() string                                      { return t.dialect }
func (t txDB) Close()                                               {}
