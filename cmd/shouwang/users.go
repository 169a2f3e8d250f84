package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/shouwang/shouwang/accounts"
	"github.com/shouwang/shouwang/audit"
	"github.com/shouwang/shouwang/storage"
)

const usersUsage = `usage: shouwang users add --username U --role R --community C [--subject S] [--name N]

Creates a user who signs in on the console or the duties page with a
password: role dispatcher, org (--subject is the organisation id) or admin
(no --community). The password is read from SHOUWANG_NEW_PASSWORD, else
from the first line of standard input; at least 10 characters. The command
writes to the database directly (--database-url, or the SQLite file under
--data-dir), so it can create the first admin before anyone can sign in.
`

// usersCmd creates users from the command line, for bootstrapping: the API
// needs someone signed in to create users.
func usersCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("users", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usersUsage); fs.PrintDefaults() }
	username := fs.String("username", "", "the name to sign in with (required; stored lower-case)")
	role := fs.String("role", "", "dispatcher, org or admin (required)")
	community := fs.String("community", "", "community id (not for admins)")
	subject := fs.String("subject", "", "for org users the organisation id; others default to the username")
	name := fs.String("name", "", "the person's name, shown on the console")
	openStore := storeFlags(fs)
	if len(args) == 0 || args[0] != "add" {
		fs.Usage()
		return errors.New("want: users add --username U --role R --community C")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 || *username == "" || *role == "" {
		fs.Usage()
		return errors.New("want: users add --username U --role R --community C")
	}
	password, err := newPassword(stdin)
	if err != nil {
		return err
	}
	db, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	var u accounts.User
	err = db.InTx(ctx, func(q storage.Querier) error { // the user and its audit entry together
		acc := &accounts.Accounts{DB: storage.Within(q, db.Dialect()), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now}
		if u, err = acc.CreateUser(ctx, accounts.NewUser{Username: *username, Password: password, Role: *role, Community: *community,
			Subject: *subject, Name: *name}, "cli"); err != nil {
			return err
		}
		return audit.Record(ctx, q, audit.Entry{At: time.Now(), Actor: cliActor(), Community: u.Community, Action: "user.create",
			ObjectKind: "user", ObjectID: u.Username, Detail: map[string]any{"role": u.Role, "subject": u.Subject}})
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "user %s created: role %s, community %q, subject %q\n", u.Username, u.Role, u.Community, u.Subject)
	return nil
}

// newPassword reads the new user's password from SHOUWANG_NEW_PASSWORD or
// the first line of in, never from a flag: flags show in ps and in shell
// history.
func newPassword(in io.Reader) (string, error) {
	if p := os.Getenv("SHOUWANG_NEW_PASSWORD"); p != "" {
		return p, nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password: set SHOUWANG_NEW_PASSWORD or write it on standard input")
	}
	return line, nil
}
