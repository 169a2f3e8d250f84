package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/storage"
	"github.com/shouwang/shouwang/storage/storagetest"
)

var rosterColumns = []any{"姓名", "手机号", "技能", "证书", "证书有效期", "党员", "队伍", "经纬度"}

// The three bad rows of the generated roster, and what the report must say.
var rosterBadRows = []responders.RosterProblem{
	{Row: 100, Column: "手机号", Value: "1380000",
		Message:   "手机号无效：请写 11 位手机号（如 13800000000）或带国家码的号码（如 +85291234567）",
		MessageEN: "not a mobile number: write 11 digits (13800000000) or the number with its country code (+85291234567)"},
	{Row: 500, Column: "技能", Value: "开挖掘机",
		Message:   "未知技能「开挖掘机」；可填：排爆、电工、电梯救援、防疫、消防、防汛抢险、燃气安全、志愿服务、急救、搜寻、治安巡防",
		MessageEN: "unknown skill \"开挖掘机\"; one of bomb_disposal, electrician, elevator_rescue, epidemic_control, firefighting, flood_rescue, gas_safety, general, medic, search, security"},
	{Row: 900, Column: "证书有效期", Value: "2027-02-30",
		Message: "无法识别的日期「2027-02-30」；请写成 2027-06-30", MessageEN: "not a date: \"2027-02-30\"; write it like 2027-06-30"},
}

// rosterPhone is the phone of the person on spreadsheet row r.
func rosterPhone(r int) string { return fmt.Sprintf("+86138%08d", r) }

// rosterXLSX builds an .xlsx roster of n people as a community would keep
// it: phones typed as numbers or with spaces and +86, dates in date cells,
// a team on every fifth row; rows 100, 500 and 900 are bad. edit may
// change a row's cells before it is written.
func rosterXLSX(t testing.TB, n int, edit func(row int, cells []any)) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	sheet := f.GetSheetName(0)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.SetSheetRow(sheet, "A1", &rosterColumns))
	skills := []string{"急救", "消防、急救", "治安巡防", "防汛抢险"}
	certs := []string{"急救证 No.%d", "消防员证、急救证 No.%d", "", ""}
	expires := time.Date(2028, 6, 30, 0, 0, 0, 0, time.UTC)
	for r := 2; r < n+2; r++ {
		k := r % len(skills)
		var phone any = fmt.Sprintf("+86 138-%04d-%04d", r/10000, r%10000)
		if r%2 == 0 {
			phone = int64(13800000000 + r) // a number cell
		}
		cert, expiry := "", any("")
		if certs[k] != "" {
			cert, expiry = fmt.Sprintf(certs[k], r), expires
		}
		team := ""
		if r%5 == 0 {
			team = "平安志愿队"
		}
		at := geo.Offset(centre, float64(r%40)*25, float64(r/40)*25)
		cells := []any{fmt.Sprintf("志愿者%04d", r), phone, skills[k], cert, expiry, map[bool]string{true: "是", false: "否"}[r%3 == 0],
			team, fmt.Sprintf("%.6f,%.6f", at.Lat, at.Lng)}
		switch r {
		case 100:
			cells[1] = "1380000"
		case 500:
			cells[2] = "开挖掘机"
		case 900:
			cells[4] = "2027-02-30"
		}
		if edit != nil {
			edit(r, cells)
		}
		must(f.SetSheetRow(sheet, fmt.Sprintf("A%d", r), &cells))
	}
	var buf bytes.Buffer
	must(f.Write(&buf))
	return buf.Bytes()
}

// importRoster posts a roster file as multipart/form-data.
func (h *harness) importRoster(token, community, query, filename string, data []byte) (int, map[string]any) {
	h.t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	part, err := w.CreateFormFile("file", filename)
	if err != nil {
		h.t.Fatal(err)
	}
	part.Write(data)
	w.Close()
	status, raw := h.raw("POST", "/v1/communities/"+community+"/responders:import"+query, token, w.FormDataContentType(), body.Bytes())
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		h.t.Fatalf("import: answer is not JSON (%d): %q", status, raw)
	}
	return status, out
}

// reportOf decodes the report in an import answer (the body, or its
// "report" member when the import was refused).
func reportOf(t *testing.T, out map[string]any) responders.ImportReport {
	t.Helper()
	if r, ok := out["report"]; ok {
		out = r.(map[string]any)
	}
	data, _ := json.Marshal(out)
	var rep responders.ImportReport
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("report %s: %v", data, err)
	}
	return rep
}

