package responders

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/rtree"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/storage"
)

// Index is an in-memory spatial index of the responders who are taking
// calls, per community, with the few facts matching filters on: skills,
// certificate expiry, availability windows and team. It answers "the k
// nearest qualified available responders" without SQL.
//
// It is a cache, never the truth: it may lag a write made by another
// replica, and it does not know who is busy. Dispatch therefore reads the
// responders it proposes once more from the database, by id, in the offer's
// transaction, and falls back to the SQL query whenever the index cannot
// fill a wave (see Dispatcher.pick). The index only decides who is looked
// at first.
type Index struct {
	bits      map[string]uint8 // skill → bit in fact.skills
	certified uint64           // bits of the skills that need a valid certificate

	// Waves filled from the index, and those left to SQL, for metrics.
	filled, left atomic.Uint64

	mu          sync.RWMutex
	communities map[string]*communityIndex
	where       map[string]string // responder id → community it is indexed in
	loaded      bool
}

// communityIndex holds one community's responders: per skill, an R-tree
// of slots into facts (a responder with three skills is in three trees), so
// a search for a rare skill never wades through everyone else. Freed slots
// are reused so the slice does not grow with churn.
type communityIndex struct {
	trees [64]*rtree.RTreeG[entry] // by skill bit
	facts []fact
	slot  map[string]int32 // responder id → slot
	free  []int32
}

// fact is what matching needs to know about one responder.
type fact struct {
	id     string
	at     geo.Point
	skills uint64     // one bit per taxonomy skill
	certs  []certFact // certificates of certified skills
	spans  []span     // weekly availability; nil is any time
	team   string     // for drill scopes
	pro    bool       // professionals win ties
}

type certFact struct {
	bit   uint8
	until int64 // expiry in Unix nanoseconds, see unixNano
}

// entry is a responder in one skill's tree. It carries what a walk checks
// for every responder it passes, so that most are judged without leaving
// the tree's leaf (a fact elsewhere in memory is a cache miss).
type entry struct {
	slot     int32 // in communityIndex.facts
	windowed bool  // has availability windows, in the fact
	// until is when the last certificate for the tree's skill expires
	// (Unix nanoseconds); a skill without certificates ignores it.
	until  int64
	cosLat float64 // cos of the latitude, as geo.DistanceM computes it
}

// entry is f's entry in the tree of skill bit b.
func (f *fact) entry(slot int32, b uint8) entry {
	e := entry{slot: slot, windowed: f.spans != nil, until: math.MinInt64, cosLat: math.Cos(rad(f.at.Lat))}
	for _, c := range f.certs {
		if c.bit == b {
			e.until = max(e.until, c.until)
		}
	}
	return e
}

var (
	minNano = time.Unix(0, math.MinInt64)
	maxNano = time.Unix(0, math.MaxInt64)
)

// unixNano is t in Unix nanoseconds, clamped to what an int64 holds (a
// certificate "valid until 9999" is valid for as long as this runs).
func unixNano(t time.Time) int64 {
	switch {
	case t.Before(minNano):
		return math.MinInt64
	case t.After(maxNano):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// NewIndex makes an empty index for a taxonomy. It fails when the taxonomy
// has more skills than a bitmask holds.
func NewIndex(tax *events.Taxonomy) (*Index, error) {
	names := tax.SkillNames()
	if len(names) > 64 {
		return nil, fmt.Errorf("match index: %d skills, at most 64 fit a bitmask", len(names))
	}
	x := &Index{bits: map[string]uint8{}, communities: map[string]*communityIndex{}, where: map[string]string{}}
	for i, n := range names {
		x.bits[n] = uint8(i)
		if tax.Skills[n].Certified {
			x.certified |= 1 << i
		}
	}
	return x, nil
}

// Loaded reports whether the index holds the whole registry; until then
// matching uses SQL only.
func (x *Index) Loaded() bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.loaded
}

// Waves counts the waves the index filled and those it left to SQL
// (not loaded yet, or too few people near).
func (x *Index) Waves() (filled, left uint64) {
	return x.filled.Load(), x.left.Load()
}

// Len is the number of responders indexed.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.where)
}

