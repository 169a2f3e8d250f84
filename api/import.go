package api

import (
	"fmt"
	"io"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/shouwang/shouwang/audit"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/storage"
)

// importLimit is the largest roster upload: an .xlsx of a few thousand
// people is a few hundred KiB, a GBK CSV less. It is also fiber's
// server-wide BodyLimit; limitBody keeps bodyLimit on every other route.
const importLimit = 8 << 20

// importPathSuffix ends the one route that takes importLimit.
const importPathSuffix = "/responders:import"

// limitBody refuses bodies over bodyLimit except on the roster import.
// fiber's BodyLimit is one number for the whole server, and the import
// needs a larger one than anything else should accept.
func limitBody(c *fiber.Ctx) error {
	if len(c.Request().Body()) <= bodyLimit {
		return c.Next()
	}
	if c.Method() == fiber.MethodPost && strings.HasSuffix(strings.ToLower(c.Path()), importPathSuffix) {
		return c.Next()
	}
	return &httpError{status: fiber.StatusRequestEntityTooLarge, code: "too_large", message: "request body too large",
		fields: map[string]string{"body": "too large"}}
}

// importResponders takes a community's roster as a spreadsheet: the
// multipart field "file" holds an .xlsx or a CSV; dry_run=1 only checks
// it, skip_bad=1 imports the good rows when some are bad (query or form
// fields). The answer is the report: 200 when done (or checked), 422 with
// the report when bad rows kept anything from being imported.
func (s *server) importResponders(c *fiber.Ctx) error {
	id := c.Params("id")
	p, err := needIn(c, id, RoleAdmin, RoleDispatcher)
	if err != nil {
		return err
	}
	if ct := strings.ToLower(c.Get(fiber.HeaderContentType)); !strings.HasPrefix(ct, fiber.MIMEMultipartForm) {
		return fieldError(fiber.StatusUnsupportedMediaType, "content-type", "send multipart/form-data with the roster in the field file")
	}
	var opt responders.ImportOptions
	if opt.DryRun, err = formFlag(c, "dry_run"); err != nil {
		return err
	}
	if opt.SkipBad, err = formFlag(c, "skip_bad"); err != nil {
		return err
	}
	fh, err := c.FormFile("file")
	if err != nil {
		return fieldError(fiber.StatusBadRequest, "file", "attach the roster (.xlsx or .csv) as the multipart field file")
	}
	f, err := fh.Open()
	if err != nil {
		return fmt.Errorf("open uploaded roster: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, importLimit))
	if err != nil {
		return fmt.Errorf("read uploaded roster: %w", err)
	}
	rows, err := responders.ReadRosterFile(data)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	var rep responders.ImportReport
	if opt.DryRun { // reads only: nothing to audit, no write transaction
		rep, err = s.Registry.ImportRoster(ctx, id, rows, opt)
	} else {
		err = s.audited(ctx, func(db storage.DB) (e audit.Entry, err error) {
			rep, err = s.registryIn(db).ImportRoster(ctx, id, rows, opt)
			if err != nil || !rep.Imported {
				return e, err
			}
			return audit.Entry{Actor: actorOf(c, p), Community: id, Action: "responder.import", ObjectKind: "roster", ObjectID: id,
				Detail: map[string]any{"rows": rep.Rows, "created": rep.Created, "updated": rep.Updated, "unchanged": rep.Unchanged,
					"failed": rep.Failed}}, nil
		})
		if err == nil && rep.Imported {
			s.Registry.Keeper.Changed(ctx, id)
		}
	}
	if err != nil {
		return err
	}
	s.Log.Info("roster import", "community", id, "by", p.String(), "dry_run", rep.DryRun, "imported", rep.Imported,
		"rows", rep.Rows, "created", rep.Created, "updated", rep.Updated, "unchanged", rep.Unchanged, "failed", rep.Failed)
	if rep.Refused() {
		fields := map[string]string{}
		for _, e := range rep.Errors {
			key := fmt.Sprintf("row %d: %s", e.Row, e.Column)
			if _, ok := fields[key]; !ok {
				fields[key] = e.Message
			}
		}
		msg := fmt.Sprintf("%d 行有错误，未导入任何数据 (%d bad rows: nothing imported; fix them, or send skip_bad=1 to import the rest)",
			rep.Failed, rep.Failed)
		if rep.Failed == 0 { // the file as a whole: no header, a missing column
			msg = fmt.Sprintf("无法导入：%s (cannot import: %s)", rep.Errors[0].Message, rep.Errors[0].MessageEN)
		}
		return c.Status(fiber.StatusUnprocessableEntity).JSON(struct {
			Error  errorDetail             `json:"error"`
			Report responders.ImportReport `json:"report"`
		}{errorDetail{Code: "validation", Message: msg, Fields: fields}, rep})
	}
	return c.JSON(rep)
}

// formFlag reads a yes/no option from the query or the form.
func formFlag(c *fiber.Ctx, name string) (bool, error) {
	v := c.Query(name)
	if v == "" {
		v = c.FormValue(name)
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "0", "false", "no", "off":
		return false, nil
	case "1", "true", "yes", "on":
		return true, nil
	}
	return false, fieldError(fiber.StatusBadRequest, name, "1 or 0")
}
