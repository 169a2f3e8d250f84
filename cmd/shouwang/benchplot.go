package main

import (
	"errors"
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// plotLatency draws p50 and p99 of the 202 and of alarm → first offer text
// at the fake Twilio against the offered alarm rate, on a log scale, with
// the store, registry size and date in the title.
func plotLatency(file string, rep *BenchReport) error {
	runs := rep.Alarms
	if len(runs) == 0 {
		return errors.New("--plot needs the alarms scenario")
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Shouwang latency vs alarm rate — %s, %d responders, %s", rep.Store, rep.Responders, rep.Date.Format("2006-01-02"))
	p.X.Label.Text = "offered alarms/s"
	p.Y.Label.Text = "latency, ms (log)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = true, true
	series := []struct {
		name  string
		value func(AlarmRun) float64
		color color.Color
		dash  bool
	}{
		{"accept p50", func(r AlarmRun) float64 { return r.Accept.P50 }, color.RGBA{R: 31, G: 119, B: 180, A: 255}, false},
		{"accept p99", func(r AlarmRun) float64 { return r.Accept.P99 }, color.RGBA{R: 31, G: 119, B: 180, A: 255}, true},
		{"alarm→offer handed to sender p50", func(r AlarmRun) float64 { return r.Queued.P50 }, color.RGBA{R: 44, G: 160, B: 44, A: 255}, false},
		{"alarm→offer handed to sender p99", func(r AlarmRun) float64 { return r.Queued.P99 }, color.RGBA{R: 44, G: 160, B: 44, A: 255}, true},
		{"alarm→offer SMS at Twilio p50", func(r AlarmRun) float64 { return r.ToSMS.P50 }, color.RGBA{R: 214, G: 39, B: 40, A: 255}, false},
		{"alarm→offer SMS at Twilio p99", func(r AlarmRun) float64 { return r.ToSMS.P99 }, color.RGBA{R: 214, G: 39, B: 40, A: 255}, true},
	}
	for _, s := range series {
		pts := make(plotter.XYs, 0, len(runs))
		for _, r := range runs {
			// A rate where no alarm got a text has no point; a log axis
			// cannot show zero, and nothing here is faster than 10 µs.
			if v := s.value(r); v > 0 {
				pts = append(pts, plotter.XY{X: r.OfferedRate, Y: max(v, 0.01)})
			}
		}
		if len(pts) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		line.Color, points.Color = s.color, s.color
		points.Shape = draw.CircleGlyph{}
		if s.dash {
			line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
			points.Shape = draw.TriangleGlyph{}
		}
		p.Add(line, points)
		p.Legend.Add(s.name, line, points)
	}
	if err := p.Save(7*vg.Inch, 4.5*vg.Inch, file); err != nil {
		return fmt.Errorf("write plot %s: %w", file, err)
	}
	return nil
}
