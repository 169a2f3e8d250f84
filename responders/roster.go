package responders

// Roster import, the pure part: recognising a spreadsheet's header,
// reading each row into a Responder and saying exactly what is wrong with
// the rows that cannot be read. import.go applies a parsed roster in one
// transaction; rosterfile.go turns .xlsx and .csv files into rows.

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
)

// MaxRosterRows bounds one import: a community's roster is hundreds or a
// few thousand people, and one transaction holds them all.
const MaxRosterRows = 20000

// RosterProblem is one thing wrong with a roster, where the user will look
// for it: Row is the spreadsheet's row number (the header is usually row
// 1, so the first person is row 2) and Column the header text as written
// in the file.
type RosterProblem struct {
	Row       int    `json:"row"`
	Column    string `json:"column"`
	Value     string `json:"value,omitempty"`
	Message   string `json:"message"`    // zh-CN
	MessageEN string `json:"message_en"` // English
}

// RosterEntry is a row that was read without error: the responder it
// describes, with only the roster's columns filled in.
type RosterEntry struct {
	Row       int
	Responder Responder
}

// Roster is a parsed roster file.
type Roster struct {
	// Rows counts the data rows that are not blank.
	Rows     int
	Entries  []RosterEntry
	Errors   []RosterProblem
	Warnings []RosterProblem
	// Failed counts the rows with at least one error. A file whose header
	// cannot be used has Errors but no rows to fail.
	Failed int
	// present says which fields the file has a column for: an import
	// changes only those on a responder already registered.
	present map[string]bool
}

// Roster fields; the keys of the column table below.
const (
	colName         = "name"
	colPhone        = "phone"
	colSkills       = "skills"
	colCerts        = "certificates"
	colCertExpiry   = "certificate_expiry"
	colParty        = "party_member"
	colTeam         = "team"
	colLocation     = "location"
	colAddress      = "address"
	colLat          = "lat"
	colLng          = "lng"
	colAvailability = "availability"
	colKind         = "kind"
	colLocale       = "locale"
)

// rosterColumns are the headers accepted for each field, zh-CN first.
// The first name is the one used in messages about a missing column.
// Headers are compared after normalising (see normHeader).
var rosterColumns = []struct {
	field string
	names []string
}{
	{colName, []string{"姓名", "名字", "人员姓名", "name", "full name"}},
	{colPhone, []string{"手机号", "手机号码", "手机", "电话", "联系电话", "电话号码", "phone", "mobile", "phone number"}},
	{colSkills, []string{"技能", "专业技能", "特长", "skills", "skill"}},
	{colCerts, []string{"证书", "资格证书", "证书名称", "证书编号", "certificates", "certificate"}},
	{colCertExpiry, []string{"证书有效期", "有效期", "有效期至", "证书到期日", "到期日期", "certificate expiry", "expires", "expires at", "expiry"}},
	{colParty, []string{"党员", "是否党员", "政治面貌", "party member"}},
	{colTeam, []string{"队伍", "所属队伍", "队伍名称", "team"}},
	{colLocation, []string{"经纬度", "坐标", "location", "coordinates", "lat,lng"}},
	{colAddress, []string{"地址", "住址", "居住地址", "address"}},
	{colLat, []string{"纬度", "lat", "latitude"}},
	{colLng, []string{"经度", "lng", "lon", "longitude"}},
	{colAvailability, []string{"可用时间", "值班时间", "可出勤时间", "availability"}},
	{colKind, []string{"类型", "人员类型", "类别", "kind"}},
	{colLocale, []string{"语言", "短信语言", "locale", "language"}},
}

var headerFields = func() map[string]string {
	m := map[string]string{}
	for _, c := range rosterColumns {
		for _, n := range c.names {
			m[normHeader(n)] = c.field
		}
	}
	return m
}()

func displayName(field string) string {
	for _, c := range rosterColumns {
		if c.field == field {
			return c.names[0]
		}
	}
	return field
}

var headerNote = regexp.MustCompile(`[(（][^)）]*[)）]$`)

// normHeader makes "手机号（必填）", "*姓名" and "Phone Number" comparable:
// no notes in brackets, no asterisks, spaces, underscores or case.
func normHeader(s string) string {
	s = strings.TrimSpace(s)
	s = headerNote.ReplaceAllString(s, "")
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '*' || r == '＊' || r == '_' || r == '-' || r == ':' || r == '：' {
			return -1
		}
		return unicode.ToLower(r)
	}, s)
	return s
}

