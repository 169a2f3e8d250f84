package responders_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/unicode"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/responders"
)

const rosterCSV = "姓名,手机号,技能,证书,证书有效期,党员,经纬度\n" +
	"张三,13800000000,急救,急救证,2027/6/30,是,\"31.2304,121.4737\"\n"

var rosterCSVRows = [][]string{
	{"姓名", "手机号", "技能", "证书", "证书有效期", "党员", "经纬度"},
	{"张三", "13800000000", "急救", "急救证", "2027/6/30", "是", "31.2304,121.4737"},
}

// Excel and WPS on Chinese Windows save "CSV" in GBK, with a BOM when it is
// "CSV UTF-8", or as tab-separated UTF-16 for "Unicode text".
func TestReadRosterFileCSVEncodings(t *testing.T) {
	gbk, err := simplifiedchinese.GBK.NewEncoder().Bytes([]byte(rosterCSV))
	if err != nil {
		t.Fatal(err)
	}
	utf16, err := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewEncoder().Bytes(
		[]byte(strings.ReplaceAll(strings.ReplaceAll(rosterCSV, ",", "\t"), "\"31.2304\t121.4737\"", "31.2304,121.4737")))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"UTF-8", []byte(rosterCSV)},
		{"UTF-8 with BOM", append([]byte{0xEF, 0xBB, 0xBF}, rosterCSV...)},
		{"GBK", gbk},
		{"UTF-16 tab separated", utf16},
		{"CRLF and semicolons", []byte(strings.ReplaceAll(strings.ReplaceAll(rosterCSV, ",", ";"), "\n", "\r\n"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := responders.ReadRosterFile(tc.data)
			if err != nil {
				t.Fatal(err)
			}
			want := rosterCSVRows
			if tc.name == "CRLF and semicolons" {
				want = [][]string{rosterCSVRows[0], {"张三", "13800000000", "急救", "急救证", "2027/6/30", "是", "31.2304;121.4737"}}
			}
			if !reflect.DeepEqual(rows, want) {
				t.Fatalf("rows %q\nwant %q", rows, want)
			}
			ro := responders.ParseRoster(events.DefaultTaxonomy(), rows, nil, clock)
			if len(ro.Errors) != 0 || len(ro.Entries) != 1 || ro.Entries[0].Responder.Name != "张三" || !ro.Entries[0].Responder.PartyMember {
				t.Fatalf("parsed %+v", ro)
			}
		})
	}
}

// An .xlsx as people make them: a title row, numbers typed as numbers
// (the phone), a date cell formatted as a date, a blank row in the middle.
func TestReadRosterFileXLSX(t *testing.T) {
	f := excelize.NewFile()
	defer f.Close()
	sheet := f.GetSheetName(0)
	dateStyle, err := f.NewStyle(&excelize.Style{NumFmt: 14}) // m/d/yy, shown per locale
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.SetSheetRow(sheet, "A1", &[]any{"新华社区志愿者名单"}))
	must(f.SetSheetRow(sheet, "A2", &[]any{"姓名", "手机号", "技能", "证书", "证书有效期", "纬度", "经度"}))
	must(f.SetSheetRow(sheet, "A3", &[]any{"张三", 13800000000, "急救", "急救证", time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC), 31.2304, 121.4737}))
	must(f.SetCellStyle(sheet, "E3", "E3", dateStyle))
	must(f.SetSheetRow(sheet, "A5", &[]any{"李四", "139 0000 0001", "消防", "消防员证", "2028年1月1日", 31.2305, 121.4738}))
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}

	rows, err := responders.ReadRosterFile(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5 || len(rows[3]) != 0 || rows[2][1] != "13800000000" || rows[2][4] != "46568" {
		t.Fatalf("rows %q: want 5 rows, row 4 blank, the phone's digits and the date's serial number", rows)
	}
	ro := responders.ParseRoster(events.DefaultTaxonomy(), rows, nil, clock)
	if len(ro.Errors) != 0 || len(ro.Entries) != 2 {
		t.Fatalf("errors %+v", ro.Errors)
	}
	zhang, li := ro.Entries[0], ro.Entries[1]
	if zhang.Row != 3 || zhang.Responder.Phone != "+8613800000000" || !zhang.Responder.Certificates[0].ExpiresAt.Equal(time.Date(2027, 7, 1, 0, 0, 0, 0, responders.Zone)) {
		t.Errorf("row 3: %+v", zhang)
	}
	if li.Row != 5 || li.Responder.Phone != "+8613900000001" || li.Responder.Certificates[0].Skill != "firefighting" {
		t.Errorf("row 5: %+v", li)
	}
}

func TestReadRosterFileRefusesWhatItCannotRead(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		says string
	}{
		{"empty", []byte("  \n"), "文件是空的"},
		{"old .xls", append([]byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}, make([]byte, 512)...), "另存为 .xlsx"},
		{"broken .xlsx", []byte("PK\x03\x04 not really a zip"), "无法读取 Excel 文件"},
		{"binary", []byte{0x89, 'P', 'N', 'G', 0, 0, 0, 0x0D}, "不是 .xlsx 或 CSV 文件"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := responders.ReadRosterFile(tc.data)
			var verr *errdefs.ValidationError
			if !errors.As(err, &verr) || !strings.Contains(verr.Fields["file"], tc.says) {
				t.Fatalf("err = %v, want a validation error on file saying %q", err, tc.says)
			}
		})
	}
}
