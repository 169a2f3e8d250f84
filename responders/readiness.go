package responders

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
)

// Band is a time-of-day band the readiness report measures separately:
// a grid well covered by day can be empty at night, when volunteers who
// work elsewhere are home and professionals are off duty.
type Band struct {
	ID    string       `json:"id"`
	Label events.Label `json:"label"`
	// Window is the band as an availability window.
	Window Window `json:"window"`
}

// Bands are the four bands of a week.
var Bands = []Band{
	{ID: "weekday_day", Label: events.Label{ZH: "工作日白天", EN: "Weekday daytime"},
		Window: Window{Days: []int{1, 2, 3, 4, 5}, Start: "08:00", End: "18:00"}},
	{ID: "weekday_night", Label: events.Label{ZH: "工作日夜间", EN: "Weekday nights"},
		Window: Window{Days: []int{1, 2, 3, 4, 5}, Start: "18:00", End: "08:00"}},
	{ID: "weekend_day", Label: events.Label{ZH: "周末白天", EN: "Weekend daytime"},
		Window: Window{Days: []int{6, 7}, Start: "08:00", End: "18:00"}},
	{ID: "weekend_night", Label: events.Label{ZH: "周末夜间", EN: "Weekend nights"},
		Window: Window{Days: []int{6, 7}, Start: "18:00", End: "08:00"}},
}

// ReadinessRadii are the distances the report counts within: 500 m is a
// few minutes on foot, 1 km about the most a first responder should walk.
var ReadinessRadii = []float64{500, 1000}

// sampleStep is how finely a band is checked: availability windows are
// written in minutes, but nobody writes them finer than a quarter hour.
const sampleStep = 15

// Grid is a grid (网格) of a community: the unit of community management
// in China, each with a grid worker. Readiness is measured from its centre.
type Grid struct {
	ID        string    `json:"id"`
	Community string    `json:"community"`
	Name      string    `json:"name"`
	Location  geo.Point `json:"location"`
	CreatedAt time.Time `json:"created_at"`
}

// Coverage is how many responders with one skill are near one grid in one
// band: the fewest available at any moment of the band.
type Coverage struct {
	Grid   string         `json:"grid"`
	Skill  string         `json:"skill"`
	Band   string         `json:"band"`
	Within map[string]int `json:"within"` // "500", "1000" metres → responders
	// Thinnest is when in the band the 500 m count is lowest, e.g. "周三 03:00".
	Thinnest string `json:"thinnest,omitempty"`
}

// Gap is a coverage shortfall in plain words.
type Gap struct {
	Grid    string       `json:"grid"`
	Skill   string       `json:"skill"`
	Band    string       `json:"band"`
	RadiusM int          `json:"radius_m"`
	Have    int          `json:"have"`
	Need    int          `json:"need"`
	Text    events.Label `json:"text"`
}

// Readiness is the coverage report of one community.
type Readiness struct {
	Community   string     `json:"community"`
	GeneratedAt time.Time  `json:"generated_at"`
	Need        int        `json:"need"`
	Grids       []Grid     `json:"grids"`
	Skills      []string   `json:"skills"`
	Bands       []Band     `json:"bands"`
	Coverage    []Coverage `json:"coverage"`
	Gaps        []Gap      `json:"gaps"`
}

