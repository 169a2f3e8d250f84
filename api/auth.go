package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/storage"
)

// Roles.
const (
	RoleResident   = "resident"
	RoleResponder  = "responder"
	RoleDispatcher = "dispatcher"
	RoleOrg        = "org"
	RoleAdmin      = "admin"
)

// Principal is who is calling: a role, the community it belongs to (empty
// for admins) and a subject (a resident id, a responder id, an org id…).
type Principal struct {
	Role      string `json:"role"`
	Community string `json:"community,omitempty"`
	Subject   string `json:"subject,omitempty"`
}

// In reports whether the principal acts for community: admins act for all.
func (p Principal) In(community string) bool {
	return p.Role == RoleAdmin || (p.Community != "" && p.Community == community)
}

func (p Principal) String() string {
	return p.Role + ":" + p.Community + ":" + p.Subject
}

// Tokens issues and checks bearer tokens. Only a hash of each token is
// stored: a leaked database does not leak working tokens.
type Tokens struct {
	DB        storage.DB
	AdminHash []byte // sha256 of SHOUWANG_ADMIN_TOKEN, or nil
	Now       func() time.Time
	// Known remembers the tokens this replica has found in the database;
	// nil remembers none. Tokens are never revoked, so while the database
	// is away a known token still works: a resident's press only needs
	// JetStream, and must not fail because PostgreSQL is restarting.
	Known *KnownTokens
}

// KnownTokens maps the hash of each token seen to its Principal. It is
// shared by copies of a Tokens.
type KnownTokens struct{ m sync.Map }

func hashToken(t string) []byte {
	h := sha256.Sum256([]byte(t))
	return h[:]
}

// AdminHash hashes the bootstrap admin token.
func AdminHash(token string) []byte {
	if token == "" {
		return nil
	}
	return hashToken(token)
}

// Issue creates a token for p.
func (t *Tokens) Issue(ctx context.Context, p Principal, createdBy string) (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	token := "sw_" + base64.RawURLEncoding.EncodeToString(raw)
	_, err := t.DB.Exec(ctx, `INSERT INTO tokens (hash, role, community_id, subject, created_by, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, hex.EncodeToString(hashToken(token)), p.Role, p.Community, p.Subject, createdBy, t.Now().UnixMilli())
	if err != nil {
		return "", fmt.Errorf("store token: %w", err)
	}
	return token, nil
}

// Lookup finds who a token belongs to.
func (t *Tokens) Lookup(ctx context.Context, token string) (Principal, error) {
	h := hashToken(token)
	if t.AdminHash != nil && subtle.ConstantTimeCompare(h, t.AdminHash) == 1 {
		return Principal{Role: RoleAdmin, Subject: "bootstrap"}, nil
	}
	var p Principal
	err := t.DB.QueryRow(ctx, `SELECT role, community_id, subject FROM tokens WHERE hash = $1`, hex.EncodeToString(h)).
		Scan(&p.Role, &p.Community, &p.Subject)
	if errors.Is(err, storage.ErrNoRows) {
		return Principal{}, errUnauthenticated
	}
	if err != nil {
		if t.Known != nil {
			if known, ok := t.Known.m.Load(string(h)); ok {
				return known.(Principal), nil
			}
		}
		return Principal{}, fmt.Errorf("look up token: %w (%w)", errdefs.ErrUnavailable, err)
	}
	if t.Known != nil {
		t.Known.m.Store(string(h), p)
	}
	return p, nil
}

const principalKey = "principal"

// authenticate reads the bearer token or, without one, the session cookie
// (see session.go); both yield the same Principal. Endpoints decide what
// they require with need.
func (s *server) authenticate(c *fiber.Ctx) error {
	h := c.Get(fiber.HeaderAuthorization)
	if h == "" {
		return s.authenticateSession(c)
	}
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || token == "" {
		return errUnauthenticated
	}
	p, err := s.tokens.Lookup(c.UserContext(), strings.TrimSpace(token))
	if err != nil {
		return err
	}
	c.Locals(principalKey, p)
	return c.Next()
}

// need returns the caller if they have one of roles.
func need(c *fiber.Ctx, roles ...string) (Principal, error) {
	p, ok := c.Locals(principalKey).(Principal)
	if !ok {
		return Principal{}, errUnauthenticated
	}
	for _, r := range roles {
		if p.Role == r {
			return p, nil
		}
	}
	return Principal{}, fmt.Errorf("role %s may not do this: %w", p.Role, errdefs.ErrForbidden)
}

// needIn returns the caller if they have one of roles in community.
func needIn(c *fiber.Ctx, community string, roles ...string) (Principal, error) {
	p, err := need(c, roles...)
	if err != nil {
		return p, err
	}
	if !p.In(community) {
		// Not "forbidden": another community's things are not shown to exist.
		return p, fmt.Errorf("community %s: %w", community, errdefs.ErrNotFound)
	}
	return p, nil
}