// headerSearchRows: rosters often carry a title row ("XX社区志愿者名单")
// above the header; the header is looked for among the first rows.
const headerSearchRows = 10

// ParseRoster reads rows (rows[i] is the spreadsheet's row i+1, cells as
// text) into responders of a community. orgs are the community's
// organisations, for the team column; now decides which certificates have
// expired. It does no I/O.
//
// Rules (the README has the column table):
//   - the header is the first of the first 10 rows that names both the name
//     and the phone column; blank rows are skipped;
//   - a person needs a name, a mobile number and coordinates: matching is
//     by distance, so an address without 经纬度 is an error;
//   - a certificate belongs to the skill its name mentions (急救证 → 急救),
//     otherwise to every certified skill of the row; one expiry date applies
//     to every certificate of the row, or there is one date per certificate;
//   - the same phone twice in a file is an error on the later row.
func ParseRoster(tax *events.Taxonomy, rows [][]string, orgs []Organisation, now time.Time) Roster {
	p := &rosterParser{tax: tax, orgs: orgs, now: now, skills: skillLookup(tax), phones: map[string]int{}}
	return p.parse(rows)
}

type rosterParser struct {
	tax    *events.Taxonomy
	orgs   []Organisation
	now    time.Time
	skills map[string]string
	header []string       // header text by column index
	cols   map[string]int // field → column index
	phones map[string]int // phone → first row it appeared on
	out    Roster
}

func (p *rosterParser) parse(rows [][]string) Roster {
	hdr := p.findHeader(rows)
	if hdr < 0 {
		p.out.Errors = append(p.out.Errors, RosterProblem{Row: 1, Column: displayName(colName),
			Message:   "找不到表头：前 10 行中需要有一行同时含「姓名」和「手机号」列",
			MessageEN: "no header found: one of the first 10 rows must name both the name (姓名) and the phone (手机号) column"})
		return p.out
	}
	if !p.checkColumns(hdr+1, rows[hdr]) {
		return p.out
	}
	for i := hdr + 1; i < len(rows); i++ {
		if blank(rows[i]) {
			continue
		}
		p.out.Rows++
		if p.out.Rows > MaxRosterRows {
			p.out.Errors = append(p.out.Errors[:0], RosterProblem{Row: i + 1, Column: p.header[0],
				Message:   fmt.Sprintf("名单最多 %d 行，请分成几个文件导入", MaxRosterRows),
				MessageEN: fmt.Sprintf("a roster has at most %d rows; split the file", MaxRosterRows)})
			p.out.Entries, p.out.Failed = nil, 0
			return p.out
		}
		p.row(i+1, rows[i])
	}
	return p.out
}