// ReportedSkills are the skills the report covers: those some incident
// type asks for, in a stable order.
func ReportedSkills(tax *events.Taxonomy) []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range tax.Types {
		for _, s := range t.Skills {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	sort.Strings(out)
	return out
}

// weekMask is the quarter hours of a week a responder can be called.
type weekMask [minutesPerWeek / sampleStep]bool

func maskOf(a Availability) *weekMask {
	var m weekMask
	spans := a.spans()
	for i := range m {
		m[i] = len(a) == 0 || covers(spans, i*sampleStep)
	}
	return &m
}

// ComputeReadiness counts, for each grid, skill and band, the responders
// qualified for the skill at now (valid certificate), marked available and
// within each radius, at the thinnest moment of the band. A count below
// need is a gap. With no grids, the community's centre stands for one.
func ComputeReadiness(tax *events.Taxonomy, c Community, grids []Grid, rs []Responder, need int, now time.Time) Readiness {
	if need < 1 {
		need = 1
	}
	if len(grids) == 0 {
		grids = []Grid{{ID: "all", Community: c.ID, Name: "全社区", Location: c.Location}}
	}
	rep := Readiness{Community: c.ID, GeneratedAt: now.UTC(), Need: need, Grids: grids, Skills: ReportedSkills(tax), Bands: Bands,
		Coverage: []Coverage{}, Gaps: []Gap{}}
	masks := make([]*weekMask, len(rs))
	for i, r := range rs {
		masks[i] = maskOf(r.Availability)
	}
	bandSamples := make([][]int, len(Bands))
	for i, b := range Bands {
		bm := maskOf(Availability{b.Window})
		for q, in := range bm {
			if in {
				bandSamples[i] = append(bandSamples[i], q)
			}
		}
	}
	for _, g := range grids {
		for _, skill := range rep.Skills {
			// counts[k][q]: responders within radius k available at quarter q.
			counts := make([][]int, len(ReadinessRadii))
			for k := range counts {
				counts[k] = make([]int, len(weekMask{}))
			}
			for i, r := range rs {
				if !r.Available || !r.Qualified(tax, skill, now) {
					continue
				}
				d := geo.DistanceM(g.Location, r.Location)
				for k, radius := range ReadinessRadii {
					if d > radius {
						continue
					}
					for q, in := range masks[i] {
						if in {
							counts[k][q]++
						}
					}
				}
			}
			var gaps []Gap
			for bi, b := range Bands {
				cov := Coverage{Grid: g.ID, Skill: skill, Band: b.ID, Within: map[string]int{}}
				lows := make([]int, len(ReadinessRadii))
				for k, radius := range ReadinessRadii {
					low, at := -1, 0
					for _, q := range bandSamples[bi] {
						if low < 0 || counts[k][q] < low {
							low, at = counts[k][q], q
						}
					}
					lows[k] = max(low, 0)
					cov.Within[fmt.Sprint(radius)] = lows[k]
					if k == 0 {
						cov.Thinnest = quarterName(at)
					}
				}
				rep.Coverage = append(rep.Coverage, cov)
				if gap, ok := gapOf(tax, g, skill, b, lows, need); ok {
					gaps = append(gaps, gap)
				}
			}
			rep.Gaps = append(rep.Gaps, mergeAllDay(gaps)...)
		}
	}
	// Worst first: nobody within 1 km before nobody within 500 m.
	sort.SliceStable(rep.Gaps, func(i, j int) bool {
		a, b := rep.Gaps[i], rep.Gaps[j]
		if a.RadiusM != b.RadiusM {
			return a.RadiusM > b.RadiusM
		}
		return a.Have < b.Have
	})
	return rep
}

// AllTimes stands for every band when a gap is the same in all of them.
var AllTimes = Band{ID: "all", Label: events.Label{ZH: "全天", EN: "At all times"}}

// mergeAllDay says a gap once when it is the same in every band: "全天 1
// 网格 1 公里内没有持证排爆人员" rather than four lines that differ only in
// the band.
func mergeAllDay(gaps []Gap) []Gap {
	if len(gaps) != len(Bands) {
		return gaps
	}
	rest := func(i int) (string, string) {
		b := Bands[i].Label
		return strings.TrimPrefix(gaps[i].Text.ZH, b.ZH), strings.TrimPrefix(gaps[i].Text.EN, b.EN)
	}
	zh, en := rest(0)
	for i := 1; i < len(gaps); i++ {
		if z, e := rest(i); z != zh || e != en || gaps[i].Band != Bands[i].ID {
			return gaps
		}
	}
	merged := gaps[0]
	merged.Band = AllTimes.ID
	merged.Text = events.Label{ZH: AllTimes.Label.ZH + zh, EN: AllTimes.Label.EN + en}
	return []Gap{merged}
}

var weekdayZH = []string{"周一", "周二", "周三", "周四", "周五", "周六", "周日"}

func quarterName(q int) string {
	m := q * sampleStep
	return fmt.Sprintf("%s %02d:%02d", weekdayZH[m/minutesPerDay], m%minutesPerDay/60, m%60)
}

// gapOf reports the widest radius whose count is below need, in words
// such as "工作日夜间 3 网格 500 米内没有持证急救人员".
func gapOf(tax *events.Taxonomy, g Grid, skill string, b Band, lows []int, need int) (Gap, bool) {
	k := -1
	for i := len(ReadinessRadii) - 1; i >= 0; i-- {
		if lows[i] < need {
			k = i
			break
		}
	}
	if k < 0 {
		return Gap{}, false
	}
	sk := tax.Skills[skill]
	certZH, certEN := "", ""
	if sk.Certified {
		certZH, certEN = "持证", "certified "
	}
	distZH, distEN := distanceZH(ReadinessRadii[k]), distanceEN(ReadinessRadii[k])
	have := lows[k]
	var zh, en string
	if have == 0 {
		zh = fmt.Sprintf("%s %s %s内没有%s%s人员", b.Label.ZH, g.Name, distZH, certZH, sk.Label.ZH)
		en = fmt.Sprintf("%s, %s: no %s%s responder within %s", b.Label.EN, g.Name, certEN, strings.ToLower(sk.Label.EN), distEN)
	} else {
		zh = fmt.Sprintf("%s %s %s内只有 %d 名%s%s人员（需要 %d 名）", b.Label.ZH, g.Name, distZH, have, certZH, sk.Label.ZH, need)
		en = fmt.Sprintf("%s, %s: only %d %s%s responder(s) within %s (need %d)", b.Label.EN, g.Name, have, certEN,
			strings.ToLower(sk.Label.EN), distEN, need)
	}
	if k+1 < len(lows) && lows[k+1] > have {
		zh += fmt.Sprintf("，%s内有 %d 名", distanceZH(ReadinessRadii[k+1]), lows[k+1])
		en += fmt.Sprintf("; %d within %s", lows[k+1], distanceEN(ReadinessRadii[k+1]))
	}
	return Gap{Grid: g.ID, Skill: skill, Band: b.ID, RadiusM: int(ReadinessRadii[k]), Have: have, Need: need,
		Text: events.Label{ZH: zh, EN: en}}, true
}

func distanceZH(m float64) string {
	if m >= 1000 {
		return fmt.Sprintf("%g 公里", m/1000)
	}
	return fmt.Sprintf("%g 米", m)
}

func distanceEN(m float64) string {
	if m >= 1000 {
		return fmt.Sprintf("%g km", m/1000)
	}
	return fmt.Sprintf("%g m", m)
}
