// Package geo has the little geometry Shouwang needs: points, great-circle
// distance and the bounding box that narrows a radius search.
package geo

import (
	"fmt"
	"math"
)

// Point is a WGS-84 position in degrees.
type Point struct {
	Lat float64 `json:"lat"`
	Lng float64 `json:"lng"`
}

const earthRadiusM = 6371008.8

// Validate says what is wrong with a point, if anything.
func (p Point) Validate() error {
	switch {
	case math.IsNaN(p.Lat) || math.IsNaN(p.Lng) || math.IsInf(p.Lat, 0) || math.IsInf(p.Lng, 0):
		return fmt.Errorf("not a number")
	case p.Lat < -90 || p.Lat > 90:
		return fmt.Errorf("lat %v out of range -90..90", p.Lat)
	case p.Lng < -180 || p.Lng > 180:
		return fmt.Errorf("lng %v out of range -180..180", p.Lng)
	case p.Lat == 0 && p.Lng == 0:
		// 0,0 is what a phone sends when it has no fix, not a real place.
		return fmt.Errorf("0,0 is not a real location")
	}
	return nil
}

// DistanceM is the haversine distance between a and b in metres.
func DistanceM(a, b Point) float64 {
	lat1, lat2 := rad(a.Lat), rad(b.Lat)
	dLat, dLng := lat2-lat1, rad(b.Lng-a.Lng)
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1)*math.Cos(lat2)*math.Sin(dLng/2)*math.Sin(dLng/2)
	return 2 * earthRadiusM * math.Asin(math.Min(1, math.Sqrt(h)))
}

// Box is a lat/lng rectangle.
type Box struct {
	MinLat, MinLng, MaxLat, MaxLng float64
}

// BoxAround returns a box that contains every point within radiusM of c.
func BoxAround(c Point, radiusM float64) Box {
	dLat := radiusM / earthRadiusM * 180 / math.Pi
	cos := math.Cos(rad(c.Lat))
	dLng := 180.0
	if cos > 1e-6 {
		dLng = math.Min(180, dLat/cos)
	}
	return Box{MinLat: c.Lat - dLat, MaxLat: c.Lat + dLat, MinLng: c.Lng - dLng, MaxLng: c.Lng + dLng}
}

// Offset moves p by north and east metres; demo data and tests use it to
// place people around a centre.
func Offset(p Point, northM, eastM float64) Point {
	dLat := northM / earthRadiusM * 180 / math.Pi
	dLng := eastM / (earthRadiusM * math.Cos(rad(p.Lat))) * 180 / math.Pi
	return Point{Lat: p.Lat + dLat, Lng: p.Lng + dLng}
}

func rad(d float64) float64 { return d * math.Pi / 180 }