func respondersIn(t *testing.T, db storage.DB, community string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), `SELECT COUNT(*) FROM responders WHERE community_id = $1`, community).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A dispatcher uploads the community's Excel roster of 1,000 people, three
// of them written wrong → told exactly which rows and cells, nothing
// imported → imports the 997 good ones → uploads the same file again and
// nothing is duplicated → corrects one person's skills and only that
// person changes.
func TestImportRosterAPI(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		h.community("c1")
		team := h.must(201, "POST", "/v1/communities/c1/organisations", testAdminToken,
			map[string]any{"kind": "volunteer_team", "name": "平安志愿队"})["id"].(string)
		dispatcher := h.token("dispatcher", "c1", "")
		file := rosterXLSX(t, 1000, nil)

		status, out := h.importRoster(dispatcher, "c1", "", "名单.xlsx", file)
		rep := reportOf(t, out)
		if code, _ := errorOf(t, "refused import", out); status != 422 || code != "validation" {
			t.Fatalf("import with bad rows: %d %v", status, out["error"])
		}
		if rep.Imported || rep.Rows != 1000 || rep.Created != 997 || rep.Failed != 3 || !reflect.DeepEqual(rep.Errors, rosterBadRows) {
			t.Fatalf("report %+v\nwant the 3 bad rows exactly: %+v", rep, rosterBadRows)
		}
		if n := respondersIn(t, h.svc.DB, "c1"); n != 0 {
			t.Fatalf("a refused import wrote %d responders", n)
		}

		status, out = h.importRoster(dispatcher, "c1", "?dry_run=1&skip_bad=1", "名单.xlsx", file)
		if rep := reportOf(t, out); status != 200 || rep.Imported || !rep.DryRun || rep.Created != 997 || len(rep.Errors) != 3 {
			t.Fatalf("dry run: %d %+v", status, rep)
		}
		if n := respondersIn(t, h.svc.DB, "c1"); n != 0 {
			t.Fatalf("a dry run wrote %d responders", n)
		}

		status, out = h.importRoster(dispatcher, "c1", "?skip_bad=1", "名单.xlsx", file)
		rep = reportOf(t, out)
		if status != 200 || !rep.Imported || rep.Created != 997 || rep.Failed != 3 || !reflect.DeepEqual(rep.Errors, rosterBadRows) {
			t.Fatalf("skip bad: %d %+v", status, rep)
		}
		if n := respondersIn(t, h.svc.DB, "c1"); n != 997 {
			t.Fatalf("%d responders after importing, want 997", n)
		}
		// Row 5: a team member with two certified skills, phone written "+86 138-0000-0005".
		five := findResponder(t, h, dispatcher, "c1", rosterPhone(5))
		if five.Name != "志愿者0005" || five.Team != team || !reflect.DeepEqual(five.Skills, []string{"firefighting", "medic"}) ||
			len(five.Certificates) != 2 || !five.Qualified(events.DefaultTaxonomy(), "medic", time.Now()) {
			t.Errorf("row 5 stored as %+v", five)
		}
		// Row 10: typed as a number, one certified skill.
		if ten := findResponder(t, h, dispatcher, "c1", rosterPhone(10)); ten.Name != "志愿者0010" || !reflect.DeepEqual(ten.Skills, []string{"security"}) {
			t.Errorf("row 10 stored as %+v", ten)
		}

		status, out = h.importRoster(dispatcher, "c1", "?skip_bad=1", "名单.xlsx", file)
		if rep := reportOf(t, out); status != 200 || rep.Created != 0 || rep.Updated != 0 || rep.Unchanged != 997 {
			t.Fatalf("same file again: %d %+v", status, rep)
		}
		// 志愿者0011 now also does first aid; the bad rows are fixed.
		fixed := rosterXLSX(t, 1000, func(r int, cells []any) {
			switch r {
			case 11:
				cells[2], cells[3], cells[4] = "消防、急救", "消防员证、急救证", time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC)
			case 100:
				cells[1] = "13800000100"
			case 500:
				cells[2] = "急救"
			case 900:
				cells[4] = "2027-02-28"
			}
		})
		status, out = h.importRoster(dispatcher, "c1", "", "名单.xlsx", fixed)
		if rep := reportOf(t, out); status != 200 || !rep.Imported || rep.Created != 3 || rep.Updated != 1 || rep.Unchanged != 996 || len(rep.Errors) != 0 {
			t.Fatalf("corrected file: %d %+v", status, rep)
		}
		if n := respondersIn(t, h.svc.DB, "c1"); n != 1000 {
			t.Fatalf("%d responders, want 1000 and no duplicates", n)
		}
		eleven := findResponder(t, h, dispatcher, "c1", rosterPhone(11))
		if !reflect.DeepEqual(eleven.Skills, []string{"firefighting", "medic"}) {
			t.Errorf("row 11 skills %q after the update", eleven.Skills)
		}
	})
}

