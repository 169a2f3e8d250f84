package api

import (
	"crypto/subtle"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/shouwang/shouwang/accounts"
	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/links"
)

// Signing in from a browser. Staff post a username and password, residents
// ask for a link texted to their phone; either way the browser gets the
// sw_session cookie, which authenticate accepts like a bearer token. A page
// reads the session's CSRF value from the sign-in answer (or GET
// /v1/session) and sends it in X-CSRF-Token with every request that changes
// something: another site can make the browser send the cookie, but cannot
// read the value.

const (
	sessionCookie = "sw_session"
	csrfHeader    = "X-CSRF-Token"
	// signInLimit bounds sign-in bodies: a username, a password, a phone.
	signInLimit = 4 << 10
)

// Failed sign-ins per username and address before 429: five, then one a
// minute (5 in 5 minutes).
const (
	signInFailures = 5
	signInPeriod   = 5 * time.Minute
)

var (
	errBadCredentials = newError(fiber.StatusUnauthorized, "unauthorized", "wrong username or password")
	errCSRF           = newError(fiber.StatusForbidden, "csrf", "send the session's csrf value in the X-CSRF-Token header")
)

const sessionKey = "session"

// authenticateSession signs the request in by the session cookie, if it
// names a live session. A stale cookie is ignored, not refused: endpoints
// that need someone say 401 themselves, public ones still work. Requests
// that change something must carry the session's CSRF value.
func (s *server) authenticateSession(c *fiber.Ctx) error {
	token := c.Cookies(sessionCookie)
	if token == "" {
		return c.Next()
	}
	sess, renewed, err := s.Accounts.Session(c.UserContext(), token)
	if errors.Is(err, accounts.ErrNoSession) {
		return c.Next()
	}
	if err != nil {
		return err
	}
	if renewed {
		// Before anything can refuse the request: the stored expiry has
		// moved, and the browser's must follow it.
		s.setSessionCookie(c, token, sess.ExpiresAt)
	}
	switch c.Method() {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions:
	default:
		if subtle.ConstantTimeCompare([]byte(c.Get(csrfHeader)), []byte(sess.CSRF)) != 1 {
			return errCSRF
		}
	}
	c.Locals(principalKey, Principal{Role: sess.Role, Community: sess.Community, Subject: sess.Subject})
	c.Locals(sessionKey, sess)
	return c.Next()
}

func (s *server) setSessionCookie(c *fiber.Ctx, token string, expires time.Time) {
	c.Cookie(&fiber.Cookie{
		Name: sessionCookie, Value: token, Path: "/", Expires: expires, MaxAge: int(expires.Sub(s.Now()).Seconds()),
		HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode, Secure: strings.HasPrefix(s.PublicURL, "https:"),
	})
}

func (s *server) clearSessionCookie(c *fiber.Ctx) {
	c.Cookie(&fiber.Cookie{
		Name: sessionCookie, Value: "", Path: "/", Expires: time.Unix(0, 0),
		HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode, Secure: strings.HasPrefix(s.PublicURL, "https:"),
	})
}

func checkSignInSize(c *fiber.Ctx) error {
	if len(c.Body()) > signInLimit {
		return &httpError{status: fiber.StatusRequestEntityTooLarge, code: "too_large", message: "request body too large",
			fields: map[string]string{"body": "too large"}}
	}
	return nil
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// login signs a staff member in with a username and password. Unknown
// user and wrong password get the same answer in about the same time;
// five failures for one username from one address lock them out for a
// while (429 with Retry-After).
func (s *server) login(c *fiber.Ctx) error {
	if err := checkSignInSize(c); err != nil {
		return err
	}
	var req loginRequest
	if err := decodeJSON(c, &req, true); err != nil {
		return err
	}
	key := strings.ToLower(strings.TrimSpace(req.Username)) + "|" + s.clientIP(c)
	if wait := s.signIns.Wait(key, s.Now()); wait > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		return newError(fiber.StatusTooManyRequests, "rate_limited", "too many failed sign-ins; try again later")
	}
	sess, token, err := s.Accounts.SignIn(c.UserContext(), req.Username, req.Password)
	if errors.Is(err, accounts.ErrBadCredentials) {
		s.signIns.Fail(key, s.Now())
		s.Log.Info("sign-in refused", "ip", s.clientIP(c))
		return errBadCredentials
	}
	if err != nil {
		return err
	}
	s.signIns.Forget(key)
	s.setSessionCookie(c, token, sess.ExpiresAt)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(sess)
}

// logout ends the cookie's session and clears the cookie. Signed out
// already, or calling with a bearer token, is fine: nothing to end.
func (s *server) logout(c *fiber.Ctx) error {
	if _, ok := c.Locals(sessionKey).(accounts.Session); ok {
		if err := s.Accounts.SignOut(c.UserContext(), c.Cookies(sessionCookie)); err != nil {
			return err
		}
	}
	s.clearSessionCookie(c)
	return c.SendStatus(fiber.StatusNoContent)
}

// getSession says who the browser is signed in as, with the CSRF value
// the page needs. A bearer token gets who it stands for (no CSRF).
func (s *server) getSession(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	if sess, ok := c.Locals(sessionKey).(accounts.Session); ok {
		return c.JSON(sess)
	}
	p, ok := c.Locals(principalKey).(Principal)
	if !ok {
		return errUnauthenticated
	}
	return c.JSON(accounts.Session{Role: p.Role, Community: p.Community, Subject: p.Subject})
}

type smsLoginRequest struct {
	Phone     string `json:"phone"`
	Community string `json:"community"`
}

// loginBySMS texts a registered resident a one-tap sign-in link. The
// answer is the same whether or not the phone is registered.
func (s *server) loginBySMS(c *fiber.Ctx) error {
	if err := checkSignInSize(c); err != nil {
		return err
	}
	var req smsLoginRequest
	if err := decodeJSON(c, &req, true); err != nil {
		return err
	}
	if err := s.Accounts.TextLoginLink(c.UserContext(), req.Phone, req.Community); err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"status": "sent_if_registered"})
}

// loginByLink is the 登录 button of a texted sign-in link: it uses the
// link (once), sets the resident's cookie and goes to the resident page.
func (s *server) loginByLink(c *fiber.Ctx, token string) error {
	if c.FormValue("action") != "login" {
		return fieldError(fiber.StatusBadRequest, "action", "login")
	}
	sess, cookie, err := s.Accounts.SignInByLink(c.UserContext(), token)
	if errors.Is(err, links.ErrUsed) || errors.Is(err, links.ErrExpired) || errors.Is(err, errdefs.ErrNotFound) {
		return s.linkPage(c, "") // it says the link no longer works
	}
	if err != nil {
		return err
	}
	s.setSessionCookie(c, cookie, sess.ExpiresAt)
	return c.Redirect("/", fiber.StatusSeeOther)
}
