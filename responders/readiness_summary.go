package responders

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/sms"
	"github.com/shouwang/shouwang/storage"
)

// ReadinessSummaryJob is the scheduled job that texts the summary.
const ReadinessSummaryJob = "readiness-weekly"

// ReadinessSummary texts each community's emergency center its coverage
// gaps for the week, with a link to the console page. It runs once per
// slot; the text's key carries the slot, so a rerun sends nothing twice.
func (d *Dispatcher) ReadinessSummary(ctx context.Context, slot time.Time) error {
	reg := &Registry{DB: d.DB, Tax: d.Tax, Now: d.Now}
	cs, err := reg.ListCommunities(ctx)
	if err != nil {
		return err
	}
	for _, c := range cs {
		rep, err := reg.Readiness(ctx, c.ID, 1)
		if err != nil {
			return err
		}
		err = d.tx(ctx, func(q storage.Querier, now time.Time) ([]events.Message, error) {
			center, ok, err := OrgOfKind(ctx, q, c.ID, OrgEmergencyCenter)
			if err != nil || !ok || center.DutyPhone == "" {
				if err == nil {
					d.Log.Warn("no emergency center to send the readiness summary to", "community", c.ID)
				}
				return nil, err
			}
			link := d.LinkBase + "/console/readiness?community=" + url.QueryEscape(c.ID)
			t := sms.Text{Key: "readiness:" + c.ID + ":" + strconv.FormatInt(slot.UnixMilli(), 10), Community: c.ID,
				To: center.DutyPhone, Locale: c.Locale, Purpose: "readiness", Template: sms.TplReadinessOK,
				Params: map[string]string{"community": c.Name, "link": link}}
			if len(rep.Gaps) > 0 {
				t.Template = sms.TplReadinessGaps
				t.Params["gaps"] = strconv.Itoa(len(rep.Gaps))
				t.Params["top"] = rep.Gaps[0].Text.In(c.Locale)
			}
			return d.notify(ctx, q, now, t)
		})
		if err != nil {
			return fmt.Errorf("readiness summary of %s: %w", c.ID, err)
		}
	}
	return nil
}
