// Package accounts signs people in from a browser: staff users with a
// username and password (argon2id), sessions behind a cookie, and
// residents by a one-tap link texted to the phone they are registered
// with. Bearer tokens for programs stay in the api package.
package accounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/storage"
)

// Roles of the people who sign in here; the same names as the API's roles.
const (
	RoleDispatcher = "dispatcher"
	RoleOrg        = "org"
	RoleAdmin      = "admin"
	RoleResident   = "resident"
)

// ErrBadCredentials is the one answer to a wrong username or a wrong
// password: the caller must not learn which usernames exist.
var ErrBadCredentials = errors.New("wrong username or password")

// Accounts keeps users and sessions and texts residents their sign-in links.
type Accounts struct {
	DB storage.DB
	// Relay publishes the sign-in texts after their transaction commits;
	// only TextLoginLink needs it (the users command has none).
	Relay *events.Relay
	Log   *slog.Logger
	Now   func() time.Time
	// LinkBase is the public base URL sign-in links start with.
	LinkBase string
}

// User is a staff member who signs in with a password. The hash never
// leaves this package.
type User struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Community string    `json:"community"`
	Subject   string    `json:"subject"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// NewUser is what creating a user takes.
type NewUser struct {
	Username  string
	Password  string
	Role      string
	Community string
	// Subject is the organisation id for role org. Dispatchers and admins
	// default to their username, so the timeline names the person.
	Subject string
	Name    string
}

// MinPasswordLen is the shortest password accepted, in characters.
const MinPasswordLen = 10

var usernamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{1,63}$`)

// validate checks u, lower-cases the username and fills the default
// subject. It does not look at the database.
func (u *NewUser) validate() error {
	verr := &errdefs.ValidationError{}
	u.Username = strings.ToLower(strings.TrimSpace(u.Username))
	if !usernamePattern.MatchString(u.Username) {
		verr.Add("username", "2 to 64 of a-z 0-9 . _ @ -, starting with a letter or digit")
	}
	switch n := utf8.RuneCountInString(u.Password); {
	case n < MinPasswordLen:
		verr.Add("password", fmt.Sprintf("at least %d characters", MinPasswordLen))
	case len(u.Password) > 1024 || !utf8.ValidString(u.Password):
		verr.Add("password", "at most 1024 bytes of UTF-8 text")
	}
	switch u.Role {
	case RoleAdmin:
		if u.Community != "" {
			verr.Add("community", "admins belong to no community")
		}
	case RoleDispatcher, RoleOrg:
		if u.Community == "" {
			verr.Add("community", "required")
		}
		if u.Role == RoleOrg && u.Subject == "" {
			verr.Add("subject", "required: the organisation the user acts for")
		}
	default:
		verr.Add("role", "one of dispatcher, org, admin")
	}
	if u.Subject == "" && u.Role != RoleOrg {
		u.Subject = u.Username
	}
	if len(u.Subject) > 128 || hasControl(u.Subject) {
		verr.Add("subject", "at most 128 characters without control characters")
	}
	if utf8.RuneCountInString(u.Name) > 100 || !utf8.ValidString(u.Name) || hasControl(u.Name) {
		verr.Add("name", "at most 100 characters without control characters")
	}
	return verr.OrNil()
}

func hasControl(s string) bool { return strings.ContainsFunc(s, unicode.IsControl) }

// CreateUser stores a user with the argon2id hash of their password. The
// community must exist, and an org user's subject must be one of its
// organisations. A username taken already: ErrConflict.
func (a *Accounts) CreateUser(ctx context.Context, nu NewUser, createdBy string) (User, error) {
	if err := nu.validate(); err != nil {
		return User{}, err
	}
	if err := a.checkBelongs(ctx, nu); err != nil {
		return User{}, err
	}
	hash, err := HashPassword(nu.Password)
	if err != nil {
		return User{}, err
	}
	now := a.Now()
	u := User{ID: events.NewID("us", now), Username: nu.Username, Name: nu.Name, Role: nu.Role, Community: nu.Community,
		Subject: nu.Subject, CreatedBy: createdBy, CreatedAt: time.UnixMilli(now.UnixMilli()).UTC()}
	var id string
	err = a.DB.QueryRow(ctx, `INSERT INTO users (id, username, name, password_hash, role, community_id, subject, created_by, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (username) DO NOTHING RETURNING id`,
		u.ID, u.Username, u.Name, hash, u.Role, u.Community, u.Subject, u.CreatedBy, now.UnixMilli()).Scan(&id)
	if errors.Is(err, storage.ErrNoRows) {
		return User{}, fmt.Errorf("username %s is taken: %w", u.Username, errdefs.ErrConflict)
	}
	if err != nil {
		return User{}, fmt.Errorf("create user %s: %w", u.Username, err)
	}
	a.Log.Info("user created", "user", u.Username, "role", u.Role, "community", u.Community, "subject", u.Subject, "by", createdBy)
	return u, nil
}

// checkBelongs makes sure the community, and an org user's organisation,
// exist: a user for nobody could sign in but see nothing.
func (a *Accounts) checkBelongs(ctx context.Context, nu NewUser) error {
	if nu.Community == "" {
		return nil
	}
	var communities, orgs int
	if err := a.DB.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM communities WHERE id = $1),
		(SELECT COUNT(*) FROM organisations WHERE community_id = $1 AND id = $2)`, nu.Community, nu.Subject).
		Scan(&communities, &orgs); err != nil {
		return fmt.Errorf("check community of user %s: %w", nu.Username, err)
	}
	switch {
	case communities == 0:
		return errdefs.Invalid("community", "no community "+nu.Community)
	case nu.Role == RoleOrg && orgs == 0:
		return errdefs.Invalid("subject", "no organisation "+nu.Subject+" in "+nu.Community)
	}
	return nil
}

// dummyHash is checked when the username is unknown, so that an unknown
// user takes as long to refuse as a wrong password.
var dummyHash = sync.OnceValues(func() (string, error) { return HashPassword("no such user, no such password") })

// authenticate finds the user with username and password. Anything wrong
// is ErrBadCredentials.
func (a *Accounts) authenticate(ctx context.Context, username, password string) (User, error) {
	username = strings.ToLower(strings.TrimSpace(username))
	var u User
	var hash string
	var at int64
	err := a.DB.QueryRow(ctx, `SELECT id, username, name, password_hash, role, community_id, subject, created_by, created_at
		FROM users WHERE username = $1`, username).
		Scan(&u.ID, &u.Username, &u.Name, &hash, &u.Role, &u.Community, &u.Subject, &u.CreatedBy, &at)
	if errors.Is(err, storage.ErrNoRows) {
		if hash, err = dummyHash(); err != nil {
			return User{}, err
		}
		_, _ = CheckPassword(hash, password)
		return User{}, ErrBadCredentials
	}
	if err != nil {
		return User{}, fmt.Errorf("read user: %w", err)
	}
	ok, err := CheckPassword(hash, password)
	if err != nil {
		return User{}, fmt.Errorf("user %s: %w", u.Username, err)
	}
	if !ok {
		return User{}, ErrBadCredentials
	}
	u.CreatedAt = time.UnixMilli(at).UTC()
	return u, nil
}
