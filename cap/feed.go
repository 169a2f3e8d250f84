package cap

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"
	"time"
)

// FeedContentType is the media type of the Atom feed.
const FeedContentType = "application/atom+xml"

// FeedWindow is how long a closed incident stays in the feed, so platforms
// polling it see the all-clear or the cancellation; it is also when those
// expire.
const FeedWindow = 24 * time.Hour

// FeedEntry is one CAP message in the feed and the URL its document is at.
type FeedEntry struct {
	Alert Alert
	URL   string
}

type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	ID      string      `xml:"id"`
	Title   string      `xml:"title"`
	Updated string      `xml:"updated"`
	Author  atomPerson  `xml:"author"`
	Links   []atomLink  `xml:"link"`
	Entries []atomEntry `xml:"entry"`
}

type atomPerson struct {
	Name string `xml:"name"`
}

type atomLink struct {
	Rel  string `xml:"rel,attr"`
	Type string `xml:"type,attr"`
	Href string `xml:"href,attr"`
}

type atomEntry struct {
	ID        string      `xml:"id"`
	Title     string      `xml:"title"`
	Updated   string      `xml:"updated"`
	Published string      `xml:"published,omitempty"`
	Category  []atomTerm  `xml:"category"`
	Summary   string      `xml:"summary"`
	Links     []atomLink  `xml:"link"`
	Content   atomContent `xml:"content"`
}

type atomTerm struct {
	Term string `xml:"term,attr"`
}

// atomContent points at the CAP document instead of copying it (RFC 4287
// 4.1.3.2: out-of-line content, so the entry also has a summary).
type atomContent struct {
	Type string `xml:"type,attr"`
	Src  string `xml:"src,attr"`
}

// Feed writes an Atom (RFC 4287) feed of CAP messages, the latest first.
// self is the feed's own URL and its id; now dates an empty feed.
func Feed(title, self string, entries []FeedEntry, now time.Time) ([]byte, error) {
	// Every CAP time is in one zone and one format, so the text orders them.
	entries = slices.Clone(entries)
	slices.SortStableFunc(entries, func(a, b FeedEntry) int { return strings.Compare(b.Alert.Sent, a.Alert.Sent) })
	f := atomFeed{
		ID:      self,
		Title:   title,
		Updated: FormatTime(now),
		Author:  atomPerson{Name: "守望 Shouwang"},
		Links:   []atomLink{{Rel: "self", Type: FeedContentType, Href: self}},
		Entries: []atomEntry{},
	}
	if len(entries) > 0 {
		f.Updated = entries[0].Alert.Sent
	}
	for _, e := range entries {
		a := e.Alert
		entry := atomEntry{
			// An entry is one message: the all-clear is a new entry, not
			// the alert edited.
			ID:      e.URL + "#" + a.Identifier,
			Updated: a.Sent,
			Links:   []atomLink{{Rel: "alternate", Type: ContentType, Href: e.URL}},
			Content: atomContent{Type: ContentType, Src: e.URL},
		}
		var titles, summaries []string
		for _, in := range a.Info {
			titles = append(titles, in.Headline)
			summaries = append(summaries, in.Description)
			entry.Published = in.Onset
		}
		if len(a.Info) > 0 {
			for _, c := range a.Info[0].Category {
				entry.Category = append(entry.Category, atomTerm{Term: c})
			}
		}
		entry.Title = strings.Join(titles, " / ")
		entry.Summary = strings.Join(summaries, " ")
		f.Entries = append(f.Entries, entry)
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("encode CAP feed: %w", err)
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}
