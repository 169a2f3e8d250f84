package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/shouwang/shouwang/storage"
)

// How long a session lasts since it was last used. A dispatcher's console
// left open through a long incident keeps working, and an unattended one
// signs out after a shift; a resident (often elderly) should not have to
// ask for a new link each time they open the page, so theirs lasts a month.
const (
	StaffSessionTTL    = 12 * time.Hour
	ResidentSessionTTL = 30 * 24 * time.Hour
)

// ErrNoSession is returned for a cookie that names no live session:
// unknown, signed out or expired.
var ErrNoSession = errors.New("no such session")

// Session is who a browser is signed in as. CSRF is the value the page
// must echo in X-CSRF-Token on every request that changes something.
type Session struct {
	Role      string    `json:"role"`
	Community string    `json:"community"`
	Subject   string    `json:"subject"`
	Name      string    `json:"name"`
	CSRF      string    `json:"csrf"`
	ExpiresAt time.Time `json:"-"`
}

func sessionTTL(role string) time.Duration {
	if role == RoleResident {
		return ResidentSessionTTL
	}
	return StaffSessionTTL
}

func randomToken() (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("session token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(raw), nil
}

func hashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// SignIn checks a username and password and starts a session. It returns
// the session and the cookie value, which is stored only as a hash.
func (a *Accounts) SignIn(ctx context.Context, username, password string) (Session, string, error) {
	u, err := a.authenticate(ctx, username, password)
	if err != nil {
		return Session{}, "", err
	}
	s, token, err := a.startSession(ctx, a.DB, a.Now(), Session{Role: u.Role, Community: u.Community, Subject: u.Subject, Name: u.Name})
	if err != nil {
		return Session{}, "", err
	}
	a.Log.Info("signed in", "user", u.Username, "role", u.Role, "community", u.Community)
	return s, token, nil
}

// startSession stores a new session for s, with a fresh CSRF value, and
// deletes the expired ones: there is no sweeper, sign-ins tidy up.
func (a *Accounts) startSession(ctx context.Context, q storage.Querier, now time.Time, s Session) (Session, string, error) {
	token, err := randomToken()
	if err != nil {
		return Session{}, "", err
	}
	if s.CSRF, err = randomToken(); err != nil {
		return Session{}, "", err
	}
	s.ExpiresAt = time.UnixMilli(now.Add(sessionTTL(s.Role)).UnixMilli()).UTC()
	if _, err := q.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= $1`, now.UnixMilli()); err != nil {
		return Session{}, "", fmt.Errorf("delete expired sessions: %w", err)
	}
	if _, err := q.Exec(ctx, `INSERT INTO sessions (token_hash, role, community_id, subject, name, csrf, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, hashToken(token), s.Role, s.Community, s.Subject, s.Name, s.CSRF,
		now.UnixMilli(), s.ExpiresAt.UnixMilli()); err != nil {
		return Session{}, "", fmt.Errorf("store session: %w", err)
	}
	return s, token, nil
}

// Session finds the live session a cookie value names. A session used
// when less than half its time is left is extended by a full term
// (renewed is true: the cookie must be set again); renewing only then
// keeps it to one write per half term.
func (a *Accounts) Session(ctx context.Context, token string) (s Session, renewed bool, err error) {
	if token == "" || len(token) > 100 {
		return Session{}, false, ErrNoSession
	}
	h := hashToken(token)
	var expires int64
	err = a.DB.QueryRow(ctx, `SELECT role, community_id, subject, name, csrf, expires_at FROM sessions WHERE token_hash = $1`, h).
		Scan(&s.Role, &s.Community, &s.Subject, &s.Name, &s.CSRF, &expires)
	if errors.Is(err, storage.ErrNoRows) {
		return Session{}, false, ErrNoSession
	}
	if err != nil {
		return Session{}, false, fmt.Errorf("read session: %w", err)
	}
	now := a.Now()
	s.ExpiresAt = time.UnixMilli(expires).UTC()
	if !now.Before(s.ExpiresAt) {
		if _, err := a.DB.Exec(ctx, `DELETE FROM sessions WHERE token_hash = $1`, h); err != nil {
			return Session{}, false, fmt.Errorf("delete expired session: %w", err)
		}
		return Session{}, false, ErrNoSession
	}
	ttl := sessionTTL(s.Role)
	if s.ExpiresAt.Sub(now) >= ttl/2 {
		return s, false, nil
	}
	s.ExpiresAt = time.UnixMilli(now.Add(ttl).UnixMilli()).UTC()
	if _, err := a.DB.Exec(ctx, `UPDATE sessions SET expires_at = $2 WHERE token_hash = $1`, h, s.ExpiresAt.UnixMilli()); err != nil {
		return Session{}, false, fmt.Errorf("renew session: %w", err)
	}
	return s, true, nil
}

// SignOut ends the session a cookie value names; an unknown one is fine.
func (a *Accounts) SignOut(ctx context.Context, token string) error {
	if _, err := a.DB.Exec(ctx, `DELETE FROM sessions WHERE token_hash = $1`, hashToken(token)); err != nil {
		return fmt.Errorf("sign out: %w", err)
	}
	return nil
}
