package api

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/shouwang/shouwang/cap"
	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/incidents"
)

// feedLimit bounds the feed: platforms poll it often.
const feedLimit = 200

// capFeed serves the Atom feed of CAP alerts for public types: active
// incidents and those closed within cap.FeedWindow, drills left out. It is
// for alerting platforms, so it needs no token and shows everyone the same.
func (s *server) capFeed(c *fiber.Ctx) error {
	ctx := c.UserContext()
	community := c.Query("community")
	now := s.Now()
	self, title := s.capBase(c)+"/v1/cap/feed", "守望社区预警 Shouwang community alerts"
	if community != "" {
		// An unknown community is a 404, not an empty feed that looks fine.
		name, err := s.capCommunity(c, community)
		if err != nil {
			return err
		}
		self += "?community=" + url.QueryEscape(community)
		title += " · " + name.Name
	}
	list, err := incidents.Recent(ctx, s.DB, incidents.RecentFilter{Types: s.Tax.PublicTypes(), Community: community,
		ClosedSince: now.Add(-cap.FeedWindow), Limit: feedLimit})
	if err != nil {
		return err
	}
	base := s.capBase(c)
	names := map[string]cap.Community{}
	entries := make([]cap.FeedEntry, 0, len(list))
	for _, in := range list {
		name, ok := names[in.Community]
		if !ok {
			if name, err = s.capCommunity(c, in.Community); err != nil {
				return err
			}
			names[in.Community] = name
		}
		it, _ := s.Tax.Type(in.Type)
		entries = append(entries, cap.FeedEntry{Alert: cap.Build(in, it, name, s.capSender(c)),
			URL: base + "/v1/incidents/" + url.PathEscape(in.ID) + "/cap"})
	}
	doc, err := cap.Feed(title, self, entries, now)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, cap.FeedContentType+"; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "public, max-age=60")
	return c.Send(doc)
}

// incidentCAP serves one incident as a CAP document. Incidents of public
// types (not drills) are anyone's to read; the others only the
// community's dispatchers and admins see, and to anyone else they do not
// exist (404, as elsewhere in the API).
func (s *server) incidentCAP(c *fiber.Ctx) error {
	ctx := c.UserContext()
	in, err := incidents.Get(ctx, s.DB, c.Params("id"))
	if err != nil {
		return err
	}
	it, ok := s.Tax.Type(in.Type)
	if !ok {
		return fmt.Errorf("incident %s has unknown type %q", in.ID, in.Type)
	}
	public := it.CAP.Public && !in.Drill
	if !public {
		p, signedIn := c.Locals(principalKey).(Principal)
		if !signedIn || !(p.Role == RoleAdmin || (p.Role == RoleDispatcher && p.Community == in.Community)) {
			return fmt.Errorf("incident %s: %w", in.ID, errdefs.ErrNotFound)
		}
	}
	name, err := s.capCommunity(c, in.Community)
	if err != nil {
		return err
	}
	doc, err := cap.Build(in, it, name, s.capSender(c)).Marshal()
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, cap.ContentType+"; charset=utf-8")
	if public {
		c.Set(fiber.HeaderCacheControl, "public, max-age=60")
	} else {
		c.Set(fiber.HeaderCacheControl, "private, no-store")
	}
	return c.Send(doc)
}

func (s *server) capCommunity(c *fiber.Ctx, id string) (cap.Community, error) {
	comm, err := s.Registry.GetCommunity(c.UserContext(), id)
	if err != nil {
		return cap.Community{}, err
	}
	return cap.Community{Name: comm.Name, NameEN: comm.NameEN}, nil
}

// capBase is where links in the feed point: the public URL, or the URL
// the request came in on when there is none (a laptop).
func (s *server) capBase(c *fiber.Ctx) string {
	if s.PublicURL != "" {
		return strings.TrimRight(s.PublicURL, "/")
	}
	return c.BaseURL()
}

// capSender names us in CAP messages: the configured sender, else the
// public URL's host, else the host the request came to.
func (s *server) capSender(c *fiber.Ctx) string {
	if s.CAPSender != "" {
		return s.CAPSender
	}
	if u, err := url.Parse(s.PublicURL); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	host := c.Hostname()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return host
}