func findResponder(t *testing.T, h *harness, token, community, phone string) responders.Responder {
	t.Helper()
	_, raw := h.raw("GET", "/v1/communities/"+community+"/responders?limit=1000", token, "", nil)
	var out struct{ Responders []responders.Responder }
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	for _, r := range out.Responders {
		if r.Phone == phone {
			return r
		}
	}
	t.Fatalf("no responder with phone %s", phone)
	return responders.Responder{}
}

// Who may import, what the route takes, and that raising the body limit
// for rosters left every other route's limit where it was.
func TestImportRosterAPIRequests(t *testing.T) {
	h := start(t, "sqlite", nil)
	h.community("c1")
	h.community("c2")
	csv := []byte("姓名,手机号,经纬度\n张三,13800000000,\"31.2304,121.4737\"\n")
	h.responder("c1", person{id: "r-wang", phone: "+8613700000000", skills: []string{"medic"}, certValid: true, available: true})

	for _, tc := range []struct {
		who    string
		token  string
		status int
	}{
		{"no token", "", 401},
		{"resident", h.token("resident", "c1", "r1"), 403},
		{"responder", h.token("responder", "c1", "r-wang"), 403},
		{"dispatcher of another community", h.token("dispatcher", "c2", ""), 404},
	} {
		if status, out := h.importRoster(tc.token, "c1", "?dry_run=1", "r.csv", csv); status != tc.status {
			t.Errorf("%s: %d %v, want %d", tc.who, status, out, tc.status)
		}
	}
	admin := testAdminToken
	if status, out := h.importRoster(admin, "c1", "?dry_run=1", "r.csv", csv); status != 200 || reportOf(t, out).Created != 1 {
		t.Errorf("admin dry run: %d %v", status, out)
	}
	if status, out := h.importRoster(admin, "nowhere", "", "r.csv", csv); status != 404 {
		t.Errorf("unknown community: %d %v", status, out)
	}
	status, out := h.callAs("POST", "/v1/communities/c1/responders:import", admin, "text/csv", string(csv))
	if code, fields := errorOf(t, "not multipart", out); status != 415 || code != "validation" || fields["content-type"] == nil {
		t.Errorf("CSV body without multipart: %d %v", status, out)
	}
	status, out = h.importRoster(admin, "c1", "?dry_run=maybe", "r.csv", csv)
	if _, fields := errorOf(t, "bad flag", out); status != 400 || fields["dry_run"] == nil {
		t.Errorf("dry_run=maybe: %d %v", status, out)
	}
	status, out = h.importRoster(admin, "c1", "", "r.xls", []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0})
	if _, fields := errorOf(t, "xls", out); status != 422 || !strings.Contains(fmt.Sprint(fields["file"]), "另存为 .xlsx") {
		t.Errorf("an .xls: %d %v", status, out)
	}
	status, out = h.importRoster(admin, "c1", "", "r.csv", []byte("名字,号码\n张三,1\n"))
	rep := reportOf(t, out)
	if status != 422 || len(rep.Errors) != 1 || rep.Errors[0].Row != 1 || !strings.Contains(rep.Errors[0].Message, "找不到表头") {
		t.Errorf("no header: %d %v", status, out)
	}

	// A 1 MiB roster is taken (a CSV with a long ignored column), a JSON
	// document of 300 KiB elsewhere is still refused, and so is a roster
	// over 8 MiB.
	var big strings.Builder
	big.WriteString("姓名,手机号,经纬度,备注\n")
	for i := 0; big.Len() < 1<<20; i++ {
		fmt.Fprintf(&big, "志愿者%d,138%08d,\"31.23,121.47\",%s\n", i, i, strings.Repeat("备", 300))
	}
	if status, out := h.importRoster(admin, "c1", "?dry_run=1", "big.csv", []byte(big.String())); status != 200 {
		t.Errorf("1 MiB roster: %d %v", status, out["error"])
	}
	status, out = h.call("POST", "/v1/communities/c1/responders", admin, map[string]any{"name": strings.Repeat("x", 300<<10)})
	if code, _ := errorOf(t, "300 KiB JSON", out); status != 413 || code != "too_large" {
		t.Errorf("300 KiB JSON to the registry: %d %v, want 413", status, out)
	}
	// Over 8 MiB, refused on the declared length (see announce).
	resp, raw := h.announce("POST", "/v1/communities/c1/responders:import",
		map[string]string{"Authorization": "Bearer " + admin, "Content-Type": "multipart/form-data; boundary=x"}, 9<<20)
	var refusal map[string]any
	if err := json.Unmarshal(raw, &refusal); err != nil {
		t.Fatalf("9 MiB upload: %d, answer is not JSON: %q", resp.StatusCode, raw)
	}
	if code, fields := errorOf(t, "9 MiB upload", refusal); resp.StatusCode != 413 || code != "too_large" || fields["body"] == nil {
		t.Errorf("9 MiB upload: %d %v, want 413 too_large naming body", resp.StatusCode, refusal)
	}
	// The import route shadows nothing: responders are still created one by one.
	h.must(201, "POST", "/v1/communities/c1/responders", admin, map[string]any{"name": "李四", "phone": "+8613900000000", "location": centre})
}

