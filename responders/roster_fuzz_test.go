package responders_test

import (
	"testing"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/responders"
)

// FuzzRoster feeds arbitrary files through the reader and the parser: they
// must never panic, every row is either an entry or failed, and every
// entry is a responder the registry accepts.
func FuzzRoster(f *testing.F) {
	f.Add([]byte(rosterCSV))
	f.Add([]byte("姓名,手机号,技能,证书,证书有效期,经纬度\n张三,+86 138-0000-0000,急救、消防,急救证(A1)；消防员证,2027年6月30日；46568,\"121.47,31.23\"\n"))
	f.Add([]byte("title\n*姓名,手机（必填）,纬度,经度,可用时间\n李四,13900000001,31.2,121.4,工作日 18:00-08:00\n,,,,\n"))
	tax := events.DefaultTaxonomy()
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := responders.ReadRosterFile(data)
		if err != nil {
			return
		}
		ro := responders.ParseRoster(tax, rows, rosterOrgs, clock)
		if len(ro.Errors) == 0 && len(ro.Entries) != ro.Rows {
			t.Fatalf("%d rows, %d entries and no errors", ro.Rows, len(ro.Entries))
		}
		if ro.Failed > 0 && len(ro.Entries)+ro.Failed != ro.Rows {
			t.Fatalf("%d rows = %d entries + %d failed?", ro.Rows, len(ro.Entries), ro.Failed)
		}
		for _, e := range ro.Entries {
			r := e.Responder
			r.Kind = responders.KindVolunteer
			if err := r.Validate(tax); err != nil {
				t.Fatalf("row %d accepted but invalid: %v (%+v)", e.Row, err, r)
			}
		}
		for _, p := range ro.Errors {
			if p.Row < 1 || p.Message == "" || p.MessageEN == "" {
				t.Fatalf("problem without a row or message: %+v", p)
			}
		}
	})
}
