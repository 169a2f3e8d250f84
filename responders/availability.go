package responders

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // Asia/Shanghai must resolve in a bare container

	"github.com/shouwang/shouwang/errdefs"
)

// Zone is the time zone availability windows are written in. Communities
// are in mainland China, which has one zone and no daylight saving.
var Zone = mustZone("Asia/Shanghai")

func mustZone(name string) *time.Location {
	z, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return z
}

// Window is a weekly stretch of time when a responder can be called, e.g.
// weekdays 18:00–08:00. Days are the days the window starts on (1 Monday …
// 7 Sunday); an end at or before the start runs past midnight into the
// next day, so "Friday 18:00–08:00" ends on Saturday morning.
type Window struct {
	Days  []int  `json:"days"`
	Start string `json:"start"`
	End   string `json:"end"`
}

// Availability is a responder's weekly windows. Empty means any time:
// most volunteers never say, and must not vanish from matching.
type Availability []Window

const (
	minutesPerDay  = 24 * 60
	minutesPerWeek = 7 * minutesPerDay
)

var clock = regexp.MustCompile(`^([01]?[0-9]|2[0-4]):([0-5][0-9])$`)

func parseClock(s string) (int, bool) {
	m := clock.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, false
	}
	h, _ := strconv.Atoi(m[1])
	mm, _ := strconv.Atoi(m[2])
	if h == 24 && mm != 0 {
		return 0, false
	}
	return h*60 + mm, true
}

// Validate checks the windows; field names the JSON field for errors.
func (a Availability) Validate(verr *errdefs.ValidationError, field string) {
	if len(a) > 14 {
		verr.Add(field, "at most 14 windows")
	}
	for i, w := range a {
		f := fmt.Sprintf("%s[%d]", field, i)
		if len(w.Days) == 0 {
			verr.Add(f+".days", "at least one day, 1 (Monday) … 7 (Sunday)")
		}
		seen := map[int]bool{}
		for _, d := range w.Days {
			if d < 1 || d > 7 || seen[d] {
				verr.Add(f+".days", "distinct days 1 (Monday) … 7 (Sunday)")
				break
			}
			seen[d] = true
		}
		start, ok1 := parseClock(w.Start)
		end, ok2 := parseClock(w.End)
		switch {
		case !ok1 || start == minutesPerDay:
			verr.Add(f+".start", "a time of day such as 18:00")
		case !ok2:
			verr.Add(f+".end", "a time of day such as 08:00 (24:00 for midnight)")
		case start == end:
			verr.Add(f+".end", "must differ from start; use 00:00–24:00 for the whole day")
		}
	}
}

// span is a half-open stretch of minutes since Monday 00:00; it may run
// past the end of the week (Sunday night into Monday).
type span struct{ from, to int }

func (a Availability) spans() []span {
	var out []span
	for _, w := range a {
		start, ok1 := parseClock(w.Start)
		end, ok2 := parseClock(w.End)
		if !ok1 || !ok2 || start == end {
			continue
		}
		if end < start {
			end += minutesPerDay
		}
		for _, d := range w.Days {
			base := (d - 1) * minutesPerDay
			out = append(out, span{base + start, base + end})
		}
	}
	return out
}

// MinuteOfWeek is t's minute since Monday 00:00 in Zone.
func MinuteOfWeek(t time.Time) int {
	t = t.In(Zone)
	wd := (int(t.Weekday()) + 6) % 7 // Monday 0 … Sunday 6
	return wd*minutesPerDay + t.Hour()*60 + t.Minute()
}

// At reports whether the windows cover t.
func (a Availability) At(t time.Time) bool {
	if len(a) == 0 {
		return true
	}
	return covers(a.spans(), MinuteOfWeek(t))
}

func covers(spans []span, m int) bool {
	for _, s := range spans {
		if (m >= s.from && m < s.to) || (m+minutesPerWeek >= s.from && m+minutesPerWeek < s.to) {
			return true
		}
	}
	return false
}

var dayNames = map[string][]int{
	"每天": {1, 2, 3, 4, 5, 6, 7}, "天天": {1, 2, 3, 4, 5, 6, 7}, "全周": {1, 2, 3, 4, 5, 6, 7},
	"daily": {1, 2, 3, 4, 5, 6, 7}, "everyday": {1, 2, 3, 4, 5, 6, 7},
	"工作日": {1, 2, 3, 4, 5}, "weekdays": {1, 2, 3, 4, 5}, "weekday": {1, 2, 3, 4, 5},
	"周末": {6, 7}, "weekends": {6, 7}, "weekend": {6, 7},
}