// replaceAll swaps in a freshly loaded registry.
func (x *Index) replaceAll(rs []Responder) {
	fresh := &Index{bits: x.bits, certified: x.certified, communities: map[string]*communityIndex{}, where: map[string]string{}}
	for _, r := range rs {
		fresh.put(r)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.communities, x.where, x.loaded = fresh.communities, fresh.where, true
}

// replaceCommunity swaps in a freshly read community.
func (x *Index) replaceCommunity(community string, rs []Responder) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old := x.communities[community]; old != nil {
		for id := range old.slot {
			delete(x.where, id)
		}
		delete(x.communities, community)
	}
	for _, r := range rs {
		x.put(r)
	}
}

// Apply brings the index in line with responders as read from the
// database: gone lists ids that no longer exist.
func (x *Index) Apply(rs []Responder, gone []string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, r := range rs {
		x.put(r)
	}
	for _, id := range gone {
		x.remove(id)
	}
}

// put inserts or replaces r; a responder not taking calls is removed, as
// matching never wants them. The caller holds the write lock.
func (x *Index) put(r Responder) {
	x.remove(r.ID)
	if !r.Available {
		return
	}
	c := x.communities[r.Community]
	if c == nil {
		c = &communityIndex{slot: map[string]int32{}}
		x.communities[r.Community] = c
	}
	f := fact{id: r.ID, at: r.Location, team: r.Team, pro: r.Kind == KindProfessional}
	for _, s := range r.Skills {
		if b, ok := x.bits[s]; ok {
			f.skills |= 1 << b
		}
	}
	for _, cert := range r.Certificates {
		if b, ok := x.bits[cert.Skill]; ok && x.certified&(1<<b) != 0 {
			f.certs = append(f.certs, certFact{bit: b, until: unixNano(cert.ExpiresAt)})
		}
	}
	if len(r.Availability) > 0 {
		f.spans = r.Availability.spans()
		if f.spans == nil {
			f.spans = []span{} // windows that cover nothing: never available
		}
	}
	var i int32
	if n := len(c.free); n > 0 {
		i, c.free = c.free[n-1], c.free[:n-1]
		c.facts[i] = f
	} else {
		i = int32(len(c.facts))
		c.facts = append(c.facts, f)
	}
	c.slot[r.ID] = i
	p := [2]float64{r.Location.Lng, r.Location.Lat}
	for b := range 64 {
		if f.skills&(1<<b) != 0 {
			if c.trees[b] == nil {
				c.trees[b] = &rtree.RTreeG[entry]{}
			}
			c.trees[b].Insert(p, p, f.entry(i, uint8(b)))
		}
	}
	x.where[r.ID] = r.Community
}

// remove drops a responder. The caller holds the write lock.
func (x *Index) remove(id string) {
	community, ok := x.where[id]
	if !ok {
		return
	}
	delete(x.where, id)
	c := x.communities[community]
	i := c.slot[id]
	f := &c.facts[i]
	p := [2]float64{f.at.Lng, f.at.Lat}
	for b := range 64 {
		if f.skills&(1<<b) != 0 {
			c.trees[b].Delete(p, p, f.entry(i, uint8(b)))
		}
	}
	delete(c.slot, id)
	c.facts[i] = fact{}
	c.free = append(c.free, i)
	if len(c.slot) == 0 {
		delete(x.communities, community)
	}
}

// Query is a k-nearest question to the index.
type Query struct {
	Community string
	At        geo.Point
	RadiusM   float64
	// Skills: a responder qualified now for any of them matches.
	Skills []string
	Now    time.Time
	// Exclude are responders not to return (asked already).
	Exclude map[string]bool
	// Scope limits a drill to its teams and responders; nil is everyone.
	Scope *Scope
	Limit int
}

// Hit is a responder the index proposes.
type Hit struct {
	ID        string
	DistanceM float64
}

