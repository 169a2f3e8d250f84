package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/shouwang/shouwang/audit"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/storage"
)

const importUsage = `usage: shouwang import responders FILE --community ID [--dry-run] [--skip-bad] [--json]

FILE is an .xlsx workbook (first sheet) or a CSV (UTF-8 or GBK). Without
--skip-bad, one bad row means nothing is imported. The command writes to
the database directly (--database-url, or the SQLite file under --data-dir).
`

// importCmd imports a roster of responders into a community, writing to
// the database directly as migrate does: it needs no running service and
// no token, and the service reads responders from the database each time
// it matches, so the import counts at once. Progress goes to stderr, the
// report to stdout; the command fails when bad rows kept anything from
// being imported.
func importCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, importUsage); fs.PrintDefaults() }
	community := fs.String("community", "", "community id (required)")
	dryRun := fs.Bool("dry-run", false, "check the file and report what would change; write nothing")
	skipBad := fs.Bool("skip-bad", false, "import the good rows even when some rows are bad")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	openStore := storeFlags(fs)
	// Flags may come after the file, as in the documented form.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos, args = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	if len(pos) != 2 || pos[0] != "responders" || *community == "" {
		fs.Usage()
		return fmt.Errorf("want: import responders FILE --community ID")
	}
	file := pos[1]
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	rows, err := responders.ReadRosterFile(data)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	db, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	bar := newProgress(stderr)
	var rep responders.ImportReport
	// The import and its audit entry commit together.
	err = db.InTx(ctx, func(q storage.Querier) error {
		reg := &responders.Registry{DB: storage.Within(q, db.Dialect()), Tax: events.DefaultTaxonomy(), Now: time.Now}
		if rep, err = reg.ImportRoster(ctx, *community, rows, responders.ImportOptions{DryRun: *dryRun, SkipBad: *skipBad,
			Progress: bar.update}); err != nil || !rep.Imported {
			return err
		}
		return audit.Record(ctx, q, audit.Entry{At: time.Now(), Actor: cliActor(), Community: *community, Action: "responder.import",
			ObjectKind: "roster", ObjectID: *community, Detail: map[string]any{"file": filepath.Base(file), "rows": rep.Rows,
				"created": rep.Created, "updated": rep.Updated, "unchanged": rep.Unchanged, "failed": rep.Failed}})
	})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printImportReport(stdout, rep)
	}
	// A dry run fails when the same command without --dry-run would.
	good := rep.Created + rep.Updated + rep.Unchanged
	if rep.Refused() || (rep.DryRun && len(rep.Errors) > 0 && (!*skipBad || good == 0)) {
		return fmt.Errorf("%s: %d 行有错误，未导入 (bad rows: nothing imported)", file, rep.Failed)
	}
	return nil
}

// printImportReport writes the report for people: the counts, what
// happened, then every error and the first warnings as a table.
func printImportReport(w io.Writer, rep responders.ImportReport) {
	fmt.Fprintf(w, "社区 %s：共 %d 行 — 新增 %d，更新 %d，未变 %d，失败 %d\n",
		rep.Community, rep.Rows, rep.Created, rep.Updated, rep.Unchanged, rep.Failed)
	good := rep.Created + rep.Updated + rep.Unchanged
	switch {
	case rep.DryRun:
		fmt.Fprintln(w, "试运行（--dry-run）：未写入任何数据。 (dry run: nothing written)")
	case rep.Imported:
		fmt.Fprintln(w, "已导入。 (imported)")
	case rep.Failed > 0:
		fmt.Fprintf(w, "有错误，未导入任何数据：修正后重试，或加 --skip-bad 导入其余 %d 行。 (nothing imported)\n", good)
	default:
		fmt.Fprintln(w, "文件无法导入，未写入任何数据。 (nothing imported)")
	}
	printProblems(w, "错误", rep.Errors, len(rep.Errors))
	printProblems(w, "提醒", rep.Warnings, 20)
}

func printProblems(w io.Writer, title string, ps []responders.RosterProblem, limit int) {
	if len(ps) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s（%d）：\n", title, len(ps))
	widths := []int{4, 6, 6}
	cells := make([][3]string, 0, len(ps))
	for i, p := range ps {
		if i == limit {
			break
		}
		c := [3]string{fmt.Sprint(p.Row), p.Column, clipWidth(p.Value, 24)}
		for j := range c {
			widths[j] = max(widths[j], width(c[j]))
		}
		cells = append(cells, c)
	}
	fmt.Fprintf(w, "%s  %s  %s  问题\n", pad("行", widths[0]), pad("列", widths[1]), pad("值", widths[2]))
	for i, c := range cells {
		fmt.Fprintf(w, "%s  %s  %s  %s\n", pad(c[0], widths[0]), pad(c[1], widths[1]), pad(c[2], widths[2]), ps[i].Message)
	}
	if len(ps) > limit {
		fmt.Fprintf(w, "……另有 %d 条，用 --json 查看全部\n", len(ps)-limit)
	}
}

// width is how many terminal columns s takes: Chinese characters and
// full-width forms take two.
func width(s string) int {
	n := 0
	for _, r := range s {
		switch {
		case unicode.Is(unicode.Han, r), r >= 0x3000 && r <= 0x303F, r >= 0xFF01 && r <= 0xFF60, r >= 0xFFE0 && r <= 0xFFE6:
			n += 2
		default:
			n++
		}
	}
	return n
}

func pad(s string, w int) string {
	return s + strings.Repeat(" ", max(0, w-width(s)))
}

func clipWidth(s string, w int) string {
	if width(s) <= w {
		return s
	}
	for width(s) > w-1 {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s + "…"
}

// progress shows how far the import's writes are: a bar redrawn in place
// on a terminal, a line every tenth otherwise (logs, CI).
type progress struct {
	w     io.Writer
	tty   bool
	shown int // tenths printed, or the last bar width drawn
	last  time.Time
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, shown: -1}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) update(done, total int) {
	if total <= 0 {
		return
	}
	if p.tty {
		if done < total && time.Since(p.last) < 100*time.Millisecond {
			return
		}
		p.last = time.Now()
		const barWidth = 30
		fill := barWidth * done / total
		fmt.Fprintf(p.w, "\r写入 [%s%s] %d/%d", strings.Repeat("█", fill), strings.Repeat(" ", barWidth-fill), done, total)
		if done == total {
			fmt.Fprintln(p.w)
		}
		return
	}
	if tenth := 10 * done / total; tenth > p.shown {
		p.shown = tenth
		fmt.Fprintf(p.w, "写入 %d/%d (%d%%)\n", done, total, 100*done/total)
	}
}