var dayNumbers = map[string]int{
	"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "日": 7, "天": 7, "七": 7,
	"1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "6": 6, "7": 7,
	"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7,
}

// dayOf reads one day: 周一, 星期一, 礼拜一, Mon, Monday, 1.
func dayOf(s string) (int, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	for _, p := range []string{"星期", "礼拜", "周"} {
		s = strings.TrimPrefix(s, p)
	}
	if len(s) > 3 && s[0] < 0x80 {
		s = s[:3] // monday → mon
	}
	d, ok := dayNumbers[s]
	return d, ok
}

// parseDays reads 工作日, 周末, 每天, 周一至周五, Mon-Fri, 周六、周日, 1,3,5.
func parseDays(s string) ([]int, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if d, ok := dayNames[s]; ok {
		return append([]int(nil), d...), true
	}
	seen := map[int]bool{}
	var out []int
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == '、' || r == ',' || r == '，' || r == '/' }) {
		from, to, isRange := cutAny(part, "至", "到", "-", "–", "~", "～")
		if !isRange {
			from, to = part, part
		}
		a, ok1 := dayOf(from)
		b, ok2 := dayOf(to)
		if !ok1 || !ok2 {
			return nil, false
		}
		for d := a; ; d = d%7 + 1 { // 周六至周一 wraps over Sunday
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
			if d == b {
				break
			}
		}
	}
	sort.Ints(out)
	return out, len(out) > 0
}

func cutAny(s string, seps ...string) (string, string, bool) {
	for _, sep := range seps {
		if a, b, ok := strings.Cut(s, sep); ok {
			return a, b, true
		}
	}
	return s, "", false
}

var allDay = map[string]bool{"全天": true, "all day": true, "allday": true, "24h": true, "24小时": true}
var always = map[string]bool{"": true, "全天候": true, "随时": true, "任何时间": true, "always": true, "any time": true, "anytime": true}

// ParseAvailability reads windows as people write them in a roster:
// "工作日 18:00-08:00；周末 全天", "Mon-Fri 18:00-08:00; Sat,Sun all day",
// "周一至周五 19:00~23:00". Empty or "随时" means any time.
func ParseAvailability(s string) (Availability, error) {
	s = strings.TrimSpace(s)
	if always[strings.ToLower(s)] {
		return nil, nil
	}
	var out Availability
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == '；' || r == '\n' }) {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		// The time is the last field; days are everything before it.
		i := strings.LastIndexAny(part, " \t　")
		if i < 0 {
			return nil, fmt.Errorf("%q: want days and hours, e.g. 工作日 18:00-08:00", part)
		}
		daysText, hours := strings.TrimSpace(part[:i]), strings.ToLower(strings.TrimSpace(part[i:]))
		if hours == "day" && strings.HasSuffix(strings.ToLower(daysText), " all") { // "Sat,Sun all day"
			daysText, hours = strings.TrimSpace(daysText[:len(daysText)-4]), "all day"
		}
		days, ok := parseDays(daysText)
		if !ok {
			return nil, fmt.Errorf("%q: days must be like 工作日, 周末, 每天, 周一至周五, Mon-Fri", daysText)
		}
		w := Window{Days: days, Start: "00:00", End: "24:00"}
		if !allDay[hours] {
			from, to, ok := cutAny(hours, "-", "–", "~", "～", "至", "到")
			_, ok1 := parseClock(from)
			_, ok2 := parseClock(to)
			if !ok || !ok1 || !ok2 {
				return nil, fmt.Errorf("%q: hours must be like 18:00-08:00 or 全天", hours)
			}
			w.Start, w.End = normClock(from), normClock(to)
		}
		out = append(out, w)
	}
	verr := &errdefs.ValidationError{}
	out.Validate(verr, "availability")
	if err := verr.OrNil(); err != nil {
		return nil, err
	}
	return out, nil
}

func normClock(s string) string {
	m, _ := parseClock(s)
	return fmt.Sprintf("%02d:%02d", m/60, m%60)
}