// The command imports into the database directly, on a SQLite data dir
// and on PostgreSQL: a table of the bad rows and a failure without
// --skip-bad, the 997 with it, progress on stderr.
func TestImportCommand(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		ctx := context.Background()
		dir, url := t.TempDir(), ""
		if store == "postgres" {
			url = storagetest.PostgresURL(t)
		}
		db, err := storage.Open(ctx, url, dir)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := storage.Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		reg := &responders.Registry{DB: db, Tax: events.DefaultTaxonomy(), Now: time.Now}
		if _, err := reg.CreateCommunity(ctx, responders.Community{ID: "c1", Name: "新华社区", Location: centre}); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.CreateOrganisation(ctx, responders.Organisation{Community: "c1", Kind: "volunteer_team", Name: "平安志愿队"}); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "名单.xlsx")
		if err := os.WriteFile(file, rosterXLSX(t, 1000, nil), 0o600); err != nil {
			t.Fatal(err)
		}
		run := func(extra ...string) (string, string, error) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"responders", file, "--community", "c1", "--data-dir", dir, "--database-url", url}, extra...)
			err := importCmd(ctx, args, &stdout, &stderr)
			return stdout.String(), stderr.String(), err
		}

		out, _, err := run()
		if err == nil || !strings.Contains(err.Error(), "3 行有错误") {
			t.Fatalf("without --skip-bad: err = %v, want a failure", err)
		}
		for _, want := range []string{
			"社区 c1：共 1000 行 — 新增 997，更新 0，未变 0，失败 3",
			"有错误，未导入任何数据：修正后重试，或加 --skip-bad 导入其余 997 行。",
			"错误（3）：",
			"100   手机号      1380000     手机号无效",
			"500   技能        开挖掘机    未知技能「开挖掘机」",
			"900   证书有效期  2027-02-30  无法识别的日期「2027-02-30」",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if n := respondersIn(t, db, "c1"); n != 0 {
			t.Fatalf("a failed command wrote %d responders", n)
		}

		out, progress, err := run("--skip-bad")
		if err != nil || !strings.Contains(out, "新增 997") || !strings.Contains(out, "已导入。") {
			t.Fatalf("--skip-bad: %v\n%s", err, out)
		}
		if !strings.Contains(progress, "写入 100/997 (10%)") || !strings.HasSuffix(progress, "写入 997/997 (100%)\n") {
			t.Errorf("progress on stderr:\n%s", progress)
		}
		if n := respondersIn(t, db, "c1"); n != 997 {
			t.Fatalf("%d responders, want 997", n)
		}

		out, _, err = run("--skip-bad", "--dry-run", "--json")
		var rep responders.ImportReport
		if jerr := json.Unmarshal([]byte(out), &rep); err != nil || jerr != nil || rep.Unchanged != 997 || rep.Imported || !reflect.DeepEqual(rep.Errors, rosterBadRows) {
			t.Fatalf("--dry-run --json: %v %v\n%s", err, jerr, out)
		}
	})
}