// Nearest answers q: up to q.Limit responders within q.RadiusM who are
// available, inside their availability windows and qualified at q.Now for
// one of q.Skills, nearest first; equal distances prefer professionals,
// then the lower id, as Rank does. The hits are appended to dst. It
// reports false when the index has not been loaded yet.
func (x *Index) Nearest(q Query, dst []Hit) ([]Hit, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if !x.loaded {
		return dst, false
	}
	c := x.communities[q.Community]
	if c == nil || q.Limit <= 0 {
		return dst, true
	}
	var want uint64
	for _, s := range q.Skills {
		if b, ok := x.bits[s]; ok {
			want |= 1 << b
		}
	}
	start := len(dst)
	s := search{q: q, c: c, now: unixNano(q.Now), minute: MinuteOfWeek(q.Now), lat: rad(q.At.Lat), cosLat: math.Cos(rad(q.At.Lat))}
	if len(q.Exclude) > 0 {
		s.exclude = make(map[int32]bool, len(q.Exclude))
		for id := range q.Exclude {
			if i, ok := c.slot[id]; ok {
				s.exclude[i] = true
			}
		}
	}
	for b := range 64 {
		if want&(1<<b) == 0 || c.trees[b] == nil {
			continue
		}
		s.bit, s.needCert, s.from = uint8(b), x.certified&(1<<b) != 0, len(dst)
		s.hits = dst
		c.trees[b].Nearby(s.key, s.take)
		dst = s.hits
	}
	// Equal distances come out of a tree in any order, and a responder
	// qualified for two of the skills was found twice: sort as Rank does,
	// drop the repeats, then cut.
	hits := dst[start:]
	slices.SortFunc(hits, func(a, b Hit) int {
		if a.DistanceM != b.DistanceM {
			if a.DistanceM < b.DistanceM {
				return -1
			}
			return 1
		}
		pa, pb := c.facts[c.slot[a.ID]].pro, c.facts[c.slot[b.ID]].pro
		if pa != pb {
			if pa {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	hits = slices.CompactFunc(hits, func(a, b Hit) bool { return a.ID == b.ID })
	return dst[:start+min(len(hits), q.Limit)], true
}

// search is one walk of one skill's tree, nearest first. The walk is
// ordered by the haversine term h = hav(Δφ) + cos φ1·cos φ2·hav(Δλ), which
// grows with distance, so neither arcsines nor square roots are taken for
// the many points passed over.
type search struct {
	q        Query
	c        *communityIndex
	now      int64 // q.Now in Unix nanoseconds
	minute   int   // q.Now's minute of the week
	exclude  map[int32]bool
	lat      float64 // q.At's latitude in radians
	cosLat   float64
	bit      uint8 // the skill of the tree
	needCert bool  // the skill needs a valid certificate
	from     int   // where this tree's hits start in hits
	hits     []Hit
}

// key is the walk's priority: h for a responder who matches (+Inf for one
// who does not), a lower bound of h for a box.
func (s *search) key(min, max [2]float64, e entry, item bool) float64 {
	if !item {
		return boxLowerBound(s.q.At.Lat, s.q.At.Lng, s.cosLat, min, max)
	}
	if !s.matches(e) {
		return math.Inf(1)
	}
	dLat, dLng := rad(min[1])-s.lat, rad(min[0]-s.q.At.Lng)
	return math.Sin(dLat/2)*math.Sin(dLat/2) + s.cosLat*e.cosLat*math.Sin(dLng/2)*math.Sin(dLng/2)
}

// take keeps the responders as they come, nearest first, until the radius
// or the limit is passed; those tied with the last place are kept too, for
// Nearest to break the tie.
func (s *search) take(_, _ [2]float64, e entry, h float64) bool {
	if math.IsInf(h, 1) {
		return false
	}
	f := &s.c.facts[e.slot]
	d := geo.DistanceM(s.q.At, f.at) // exactly as Rank measures
	if d > s.q.RadiusM {
		return false
	}
	if len(s.hits)-s.from >= s.q.Limit && d > s.hits[len(s.hits)-1].DistanceM {
		return false
	}
	s.hits = append(s.hits, Hit{ID: f.id, DistanceM: d})
	return true
}

// matches reports whether e may be proposed for the tree's skill. The
// fact is read only for windows, drill scopes and exclusions.
func (s *search) matches(e entry) bool {
	if s.needCert && e.until <= s.now {
		return false
	}
	if s.exclude[e.slot] {
		return false
	}
	if !e.windowed && s.q.Scope == nil {
		return true
	}
	f := &s.c.facts[e.slot]
	if f.spans != nil && !covers(f.spans, s.minute) {
		return false
	}
	sc := s.q.Scope
	return sc == nil || (f.team != "" && slices.Contains(sc.Teams, f.team)) || slices.Contains(sc.Responders, f.id)
}

func rad(d float64) float64 { return d * math.Pi / 180 }

// boxLowerBound is a haversine term h that no point of the lat/lng box
// [min, max] ([lng, lat] pairs) is below, seen from (lat, lng): h =
// hav(Δφ) + cos φ1·cos φ2·hav(Δλ) is at least hav(Δφmin) +
// cos²φmax·hav(Δλmin), with φmax the largest |latitude| of the point and
// the box. The bound never exceeds the true h, so the R-tree's
// nearest-first walk stays exact.
func boxLowerBound(lat, lng, cosLat float64, min, max [2]float64) float64 {
	var dLat, dLng float64
	switch {
	case lat < min[1]:
		dLat = min[1] - lat
	case lat > max[1]:
		dLat = lat - max[1]
	}
	if lng < min[0] || lng > max[0] {
		// The nearer edge going east or west, across the antimeridian if
		// need be; the two ways round and the box's width make 360°.
		east, west := min[0]-lng, lng-max[0]
		if east < 0 {
			east += 360
		}
		if west < 0 {
			west += 360
		}
		dLng = math.Min(east, west)
	}
	if dLat == 0 && dLng == 0 {
		return 0
	}
	// No trigonometry here: a walk computes this for every box it
	// passes. cos is concave on [0°, 90°], so between |lat| and 90° it
	// lies above the chord from (|lat|, cosLat) to (90°, 0); and
	// sin x ≥ x − x³/6 for x ≥ 0.
	cosMax := cosLat
	if far, near := math.Max(math.Abs(min[1]), math.Abs(max[1])), math.Abs(lat); far > near {
		cosMax = cosLat * (90 - far) / (90 - near)
	}
	sLat, sLng := sinBelow(rad(dLat)/2), sinBelow(rad(dLng)/2)
	// A hair less, so rounding never lifts the bound above the exact h.
	return (sLat*sLat + cosMax*cosMax*sLng*sLng) * (1 - 1e-9)
}

// sinBelow is a lower bound of sin x for 0 ≤ x ≤ π/2.
func sinBelow(x float64) float64 { return x - x*x*x/6 }

// pick fills a wave from the index. The responders it proposes are read
// again from the database in the caller's transaction, keeping only those
// still taking calls, idle, in the drill's scope and qualified there: a
// stale index can never offer a busy or withdrawn person. ok is false when
// the index cannot fill the wave (not loaded yet, or fewer people than
// asked for within the radius); the caller then asks SQL, which also finds
// a responder another replica registered a moment ago.
func (x *Index) pick(ctx context.Context, q storage.Querier, tax *events.Taxonomy, iq Query) ([]Candidate, bool, error) {
	if x == nil || iq.Limit <= 0 {
		return nil, false, nil
	}
	picked, ok, err := x.fill(ctx, q, tax, iq)
	if err == nil && ok {
		x.filled.Add(1)
	} else if err == nil {
		x.left.Add(1)
	}
	return picked, ok, err
}

func (x *Index) fill(ctx context.Context, q storage.Querier, tax *events.Taxonomy, iq Query) ([]Candidate, bool, error) {
	limit, asked := iq.Limit, iq.Exclude
	seen := make(map[string]bool, len(asked)+2*limit)
	for id := range asked {
		seen[id] = true
	}
	var confirmed []Responder
	var hits []Hit
	want := limit
	// Each round asks for the places still open (twice over after the
	// first: whoever was dropped suggests others nearby are busy too).
	for range 4 {
		iq.Exclude, iq.Limit = seen, want
		var ok bool
		if hits, ok = x.Nearest(iq, hits[:0]); !ok {
			return nil, false, nil
		}
		ids := make([]string, len(hits))
		for i, h := range hits {
			ids[i] = h.ID
			seen[h.ID] = true
		}
		rs, err := respondersByID(ctx, q, ids, ` AND available = true AND busy_incident = ''`)
		if err != nil {
			return nil, false, fmt.Errorf("confirm indexed candidates: %w", err)
		}
		confirmed = append(confirmed, iq.Scope.Filter(rs)...)
		ranked := Rank(tax, confirmed, iq.Skills, iq.At, iq.RadiusM, iq.Now, asked, limit)
		if len(ranked) >= limit {
			return ranked, true, nil
		}
		if len(hits) < want {
			return nil, false, nil // the index knows nobody else
		}
		want = 2 * (limit - len(ranked))
	}
	return nil, false, nil
}
