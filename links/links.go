// Package links makes the one-tap links sent in texts: a random,
// single-purpose token that lets a person answer (accept an offer, say they
// are safe) without signing in, until it expires.
package links

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/storage"
)

// Kinds of link.
const (
	KindOffer = "offer" // answer an offer: accept, decline, arrived
	KindAlarm = "alarm" // a resident about their press: "I am safe"
	KindDuty  = "duty"  // a plan duty: acknowledge, done
	KindLogin = "login" // a resident signs in on this phone; single use
)

// ErrExpired is returned for a link past its expiry.
var ErrExpired = errors.New("link expired")

// ErrUsed is returned by Consume for a single-use link used before.
var ErrUsed = errors.New("link used")

// Link is what a token stands for.
type Link struct {
	Kind      string
	Target    string
	Community string
	Locale    string
	ExpiresAt time.Time
	UsedAt    time.Time
}

// Issue makes a link inside the caller's transaction and returns its token.
// Only a hash is stored: a database dump does not hold working links.
func Issue(ctx context.Context, q storage.Querier, kind, target, community, locale string, now, expires time.Time) (string, error) {
	raw := make([]byte, 12) // 96 bits: unguessable, and short enough for a text
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	if err := storage.Append(ctx, q, linkRows, hash(token), kind, target, community, locale, now.UnixMilli(), expires.UnixMilli()); err != nil {
		return "", fmt.Errorf("store %s link for %s: %w", kind, target, err)
	}
	return token, nil
}

// linkRows are inserted when the issuing transaction's function returns
// (storage.Append): a link is followed only once its text is out, long
// after the commit.
var linkRows = &storage.Appender{Insert: `INSERT INTO links (hash, kind, target, community_id, locale, created_at, expires_at)`, Cols: 7}

// Resolve finds what a token stands for. An unknown token is ErrNotFound; a
// known one past its expiry is ErrExpired (with the link, so the page can
// still say what it was for).
func Resolve(ctx context.Context, q storage.Querier, token string, now time.Time) (Link, error) {
	if len(token) < 8 || len(token) > 64 {
		return Link{}, fmt.Errorf("link: %w", errdefs.ErrNotFound)
	}
	var l Link
	var expires, used int64
	err := q.QueryRow(ctx, `SELECT kind, target, community_id, locale, expires_at, used_at FROM links WHERE hash = $1`,
		hash(token)).Scan(&l.Kind, &l.Target, &l.Community, &l.Locale, &expires, &used)
	if errors.Is(err, storage.ErrNoRows) {
		return Link{}, fmt.Errorf("link: %w", errdefs.ErrNotFound)
	}
	if err != nil {
		return Link{}, fmt.Errorf("read link: %w", err)
	}
	l.ExpiresAt = time.UnixMilli(expires).UTC()
	if used > 0 {
		l.UsedAt = time.UnixMilli(used).UTC()
	}
	if !now.Before(l.ExpiresAt) {
		return l, ErrExpired
	}
	return l, nil
}

// MarkUsed records the first use of a link; later uses keep the first time.
func MarkUsed(ctx context.Context, q storage.Querier, token string, now time.Time) error {
	_, err := q.Exec(ctx, `UPDATE links SET used_at = $2 WHERE hash = $1 AND used_at = 0`, hash(token), now.UnixMilli())
	return err
}

// Consume uses a single-use link: it returns what the link stands for and
// marks it used. The mark is a conditional update, so of two requests
// racing with the same token only one succeeds. Used before: ErrUsed;
// expired: ErrExpired (and not marked).
func Consume(ctx context.Context, q storage.Querier, token string, now time.Time) (Link, error) {
	l, err := Resolve(ctx, q, token, now)
	if err != nil {
		return l, err
	}
	n, err := q.Exec(ctx, `UPDATE links SET used_at = $2 WHERE hash = $1 AND used_at = 0`, hash(token), now.UnixMilli())
	if err != nil {
		return Link{}, fmt.Errorf("use %s link: %w", l.Kind, err)
	}
	if n == 0 {
		return l, ErrUsed
	}
	l.UsedAt = now.UTC()
	return l, nil
}

func hash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}
