package captest

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// specAlert is the part of an alert the specification has rules about
// that the schema cannot express. It is decoded here, not with the cap
// package's types, so a mistake there cannot hide itself.
type specAlert struct {
	Identifier  string `xml:"identifier"`
	Sender      string `xml:"sender"`
	MsgType     string `xml:"msgType"`
	Scope       string `xml:"scope"`
	Restriction string `xml:"restriction"`
	Addresses   string `xml:"addresses"`
	References  string `xml:"references"`
	Info        []struct {
		Area []struct {
			Circle []string `xml:"circle"`
		} `xml:"area"`
	} `xml:"info"`
}

// SpecErrors lists where doc breaks rules of the CAP 1.2 specification
// that the XSD does not state (section 3.2).
func SpecErrors(doc []byte) []string {
	var a specAlert
	if err := xml.Unmarshal(doc, &a); err != nil {
		return []string{err.Error()}
	}
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	for field, v := range map[string]string{"identifier": a.Identifier, "sender": a.Sender} {
		if v == "" || strings.ContainsAny(v, " \t\r\n,<&") {
			bad("%s %q: required, without spaces, commas, < or &", field, v)
		}
	}
	switch a.Scope {
	case "Restricted":
		if strings.TrimSpace(a.Restriction) == "" {
			bad("scope Restricted needs a restriction")
		}
	case "Private":
		if strings.TrimSpace(a.Addresses) == "" {
			bad("scope Private needs addresses")
		}
	}
	if (a.MsgType == "Update" || a.MsgType == "Cancel") && strings.TrimSpace(a.References) == "" {
		bad("msgType %s must name the messages it refers to in references", a.MsgType)
	}
	for _, ref := range strings.Fields(a.References) {
		parts := strings.Split(ref, ",")
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
			bad("reference %q: want sender,identifier,sent", ref)
			continue
		}
		if _, err := time.Parse(time.RFC3339, parts[2]); err != nil {
			bad("reference %q: sent: %v", ref, err)
		}
	}
	for _, in := range a.Info {
		for _, ar := range in.Area {
			for _, c := range ar.Circle {
				if msg := circleError(c); msg != "" {
					bad("circle %q: %s", c, msg)
				}
			}
		}
	}
	return errs
}

// circleError checks "lat,lon radius": WGS 84 degrees and kilometres.
func circleError(c string) string {
	point, radius, ok := strings.Cut(strings.TrimSpace(c), " ")
	latS, lonS, ok2 := strings.Cut(point, ",")
	if !ok || !ok2 {
		return "want \"lat,lon radius\""
	}
	lat, err1 := strconv.ParseFloat(latS, 64)
	lon, err2 := strconv.ParseFloat(lonS, 64)
	r, err3 := strconv.ParseFloat(radius, 64)
	switch {
	case err1 != nil || lat < -90 || lat > 90:
		return "latitude out of range"
	case err2 != nil || lon < -180 || lon > 180:
		return "longitude out of range"
	case err3 != nil || r < 0:
		return "radius must be kilometres >= 0"
	}
	return ""
}
