package geo

import (
	"math"
	"testing"
)

func TestDistance(t *testing.T) {
	// People's Square to the Bund in Shanghai: about 1.5 km.
	a := Point{31.2304, 121.4737}
	b := Point{31.2400, 121.4900}
	d := DistanceM(a, b)
	if d < 1800 || d > 1950 {
		t.Fatalf("distance = %.0f m, want about 1.88 km", d)
	}
	for _, m := range []float64{10, 500, 3000} {
		o := Offset(a, m*0.6, m*0.8)
		if got := DistanceM(a, o); math.Abs(got-m) > m*0.01 {
			t.Errorf("offset %v m: distance %v", m, got)
		}
		box := BoxAround(a, m)
		if o.Lat < box.MinLat || o.Lat > box.MaxLat || o.Lng < box.MinLng || o.Lng > box.MaxLng {
			t.Errorf("point %v m away outside its box %+v", m, box)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		p  Point
		ok bool
	}{
		{Point{31.2, 121.4}, true},
		{Point{91, 0}, false},
		{Point{0, 181}, false},
		{Point{0, 0}, false},
		{Point{math.NaN(), 1}, false},
		{Point{-33.9, 151.2}, true},
	} {
		if err := tc.p.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: err=%v, want ok=%v", tc.p, err, tc.ok)
		}
	}
}