func blank(row []string) bool {
	for _, c := range row {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}

// findHeader returns the index of the header row, or -1.
func (p *rosterParser) findHeader(rows [][]string) int {
	for i := 0; i < len(rows) && i < headerSearchRows; i++ {
		found := map[string]bool{}
		for _, h := range rows[i] {
			found[headerFields[normHeader(h)]] = true
		}
		if found[colName] && found[colPhone] {
			return i
		}
	}
	return -1
}

// checkColumns maps the header's columns to fields. Duplicate columns and
// a missing name, phone or location column are errors: the file cannot be
// imported. Unknown columns are warnings.
func (p *rosterParser) checkColumns(rowNum int, cells []string) bool {
	p.cols, p.out.present = map[string]int{}, map[string]bool{}
	p.header = make([]string, len(cells))
	ok := true
	fail := func(column, zh, en string) {
		p.out.Errors = append(p.out.Errors, RosterProblem{Row: rowNum, Column: column, Message: zh, MessageEN: en})
		ok = false
	}
	for i, h := range cells {
		h = strings.TrimSpace(h)
		p.header[i] = h
		if h == "" {
			continue
		}
		field, known := headerFields[normHeader(h)]
		if !known {
			p.out.Warnings = append(p.out.Warnings, RosterProblem{Row: rowNum, Column: h,
				Message: "未知列，已忽略", MessageEN: "unknown column, ignored"})
			continue
		}
		if j, dup := p.cols[field]; dup {
			fail(h, fmt.Sprintf("与「%s」列重复", p.header[j]), fmt.Sprintf("the same column as %q", p.header[j]))
			continue
		}
		p.cols[field] = i
	}
	_, lat := p.cols[colLat]
	_, lng := p.cols[colLng]
	_, loc := p.cols[colLocation]
	_, addr := p.cols[colAddress]
	switch {
	case lat != lng:
		fail(displayName(colLat)+"/"+displayName(colLng), "「纬度」和「经度」两列需要同时提供",
			"the latitude (纬度) and longitude (经度) columns come together")
	case !lat && !loc && !addr:
		fail(displayName(colLocation), "缺少「经纬度」列（或「纬度」「经度」两列）：按距离派单需要坐标",
			"no coordinates column (经纬度, or 纬度 and 经度): responders are matched by distance")
	}
	if addr {
		p.out.Warnings = append(p.out.Warnings, RosterProblem{Row: rowNum, Column: p.header[p.cols[colAddress]],
			Message:   "地址只用于读取其中的经纬度（如 31.2304,121.4737），文字地址不保存",
			MessageEN: "the address column is read only for coordinates (e.g. 31.2304,121.4737); text addresses are not stored"})
	}
	for field := range p.cols {
		switch field {
		case colCertExpiry:
			p.out.present[colCerts] = true
		case colAddress, colLat, colLng:
			p.out.present[colLocation] = true
		default:
			p.out.present[field] = true
		}
	}
	return ok
}

// cell is the trimmed text of a field's cell in row, and whether the file
// has that column at all.
func (p *rosterParser) cell(row []string, field string) (string, bool) {
	i, ok := p.cols[field]
	if !ok {
		return "", false
	}
	if i >= len(row) {
		return "", true
	}
	return strings.TrimSpace(row[i]), true
}

// column is the header text of a field's column as the file wrote it.
func (p *rosterParser) column(field string) string {
	if i, ok := p.cols[field]; ok {
		return p.header[i]
	}
	return displayName(field)
}

// rowProblems collects the problems of one row.
type rowProblems struct {
	p      *rosterParser
	row    int
	errs   []RosterProblem
	warns  []RosterProblem
	failed map[string]bool // fields with an error
}

func (rp *rowProblems) bad(field, value, zh, en string) {
	rp.errs = append(rp.errs, RosterProblem{Row: rp.row, Column: rp.p.column(field), Value: clip(value), Message: zh, MessageEN: en})
	rp.failed[field] = true
}

func (rp *rowProblems) warn(field, value, zh, en string) {
	rp.warns = append(rp.warns, RosterProblem{Row: rp.row, Column: rp.p.column(field), Value: clip(value), Message: zh, MessageEN: en})
}

func clip(s string) string {
	if utf8.RuneCountInString(s) <= 100 {
		return s
	}
	return string([]rune(s)[:100]) + "…"
}

// row reads one data row into an entry, or into errors.
func (p *rosterParser) row(n int, cells []string) {
	rp := &rowProblems{p: p, row: n, failed: map[string]bool{}}
	r := Responder{Available: true}
	r.Name, _ = p.cell(cells, colName)

	raw, _ := p.cell(cells, colPhone)
	phone, ok := normalizePhone(raw)
	switch {
	case raw == "":
		rp.bad(colPhone, raw, "手机号不能为空", "the phone number is required")
	case !ok:
		rp.bad(colPhone, raw, "手机号无效：请写 11 位手机号（如 13800000000）或带国家码的号码（如 +85291234567）",
			"not a mobile number: write 11 digits (13800000000) or the number with its country code (+85291234567)")
	default:
		if first, dup := p.phones[phone]; dup {
			rp.bad(colPhone, raw, fmt.Sprintf("与第 %d 行手机号重复", first), fmt.Sprintf("the same phone number as row %d", first))
		} else {
			p.phones[phone] = n
		}
	}
	r.Phone = phone

	if v, ok := p.cell(cells, colSkills); ok {
		r.Skills = p.parseSkills(rp, v)
	}
	certText, hasCerts := p.cell(cells, colCerts)
	expiryText, hasExpiry := p.cell(cells, colCertExpiry)
	if hasCerts || hasExpiry {
		r.Certificates = p.certificates(rp, certText, expiryText, r.Skills)
		if !rp.failed[colCerts] && !rp.failed[colCertExpiry] {
			p.warnUncertified(rp, r)
		}
	}
	if v, ok := p.cell(cells, colParty); ok {
		yes, ok := parseYesNo(v)
		if !ok {
			rp.bad(colParty, v, "请填 是 或 否", "write 是 (yes) or 否 (no)")
		}
		r.PartyMember = yes
	}
	if v, ok := p.cell(cells, colTeam); ok && v != "" {
		r.Team = p.team(rp, v)
	}
	r.Location = p.location(rp, cells)
	if v, ok := p.cell(cells, colAvailability); ok {
		a, err := ParseAvailability(v)
		if err != nil {
			rp.bad(colAvailability, v, "无法识别的可用时间：请写成「工作日 18:00-08:00；周末 全天」",
				"cannot read the hours: write them like 工作日 18:00-08:00；周末 全天 ("+err.Error()+")")
		}
		r.Availability = a
	}
	if v, ok := p.cell(cells, colKind); ok {
		kind, ok := parseKind(v)
		if !ok {
			rp.bad(colKind, v, "类型请填 志愿者 或 专业", "write 志愿者 (volunteer) or 专业 (professional)")
		}
		r.Kind = kind
	}
	if v, ok := p.cell(cells, colLocale); ok {
		locale, ok := parseLocale(v)
		if !ok {
			rp.bad(colLocale, v, "语言请填 中文 或 英文", "write 中文 (zh-CN) or 英文 (en)")
		}
		r.Locale = locale
	}
	p.validate(rp, r)

	p.out.Warnings = append(p.out.Warnings, rp.warns...)
	if len(rp.errs) > 0 {
		p.out.Errors = append(p.out.Errors, rp.errs...)
		p.out.Failed++
		return
	}
	p.out.Entries = append(p.out.Entries, RosterEntry{Row: n, Responder: r})
}

// validate applies the registry's own rules (name length, control
// characters…) to what the roster gave, for the columns not already found
// wrong.
func (p *rosterParser) validate(rp *rowProblems, r Responder) {
	if r.Kind == "" {
		r.Kind = KindVolunteer
	}
	err := r.Validate(p.tax)
	verr, ok := err.(*errdefs.ValidationError)
	if !ok {
		return
	}
	for field, msg := range verr.Fields {
		col := colName
		switch {
		case field == "phone":
			col = colPhone
		case field == "skills":
			col = colSkills
		case field == "certificates":
			col = colCerts
		case field == "kind":
			col = colKind
		case field == "locale":
			col = colLocale
		case field == "location":
			col = p.locationField()
		case strings.HasPrefix(field, "availability"):
			col = colAvailability
		}
		locationFailed := rp.failed[colLocation] || rp.failed[colLat] || rp.failed[colLng] || rp.failed[colAddress]
		if rp.failed[col] || (col == colCerts && rp.failed[colCertExpiry]) || (field == "location" && locationFailed) {
			continue
		}
		zh := "无效：" + msg
		if col == colName {
			zh = "姓名不能为空，最多 100 个字，不能含控制字符"
			if strings.TrimSpace(r.Name) == "" {
				zh = "姓名不能为空"
			}
		}
		rp.bad(col, "", zh, field+": "+msg)
	}
}

// locationField is the column location errors are reported on.
func (p *rosterParser) locationField() string {
	for _, f := range []string{colLocation, colLat, colAddress} {
		if _, ok := p.cols[f]; ok {
			return f
		}
	}
	return colLocation
}

// --- skills and certificates ---

// skillLookup maps what people write in a roster to skill ids: the id
// (medic), the zh-CN name (急救), the English name (First aid), and the
// first two characters of a longer zh-CN name when no other skill shares
// them (燃气 for 燃气安全).
func skillLookup(tax *events.Taxonomy) map[string]string {
	m := map[string]string{}
	prefixes := map[string][]string{}
	for _, id := range tax.SkillNames() {
		s := tax.Skills[id]
		m[strings.ToLower(id)] = id
		m[strings.ReplaceAll(strings.ToLower(id), "_", " ")] = id
		m[s.Label.ZH] = id
		m[strings.ToLower(s.Label.EN)] = id
		if r := []rune(s.Label.ZH); len(r) > 2 {
			prefixes[string(r[:2])] = append(prefixes[string(r[:2])], id)
		}
	}
	for prefix, ids := range prefixes {
		if _, taken := m[prefix]; !taken && len(ids) == 1 {
			m[prefix] = ids[0]
		}
	}
	delete(m, "")
	return m
}

// skill finds the skill a roster word means: 急救, 急救员, medic, First aid.
func (p *rosterParser) skill(word string) (string, bool) {
	k := strings.ToLower(strings.TrimSpace(word))
	if id, ok := p.skills[k]; ok {
		return id, true
	}
	for _, suffix := range []string{"技能", "技术", "员", "证", "师"} {
		if t, ok := strings.CutSuffix(k, suffix); ok && t != "" {
			if id, ok := p.skills[t]; ok {
				return id, true
			}
		}
	}
	return "", false
}

func (p *rosterParser) parseSkills(rp *rowProblems, v string) []string {
	out := []string{}
	add := func(id string) {
		if !contains(out, id) {
			out = append(out, id)
		}
	}
	for _, word := range splitList(v, "/|") {
		if id, ok := p.skill(word); ok {
			add(id)
			continue
		}
		parts := strings.Fields(word) // "急救 消防": spaces as separators
		if len(parts) < 2 {
			p.unknownSkill(rp, word)
			continue
		}
		for _, part := range parts {
			if id, ok := p.skill(part); ok {
				add(id)
			} else {
				p.unknownSkill(rp, part)
			}
		}
	}
	return out
}

func (p *rosterParser) unknownSkill(rp *rowProblems, word string) {
	var zh []string
	for _, id := range p.tax.SkillNames() {
		zh = append(zh, p.tax.Skills[id].Label.ZH)
	}
	rp.bad(colSkills, word, fmt.Sprintf("未知技能「%s」；可填：%s", word, strings.Join(zh, "、")),
		fmt.Sprintf("unknown skill %q; one of %s", word, strings.Join(p.tax.SkillNames(), ", ")))
}

// skillsNamedIn lists the skills a certificate's name mentions: 急救证 →
// medic, 燃气作业证 → gas_safety, "First aid certificate" → medic.
func (p *rosterParser) skillsNamedIn(name string) []string {
	name = strings.ToLower(name)
	var out []string
	for word, id := range p.skills {
		if utf8.RuneCountInString(word) >= 2 && word[0] >= utf8.RuneSelf && strings.Contains(name, word) && !contains(out, id) {
			out = append(out, id) // zh-CN names
		}
		if len(word) >= 4 && word[0] < utf8.RuneSelf && strings.Contains(name, word) && !contains(out, id) {
			out = append(out, id) // ids and English names
		}
	}
	sortBySkillOrder(p.tax, out)
	return out
}

func sortBySkillOrder(tax *events.Taxonomy, ids []string) {
	order := map[string]int{}
	for i, id := range tax.SkillNames() {
		order[id] = i
	}
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && order[ids[j]] < order[ids[j-1]]; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
}

// certificates reads the certificate and expiry cells of a row. A
// certificate belongs to the skills its name mentions, or else to every
// skill of the row that needs a certificate; one date applies to all the
// row's certificates, or each certificate has its own.
func (p *rosterParser) certificates(rp *rowProblems, certText, expiryText string, skills []string) []Certificate {
	out := []Certificate{}
	items := splitList(certText, "")
	var dates []time.Time
	for _, d := range splitList(expiryText, "") {
		at, ok := parseRosterDate(d)
		if !ok {
			rp.bad(colCertExpiry, d, fmt.Sprintf("无法识别的日期「%s」；请写成 2027-06-30", d),
				fmt.Sprintf("not a date: %q; write it like 2027-06-30", d))
			return out
		}
		dates = append(dates, at)
	}
	switch {
	case len(items) == 0 && len(dates) == 0:
		return out
	case len(items) == 0 && len(dates) > 1:
		rp.bad(colCerts, "", "有多个有效期但没有证书名称，无法对应", "several expiry dates but no certificate names")
		return out
	case len(items) == 0:
		items = []string{""}
	case len(dates) == 0:
		rp.bad(colCertExpiry, "", fmt.Sprintf("证书「%s」缺少有效期", items[0]), fmt.Sprintf("certificate %q has no expiry date", items[0]))
		return out
	case len(dates) != 1 && len(dates) != len(items):
		rp.bad(colCertExpiry, expiryText, fmt.Sprintf("有 %d 个证书，却有 %d 个有效期：写一个日期（全部适用）或每个证书一个",
			len(items), len(dates)), fmt.Sprintf("%d certificates but %d dates: one date for all, or one per certificate", len(items), len(dates)))
		return out
	}
	for i, item := range items {
		at := dates[0]
		if len(dates) > 1 {
			at = dates[i]
		}
		name, number := splitCertificate(item)
		targets := p.certSkills(rp, item, name, skills)
		for _, s := range targets {
			out = append(out, Certificate{Skill: s, Name: name, Number: number, ExpiresAt: at})
		}
		if len(targets) > 0 && !at.After(p.now) {
			day := at.AddDate(0, 0, -1).Format("2006-01-02")
			rp.warn(colCertExpiry, day, fmt.Sprintf("证书「%s」已过期（有效期至 %s），不会据此派单", certLabel(name), day),
				fmt.Sprintf("certificate %q expired on %s: it does not qualify anyone", name, day))
		}
	}
	return out
}

func certLabel(name string) string {
	if name == "" {
		return "（未写名称）"
	}
	return name
}

// certSkills decides which of the row's skills a certificate proves. A
// row whose skills cell is already wrong gets no second error about how
// its certificates pair with it.
func (p *rosterParser) certSkills(rp *rowProblems, item, name string, skills []string) []string {
	_, skillsColumn := p.cols[colSkills]
	quiet := rp.failed[colSkills]
	if named := p.skillsNamedIn(name); len(named) > 0 {
		if !skillsColumn {
			return named
		}
		var out []string
		for _, s := range named {
			if contains(skills, s) {
				out = append(out, s)
			}
		}
		if len(out) == 0 && !quiet {
			zh := p.tax.Skills[named[0]].Label.ZH
			rp.bad(colCerts, item, fmt.Sprintf("证书「%s」属于技能「%s」，但技能列没有填写该技能", name, zh),
				fmt.Sprintf("certificate %q is for %s, which the skills column does not list", name, named[0]))
		}
		return out
	}
	var out []string
	for _, s := range skills {
		if p.tax.Skills[s].Certified {
			out = append(out, s)
		}
	}
	if len(out) == 0 && !quiet {
		rp.bad(colCerts, item, fmt.Sprintf("无法判断证书「%s」属于哪项技能：请在技能列填写需要证书的技能（如 急救），或在证书名称中写明（如 急救证）", certLabel(name)),
			fmt.Sprintf("which skill does certificate %q prove? List a skill that needs a certificate (e.g. medic), or name it in the certificate (急救证)", name))
	}
	return out
}

// warnUncertified warns about skills that need a certificate the row
// does not give: such a person is never sent for them.
func (p *rosterParser) warnUncertified(rp *rowProblems, r Responder) {
	for _, s := range r.Skills {
		if !p.tax.Skills[s].Certified {
			continue
		}
		has := false
		for _, c := range r.Certificates {
			has = has || c.Skill == s
		}
		if !has {
			zh := p.tax.Skills[s].Label.ZH
			rp.warn(colSkills, zh, fmt.Sprintf("技能「%s」需要有效证书；没有证书不会被派往此类事件", zh),
				fmt.Sprintf("%s needs a valid certificate; without one this person is not sent for it", s))
		}
	}
}

var certParen = regexp.MustCompile(`^(.*?)\s*[(（]([^)）]*)[)）]$`)
var certNumber = regexp.MustCompile(`^[A-Za-z0-9#./-]*[0-9][A-Za-z0-9#./-]*$`)

// splitCertificate reads "急救证 No.12345", "急救证:12345", "急救证（12345）"
// into a name and a number; either may be empty.
func splitCertificate(item string) (name, number string) {
	item = strings.TrimSpace(item)
	if m := certParen.FindStringSubmatch(item); m != nil && certNumber.MatchString(trimNumberPrefix(m[2])) {
		return strings.TrimSpace(m[1]), trimNumberPrefix(m[2])
	}
	if n, num, ok := cutAny(item, ":", "："); ok {
		return strings.TrimSpace(n), trimNumberPrefix(num)
	}
	fields := strings.Fields(item)
	if last := len(fields) - 1; last >= 0 && certNumber.MatchString(trimNumberPrefix(fields[last])) {
		return strings.Join(fields[:last], " "), trimNumberPrefix(fields[last])
	}
	return item, ""
}

func trimNumberPrefix(s string) string {
	s = strings.TrimSpace(s)
	for _, p := range []string{"编号", "证号", "No.", "NO.", "no.", "No", "NO", "№", "#"} {
		s = strings.TrimSpace(strings.TrimPrefix(s, p))
	}
	return s
}

// splitList splits a cell on the separators people use in Chinese and
// English lists, plus extra ones.
func splitList(s, extra string) []string {
	parts := strings.FieldsFunc(s, func(r rune) bool {
		return strings.ContainsRune("、,，;；\n"+extra, r)
	})
	var out []string
	for _, x := range parts {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// --- cells ---

var phoneJunk = strings.NewReplacer(" ", "", "-", "", "(", "", ")", "", "（", "", "）", "", "\u00a0", "", "\u3000", "", "–", "", "—", "")

var cnMobile = regexp.MustCompile(`^1[3-9][0-9]{9}$`)

// normalizePhone turns the ways Chinese rosters write mobile numbers
// ("13800000000", "138 0000 0000", "+86 138-0000-0000", "8613800000000",
// a spreadsheet number 13800000000.0) into E.164. A mainland number must
// be a mobile one: landlines cannot take texts.
func normalizePhone(s string) (string, bool) {
	s = strings.Map(func(r rune) rune { // full-width digits and plus from IMEs
		switch {
		case r >= '０' && r <= '９':
			return '0' + (r - '０')
		case r == '＋':
			return '+'
		}
		return r
	}, strings.TrimSpace(s))
	s = strings.TrimSuffix(s, ".0")
	s = phoneJunk.Replace(s)
	var digits string
	switch {
	case strings.HasPrefix(s, "+"):
		digits = s[1:]
	case strings.HasPrefix(s, "00"):
		digits = s[2:]
	case len(s) == 11 && cnMobile.MatchString(s):
		digits = "86" + s
	case len(s) == 13 && strings.HasPrefix(s, "86"):
		digits = s
	default:
		return "", false
	}
	if national, ok := strings.CutPrefix(digits, "86"); ok {
		if !cnMobile.MatchString(national) {
			return "", false
		}
	}
	if !ValidPhone("+" + digits) {
		return "", false
	}
	return "+" + digits, true
}

var (
	dateYMD     = regexp.MustCompile(`^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})[日号]?$`)
	dateCompact = regexp.MustCompile(`^(\d{4})(\d{2})(\d{2})$`)
	dateTime    = regexp.MustCompile(`^(\d{4}-\d{1,2}-\d{1,2})[T ]\d`)
)

// excelEpoch is day 0 of Excel's (1900) date serial numbers; from 1 March
// 1900 on, serial n is excelEpoch + n days.
var excelEpoch = time.Date(1899, 12, 30, 0, 0, 0, 0, Zone)

// parseRosterDate reads an expiry date: 2027-06-30, 2027/6/30, 2027.6.30,
// 2027年6月30日, 20270630, "2027-06-30 00:00:00", or an Excel date serial
// number (46568) from a cell formatted as a date. A certificate valid
// until a day is valid through that day in China, so the result is the
// start of the next day.
func parseRosterDate(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if m := dateTime.FindStringSubmatch(s); m != nil {
		s = m[1]
	}
	s = strings.Join(strings.Fields(s), "")
	var y, m, d int
	if p := dateYMD.FindStringSubmatch(s); p != nil {
		y, _ = strconv.Atoi(p[1])
		m, _ = strconv.Atoi(p[2])
		d, _ = strconv.Atoi(p[3])
	} else if p := dateCompact.FindStringSubmatch(s); p != nil {
		y, _ = strconv.Atoi(p[1])
		m, _ = strconv.Atoi(p[2])
		d, _ = strconv.Atoi(p[3])
	} else {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v < 61 || v > 2958465 { // 1900-03-01 … 9999-12-31
			return time.Time{}, false
		}
		t := excelEpoch.AddDate(0, 0, int(math.Floor(v)))
		var month time.Month
		y, month, d = t.Date()
		m = int(month)
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, Zone)
	if t.Year() != y || int(t.Month()) != m || t.Day() != d || y < 1990 || y > 2200 {
		return time.Time{}, false // 2027-02-30, or a number that is no plausible date
	}
	return t.AddDate(0, 0, 1), true
}

// parseYesNo reads the party-member column: 是/否, Y/N, 1/0, √/×, or a
// political status (中共党员, 预备党员 → yes; 群众, 共青团员 → no).
func parseYesNo(s string) (bool, bool) {
	v := strings.ToLower(strings.TrimSpace(s))
	switch v {
	case "是", "y", "yes", "1", "true", "t", "√", "✓", "✔", "对", "党员":
		return true, true
	case "", "否", "n", "no", "0", "false", "f", "×", "✗", "✘", "x", "不是", "无", "群众", "非党员", "团员", "共青团员", "民主党派":
		return false, true
	}
	if strings.Contains(v, "党员") && !strings.HasPrefix(v, "非") {
		return true, true
	}
	return false, false
}

func parseKind(s string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "志愿者", "志愿", "义工", "志愿人员", "volunteer":
		return KindVolunteer, true
	case "专业", "专职", "专业人员", "专业救援", "专业力量", "professional", "pro":
		return KindProfessional, true
	}
	return KindVolunteer, false
}

func parseLocale(s string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "中文", "汉语", "简体中文", "zh", "zh-cn", "zh_cn", "chinese":
		return "zh-CN", true
	case "英文", "英语", "english", "en", "en-us", "en-gb":
		return "en", true
	}
	return "zh-CN", false
}

// team finds the organisation a roster's team cell names, by id or by
// its exact name in the community.
func (p *rosterParser) team(rp *rowProblems, v string) string {
	var hits []string
	for _, o := range p.orgs {
		if o.ID == v {
			return o.ID
		}
		if strings.EqualFold(strings.TrimSpace(o.Name), v) {
			hits = append(hits, o.ID)
		}
	}
	switch len(hits) {
	case 1:
		return hits[0]
	case 0:
		rp.bad(colTeam, v, fmt.Sprintf("社区里没有叫「%s」的队伍或组织：请先登记该组织，或写组织编号", v),
			fmt.Sprintf("no organisation named %q in the community: register it first, or write its id", v))
	default:
		rp.bad(colTeam, v, fmt.Sprintf("社区里有 %d 个叫「%s」的组织：请改写组织编号（%s）", len(hits), v, strings.Join(hits, "、")),
			fmt.Sprintf("%d organisations are named %q: write the id instead (%s)", len(hits), v, strings.Join(hits, ", ")))
	}
	return ""
}

var coordSep = regexp.MustCompile(`[,，;；\s]+`)

// parseLatLng reads "31.2304,121.4737" (lat,lng). Chinese map apps copy
// "121.4737,31.2304" (lng,lat); a first number beyond ±90 cannot be a
// latitude, so such a pair is swapped.
func parseLatLng(s string) (geo.Point, bool) {
	var parts []string
	for _, x := range coordSep.Split(strings.TrimSpace(s), -1) {
		if x != "" {
			parts = append(parts, x)
		}
	}
	if len(parts) != 2 {
		return geo.Point{}, false
	}
	a, err1 := strconv.ParseFloat(parts[0], 64)
	b, err2 := strconv.ParseFloat(parts[1], 64)
	if err1 != nil || err2 != nil {
		return geo.Point{}, false
	}
	if math.Abs(a) > 90 && math.Abs(b) <= 90 {
		a, b = b, a
	}
	pt := geo.Point{Lat: a, Lng: b}
	return pt, pt.Validate() == nil
}

// location reads a row's coordinates from 经纬度, from 纬度 and 经度, or
// from an address cell that holds coordinates.
func (p *rosterParser) location(rp *rowProblems, cells []string) geo.Point {
	if v, _ := p.cell(cells, colLocation); v != "" {
		pt, ok := parseLatLng(v)
		if !ok {
			rp.bad(colLocation, v, "经纬度应写成「纬度,经度」，如 31.2304,121.4737", "write coordinates as lat,lng, e.g. 31.2304,121.4737")
		}
		return pt
	}
	lat, _ := p.cell(cells, colLat)
	lng, _ := p.cell(cells, colLng)
	if lat != "" || lng != "" {
		a, err1 := strconv.ParseFloat(lat, 64)
		b, err2 := strconv.ParseFloat(lng, 64)
		pt := geo.Point{Lat: a, Lng: b}
		switch {
		case err1 != nil || math.Abs(a) > 90:
			rp.bad(colLat, lat, "纬度应为 -90 到 90 之间的数字，如 31.2304", "latitude must be a number from -90 to 90, e.g. 31.2304")
		case err2 != nil || math.Abs(b) > 180:
			rp.bad(colLng, lng, "经度应为 -180 到 180 之间的数字，如 121.4737", "longitude must be a number from -180 to 180, e.g. 121.4737")
		case pt.Validate() != nil:
			rp.bad(colLat, lat+","+lng, "经纬度无效："+pt.Validate().Error(), "invalid coordinates: "+pt.Validate().Error())
		}
		return pt
	}
	if v, _ := p.cell(cells, colAddress); v != "" {
		pt, ok := parseLatLng(v)
		if !ok {
			rp.bad(colAddress, v, "需要经纬度：按距离派单需要坐标，只有文字地址无法使用；请填写经纬度（如 31.2304,121.4737）",
				"coordinates needed: responders are matched by distance, a text address cannot be used; add 经纬度 such as 31.2304,121.4737")
		}
		return pt
	}
	rp.bad(p.locationField(), "", "需要经纬度（如 31.2304,121.4737）：按距离派单需要坐标",
		"coordinates are required (e.g. 31.2304,121.4737): responders are matched by distance")
	return geo.Point{}
}
